// The timing rules that keep one leader at a time, driven step by step with fake timers and a fake Lease API
// (a hung apiserver connection, and an answer that comes too late, cannot be timed exactly against a real one;
// the operator test hangs a real connection end to end). The fake keeps one Lease with a resourceVersion, as the
// apiserver does, and can be told to hang every call or to hold calls until released.

import { ApiException, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaderElector } from '../../../operator/src/kube/leader-election.ts';
import { LeadershipFence } from '../../../operator/src/kube/leadership-fence.ts';

/** A fake of the three Lease calls the elector makes. */
class FakeLeases {
  lease: V1Lease | undefined;
  private version = 0;
  /** Calls wait here while hung; `release()` lets them through. */
  private held: (() => void)[] = [];
  hung = false;

  api(): CoordinationV1Api {
    return {
      readNamespacedLease: () => this.gate(() => this.read()),
      createNamespacedLease: ({ body }: { body: V1Lease }) => this.gate(() => this.write(body, true)),
      replaceNamespacedLease: ({ body }: { body: V1Lease }) => this.gate(() => this.write(body, false)),
    } as unknown as CoordinationV1Api;
  }

  release(): void {
    this.hung = false;
    for (const go of this.held.splice(0)) go();
  }

  holder(): string | undefined {
    return this.lease?.spec?.holderIdentity;
  }

  private async gate<T>(call: () => T): Promise<T> {
    if (this.hung) await new Promise<void>((resolve) => this.held.push(resolve));
    return call();
  }

  private read(): V1Lease {
    if (!this.lease) throw new ApiException(404, 'not found', {}, {});
    return structuredClone(this.lease);
  }

  private write(body: V1Lease, create: boolean): V1Lease {
    if (create ? this.lease : body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion)
      throw new ApiException(409, 'conflict', {}, {});
    this.lease = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(++this.version) } };
    return structuredClone(this.lease);
  }
}

const log = pino({ level: process.env.DEBUG_LE ? 'debug' : 'silent' });

function elector(
  leases: FakeLeases,
  identity: string,
  callbacks: { started?: () => Promise<void> | void; stopped?: () => Promise<void> | void } = {},
  fence?: LeadershipFence,
): LeaderElector {
  return new LeaderElector({
    coordination: leases.api(),
    namespace: 'ns',
    name: 'lease',
    identity,
    log,
    leaseDurationSeconds: 3,
    renewDeadlineMs: 2000,
    retryPeriodMs: 500,
    fence,
    onStartedLeading: callbacks.started ?? (() => undefined),
    onStoppedLeading: callbacks.stopped ?? (() => undefined),
  });
}

describe('LeaderElector', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('steps down by its renew deadline while a renewal hangs, before a candidate can take over', async () => {
    const leases = new FakeLeases();
    const fence = new LeadershipFence();
    const a = elector(leases, 'a', {}, fence);
    a.start();
    await vi.advanceTimersByTimeAsync(10);
    expect(a.isLeader()).toBe(true);
    const termSignal = fence.open ? fence.signal() : undefined;
    const b = elector(leases, 'b');
    b.start();
    await vi.advanceTimersByTimeAsync(600); // a renewed once more, b has seen the record
    leases.hung = true; // from now on a's calls never come back (b's neither: it cannot take over early)
    const lastRenewAt = Date.now();
    let steppedDownAfter: number | undefined;
    for (let ms = 0; ms <= 5000 && steppedDownAfter === undefined; ms += 50) {
      await vi.advanceTimersByTimeAsync(50);
      if (!a.isLeader()) steppedDownAfter = Date.now() - lastRenewAt;
    }
    expect(steppedDownAfter).toBeDefined();
    expect(steppedDownAfter).toBeLessThanOrEqual(2000);
    expect(termSignal?.aborted).toBe(true); // its fenced calls were aborted with it
    expect(fence.open).toBe(false);
    await a.stop();
    await b.stop();
  });

  it('does not lead again on a renewal that answered after its deadline', async () => {
    const leases = new FakeLeases();
    const a = elector(leases, 'a');
    a.start();
    await vi.advanceTimersByTimeAsync(10);
    expect(a.isLeader()).toBe(true);
    leases.hung = true;
    await vi.advanceTimersByTimeAsync(2600); // stepped down by the deadline, the renewal still hangs
    expect(a.isLeader()).toBe(false);
    leases.release(); // the hung renewal succeeds now, 2.5 s late
    await vi.advanceTimersByTimeAsync(1);
    expect(leases.holder()).toBe('a');
    expect(a.isLeader()).toBe(false);
    await vi.advanceTimersByTimeAsync(600); // the next renewal, in time, may lead again
    expect(a.isLeader()).toBe(true);
    await a.stop();
  });

  it('starts leading again only after the previous step-down has stopped its work', async () => {
    const leases = new FakeLeases();
    const events: string[] = [];
    let finishStopping: () => void = () => undefined;
    const a = elector(leases, 'a', {
      started: () => {
        events.push('started');
      },
      stopped: () => {
        events.push('stopping');
        return new Promise((resolve) => {
          finishStopping = () => {
            events.push('stopped');
            resolve();
          };
        });
      },
    });
    a.start();
    await vi.advanceTimersByTimeAsync(10);
    leases.hung = true;
    await vi.advanceTimersByTimeAsync(2100);
    leases.release();
    await vi.advanceTimersByTimeAsync(1000); // renewed in time: leader again, but the old work is still stopping
    expect(a.isLeader()).toBe(true);
    expect(events).toEqual(['started', 'stopping']);
    finishStopping();
    await vi.advanceTimersByTimeAsync(1);
    expect(events).toEqual(['started', 'stopping', 'stopped', 'started']);
    const stopping = a.stop();
    await vi.advanceTimersByTimeAsync(1);
    finishStopping();
    await stopping;
  });

  it('releases the Lease on stop only after the leader work has stopped', async () => {
    const leases = new FakeLeases();
    let finishStopping: () => void = () => undefined;
    const a = elector(leases, 'a', {
      stopped: () =>
        new Promise((resolve) => {
          finishStopping = resolve;
        }),
    });
    a.start();
    await vi.advanceTimersByTimeAsync(10);
    const stopped = a.stop();
    await vi.advanceTimersByTimeAsync(100);
    expect(a.isLeader()).toBe(false);
    expect(leases.holder()).toBe('a'); // still held: the work has not stopped yet
    finishStopping();
    await stopped;
    expect(leases.holder()).toBe('');
  });
});
