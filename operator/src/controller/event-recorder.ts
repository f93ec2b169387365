// Records core/v1 Events on the operator's resources, as `kubectl describe` shows them. A repeated event (same
// object, reason and message) bumps the count of the existing Event instead of creating a new one.

import { describeError } from '../kube/api-error.ts';
import { createHash } from 'node:crypto';
import { ApiException, type CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { mergePatchOptions } from '../kube/patch-options.ts';

const COMPONENT = 'cloudphone-operator';
/** Counts older than this are forgotten (the apiserver keeps Events for an hour by default). */
const COUNT_TTL_MS = 60 * 60_000;
/** The counts are swept for old ones every this many records, so the map stays bounded by an hour's Events. */
const SWEEP_EVERY = 256;

export class EventRecorder {
  private readonly core: CoreV1Api;
  private readonly log: Logger;
  private readonly counts = new Map<string, { count: number; at: number }>();
  private recorded = 0;

  constructor(core: CoreV1Api, log: Logger) {
    this.core = core;
    this.log = log;
  }

  /** Never throws: an Event that cannot be recorded is logged and forgotten. */
  async record(object: KubernetesObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const namespace = object.metadata?.namespace ?? 'default';
    const uid = object.metadata?.uid ?? '';
    const digest = createHash('sha256').update(`${uid}/${reason}/${message}`).digest('hex').slice(0, 16);
    const name = `${object.metadata?.name ?? 'object'}.${digest}`;
    const now = new Date();
    const count = (this.counts.get(name)?.count ?? 0) + 1;
    this.counts.set(name, { count, at: now.getTime() });
    if (++this.recorded % SWEEP_EVERY === 0) this.sweep(now.getTime());
    try {
      if (count > 1) {
        try {
          await this.core.patchNamespacedEvent(
            { name, namespace, body: { count, lastTimestamp: now.toISOString() } },
            mergePatchOptions(),
          );
          return;
        } catch (error) {
          if (!(error instanceof ApiException) || error.code !== 404) throw error;
        }
      }
      await this.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name, namespace },
          involvedObject: {
            apiVersion: object.apiVersion,
            kind: object.kind,
            name: object.metadata?.name,
            namespace,
            uid,
            resourceVersion: object.metadata?.resourceVersion,
          },
          type,
          reason,
          message,
          count: 1,
          firstTimestamp: now,
          lastTimestamp: now,
          source: { component: COMPONENT },
          reportingComponent: COMPONENT,
          reportingInstance: process.env.HOSTNAME ?? COMPONENT,
        },
      });
    } catch (error) {
      if (error instanceof ApiException && error.code === 409) return; // another replica recorded it
      this.log.warn(
        { error: describeError(error), reason, object: `${namespace}/${object.metadata?.name ?? ''}` },
        'could not record event',
      );
    }
  }

  /** Events the recorder still counts (bounded: see COUNT_TTL_MS). */
  get size(): number {
    return this.counts.size;
  }

  private sweep(now: number): void {
    for (const [name, { at }] of this.counts) if (now - at > COUNT_TTL_MS) this.counts.delete(name);
  }
}
