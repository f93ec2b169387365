// Writes resource status by server-side apply under one field manager, at most `maxWritesPerSecond` writes
// across all resources however many pods report, and not at all when the status did not change.

import { isDeepStrictEqual } from 'node:util';
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { applyPatchOptions } from '../kube/patch-options.ts';
import { API_VERSION, GROUP, VERSION } from '../labels.ts';

export const FIELD_MANAGER = 'cloudphone-operator';
/** How long our own last write is trusted over what the informer shows. */
const TRUST_MS = 10_000;

export interface StatusTarget {
  kind: string;
  plural: string;
  namespace: string;
  name: string;
}

export class StatusWriter {
  private readonly api: CustomObjectsApi;
  private readonly intervalMs: number;
  private nextSlot = 0;
  /**
   * Status last written per object and when: the informer may not show our own write yet, so a reconcile right
   * after it would write the same status again. Trusted for a short while only, in case someone else changed it.
   */
  private readonly written = new Map<string, { status: unknown; at: number }>();
  writes = 0;
  /** How many objects' last writes are remembered (swept: bounded by the writes of the last few seconds). */
  get remembered(): number {
    return this.written.size;
  }

  constructor(api: CustomObjectsApi, maxWritesPerSecond = 10) {
    this.api = api;
    this.intervalMs = 1000 / maxWritesPerSecond;
  }

  /** Returns whether a write was made. Waits for a free slot when writes come faster than the limit. */
  async write(target: StatusTarget, status: unknown, current: unknown): Promise<boolean> {
    const key = `${target.plural}/${target.namespace}/${target.name}`;
    if (isDeepStrictEqual(status, current)) return false;
    const recent = this.written.get(key);
    if (recent && Date.now() - recent.at < TRUST_MS && isDeepStrictEqual(status, recent.status)) return false;
    const now = Date.now();
    const slot = Math.max(now, this.nextSlot);
    this.nextSlot = slot + this.intervalMs;
    if (slot > now) await new Promise((resolve) => setTimeout(resolve, slot - now));
    await this.api.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace: target.namespace,
        plural: target.plural,
        name: target.name,
        body: {
          apiVersion: API_VERSION,
          kind: target.kind,
          metadata: { name: target.name, namespace: target.namespace },
          status,
        },
        fieldManager: FIELD_MANAGER,
        force: true,
      },
      applyPatchOptions(),
    );
    this.written.set(key, { status, at: Date.now() });
    this.writes++;
    // Entries past the trust window are useless: sweep them now and then, so deleted objects do not pile up.
    if (this.writes % 256 === 0)
      for (const [old, { at }] of this.written) if (Date.now() - at >= TRUST_MS) this.written.delete(old);
    return true;
  }

  forget(target: StatusTarget): void {
    this.written.delete(`${target.plural}/${target.namespace}/${target.name}`);
  }
}
