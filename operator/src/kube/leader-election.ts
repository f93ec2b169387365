// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it: the holder renews
// the Lease; a candidate takes it over once it has seen no renewal for a lease duration on its own clock (so
// clocks of different machines never get compared); every write is guarded by resourceVersion.

import { describeError } from './api-error.ts';
import { ApiException, V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface LeaderElectorOptions {
  coordination: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  leaseDurationSeconds?: number;
  /** The leader steps down when it could not renew for this long. */
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

export class LeaderElector {
  private readonly o: Required<LeaderElectorOptions>;
  private leading = false;
  private lastRenew = 0;
  private observed: { record: string; at: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: LeaderElectorOptions) {
    this.o = { leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  /** Stops campaigning; a leader gives the Lease up so that another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.setLeading(false);
    try {
      const lease = await this.o.coordination.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      lease.spec.holderIdentity = '';
      lease.spec.leaseDurationSeconds = 1;
      await this.o.coordination.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: lease });
    } catch (error) {
      this.o.log.warn({ error: describeError(error) }, 'could not release the lease');
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const held = await this.tryAcquireOrRenew();
      if (held) this.lastRenew = Date.now();
      if (held && !this.leading) this.setLeading(true);
      if (!held && this.leading) this.setLeading(false);
    } catch (error) {
      this.o.log.warn({ error: describeError(error) }, 'lease update failed');
    }
    if (this.leading && Date.now() - this.lastRenew > this.o.renewDeadlineMs) {
      this.o.log.warn({ renewDeadlineMs: this.o.renewDeadlineMs }, 'could not renew the lease in time, stepping down');
      this.setLeading(false);
    }
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stop() may run during the awaits
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.o.retryPeriodMs);
    this.timer.unref();
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
    this.o.log.info({ identity: this.o.identity, lease: this.o.name }, leading ? 'became leader' : 'stopped leading');
    if (leading) this.o.onStartedLeading();
    else this.o.onStoppedLeading();
  }

  /** True when this candidate holds the Lease after the call. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { coordination, namespace, name, identity, leaseDurationSeconds } = this.o;
    const now = new V1MicroTime();
    let lease: V1Lease;
    try {
      lease = await coordination.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (!(error instanceof ApiException) || error.code !== 404) throw error;
      await coordination.createNamespacedLease({
        namespace,
        body: {
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: 0,
          },
        },
      });
      return true;
    }
    const spec = lease.spec ?? {};
    // renewTime may arrive as a string or a Date, depending on client-node's deserializer.
    const record = `${spec.holderIdentity ?? ''}/${JSON.stringify(spec.renewTime ?? '')}`;
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const holder = spec.holderIdentity ?? '';
    const duration = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    const expired = this.observed.at + duration < Date.now();
    if (holder !== '' && holder !== identity && !expired) return false;

    const takingOver = holder !== identity;
    spec.holderIdentity = identity;
    spec.leaseDurationSeconds = leaseDurationSeconds;
    spec.renewTime = now;
    if (takingOver) {
      spec.acquireTime = now;
      spec.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
    }
    lease.spec = spec;
    try {
      await coordination.replaceNamespacedLease({ name, namespace, body: lease });
    } catch (error) {
      if (error instanceof ApiException && error.code === 409) return false; // someone else wrote first
      throw error;
    }
    return true;
  }
}
