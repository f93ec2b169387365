// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it: the holder renews
// the Lease; a candidate takes it over once it has seen no renewal for a lease duration on its own clock (so
// clocks of different machines never get compared); every write is guarded by resourceVersion.
//
// One leader at a time rests on timing, so the timing is kept whatever the apiserver does:
// - the leader steps down by a timer, renewDeadline after the start of its last successful renewal, even while a
//   renewal hangs (the start, not the answer: a candidate may have seen that renewal as soon as it was written);
//   since renewDeadline < leaseDuration, it has stopped before any candidate can take over;
// - a renewal that answers after that deadline, or that was sent before a step-down, does not make it leader again;
// - leadership changes run one after the other: onStartedLeading never runs while the previous
//   onStoppedLeading is still stopping work, and stop() releases the Lease only after onStoppedLeading finished.

import { describeError } from './api-error.ts';
import { ApiException, V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { LeadershipFence } from './leadership-fence.ts';

export interface LeaderElectorOptions {
  /** Its calls should time out (pooledKubeConfig's requestTimeoutMs), or a hung call stalls the campaign. */
  coordination: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  leaseDurationSeconds?: number;
  /** The leader steps down when it could not renew for this long; below the lease duration. */
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Opened the moment leadership is won and closed the moment it is lost, before the callbacks run. */
  fence?: LeadershipFence;
  onStartedLeading: () => void | Promise<void>;
  /** Must stop all leader work; the Lease is released (on stop) only once it resolves. */
  onStoppedLeading: () => void | Promise<void>;
}

export class LeaderElector {
  private readonly o: Required<Omit<LeaderElectorOptions, 'fence'>> & Pick<LeaderElectorOptions, 'fence'>;
  private leading = false;
  private observed: { record: string; at: number } | undefined;
  /** When leadership was last lost: a renewal sent before it does not make this replica leader again. */
  private steppedDownAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Leadership callbacks, one after the other. */
  private transitions: Promise<void> = Promise.resolve();

  constructor(options: LeaderElectorOptions) {
    this.o = { leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
    if (this.o.renewDeadlineMs >= this.o.leaseDurationSeconds * 1000)
      throw new Error('the renew deadline must be shorter than the lease duration');
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  /** Stops campaigning; a leader stops its work, then gives the Lease up so that another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const wasLeading = this.leading;
    if (wasLeading) this.setLeading(false);
    await this.transitions;
    if (!wasLeading) return;
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
    const attempt = Date.now();
    try {
      const held = await this.tryAcquireOrRenew();
      // An answer that comes after the deadline, or from before a step-down, counts for nothing: a candidate may
      // be about to take over. The next tick renews afresh.
      const inTime = Date.now() - attempt < this.o.renewDeadlineMs && attempt > this.steppedDownAt;
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stop() may run during the await
      if (held && inTime && !this.stopped) {
        this.lastRenew(attempt);
        if (!this.leading) this.setLeading(true);
      }
      if (!held && this.leading) this.setLeading(false);
    } catch (error) {
      this.o.log.warn({ error: describeError(error) }, 'lease update failed');
    }
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stop() may run during the awaits
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.o.retryPeriodMs);
    this.timer.unref();
  }

  /** A renewal sent at `at` succeeded: the leader may act until at + renewDeadline. */
  private lastRenew(at: number): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(
      () => {
        if (!this.leading) return;
        this.o.log.warn(
          { renewDeadlineMs: this.o.renewDeadlineMs },
          'could not renew the lease in time, stepping down',
        );
        this.setLeading(false);
      },
      Math.max(0, at + this.o.renewDeadlineMs - Date.now()),
    );
    this.deadline.unref();
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    if (leading) this.o.fence?.begin();
    else {
      this.o.fence?.end();
      clearTimeout(this.deadline);
      this.steppedDownAt = Date.now();
    }
    this.o.log.info({ identity: this.o.identity, lease: this.o.name }, leading ? 'became leader' : 'stopped leading');
    const callback = leading ? this.o.onStartedLeading : this.o.onStoppedLeading;
    this.transitions = this.transitions.then(async () => {
      try {
        await callback();
      } catch (error) {
        this.o.log.error({ error: describeError(error) }, 'leadership callback failed');
      }
    });
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
