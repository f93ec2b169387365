// Pools heal and never overshoot, driven pass by pass against a fake apiserver whose pods cache the test updates
// by hand (fake-cluster.ts says why a fake): a pass that follows the last before the cache has seen its pods,
// pods that ended, a dead phone whose claim has not been released yet, and a pod no node would take.

import type { V1Pod } from '@kubernetes/client-node';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CloudPhoneClaim, CloudPhonePool, CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import { PoolReconciler } from '../../../operator/src/controller/pool-reconciler.ts';
import { CLAIM_LABEL } from '../../../operator/src/labels.ts';
import { OperatorMetrics } from '../../../operator/src/metrics.ts';
import {
  FakeApiServer,
  FakeCache,
  noReports,
  RecordingEvents,
  RecordingStatusWriter,
  silentLog,
} from './fake-cluster.ts';

const NS = 'ns';
const KEY = `${NS}/pool`;

describe('a pool against a lagging cache', () => {
  let server: FakeApiServer;
  let pods: FakeCache<V1Pod>;
  let claims: FakeCache<CloudPhoneClaim>;
  let pools: FakeCache<CloudPhonePool>;
  let events: RecordingEvents;
  let status: RecordingStatusWriter;
  let reconciler: PoolReconciler;

  function setPool(replicas: number): void {
    pools.set({
      apiVersion: 'cloudphone.io/v1alpha1',
      kind: 'CloudPhonePool',
      metadata: { name: 'pool', namespace: NS, uid: 'pool-uid', generation: 1 },
      spec: { replicas, streamRef: { name: 'stream' }, template: { spec: { containers: [] } } },
    } as unknown as CloudPhonePool);
  }

  /** The cache catches up with the server. */
  function sync(): void {
    pods.objects.clear();
    for (const pod of server.pods.values()) pods.set(pod);
  }

  function serverPods(): V1Pod[] {
    return [...server.pods.values()];
  }

  beforeEach(() => {
    server = new FakeApiServer();
    pods = new FakeCache();
    claims = new FakeCache();
    pools = new FakeCache();
    events = new RecordingEvents();
    status = new RecordingStatusWriter();
    const streams = new FakeCache<CloudPhoneStream>();
    streams.set({ metadata: { name: 'stream', namespace: NS } } as CloudPhoneStream);
    const metrics = new OperatorMetrics();
    reconciler = new PoolReconciler({
      pools: pools.asInformer(),
      streams: streams.asInformer(),
      pods: pods.asInformer(),
      claims: claims.asInformer(),
      core: server.core(),
      custom: server.custom(),
      statusWriter: status.asStatusWriter(),
      reports: noReports,
      events,
      metrics,
      log: silentLog,
      unschedulableReplaceMs: 60_000,
    });
  });

  it('does not create the same phones twice when the next pass comes before the cache saw them', async () => {
    setPool(5);
    await reconciler.reconcile(KEY);
    expect(server.pods.size).toBe(5);
    await reconciler.reconcile(KEY); // the cache still shows none
    await reconciler.reconcile(KEY);
    expect(server.pods.size).toBe(5);
    expect(status.last('pool')?.replicas).toBe(5);
    sync();
    await reconciler.reconcile(KEY);
    expect(server.pods.size).toBe(5);
  });

  it('does not delete more than asked when the cache still shows the phones it deleted', async () => {
    setPool(5);
    await reconciler.reconcile(KEY);
    sync();
    setPool(2);
    await reconciler.reconcile(KEY);
    expect(server.pods.size).toBe(2);
    await reconciler.reconcile(KEY); // the cache still lists the three deleted ones
    expect(server.pods.size).toBe(2);
  });

  it('replaces phones that failed or stopped, with a Warning Event', async () => {
    setPool(3);
    await reconciler.reconcile(KEY);
    const [first, second] = serverPods();
    if (!first?.status || !second?.status) throw new Error('no pods');
    first.status = { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' };
    second.status = { phase: 'Succeeded' };
    sync();
    await reconciler.reconcile(KEY);
    const phases = serverPods().map((p) => p.status?.phase);
    expect(phases).toEqual(['Pending', 'Pending', 'Pending']); // the two dead ones gone, two new ones made
    expect(server.pod(first.metadata?.name ?? '')).toBeUndefined();
    const event = events.events.find((e) => e.reason === 'PodsReplaced');
    expect(event?.type).toBe('Warning');
    expect(event?.message).toContain('Evicted');
  });

  it('leaves a dead phone bound to a claim for the claim to release, but replaces it at once', async () => {
    setPool(2);
    await reconciler.reconcile(KEY);
    const [bound] = serverPods();
    if (!bound?.metadata?.labels) throw new Error('no pods');
    bound.metadata.labels[CLAIM_LABEL] = 'c1';
    bound.status = { phase: 'Failed', reason: 'Evicted' };
    claims.set({
      metadata: { name: 'c1', namespace: NS },
      spec: { poolRef: { name: 'pool' } },
      status: { phase: 'Bound' },
    } as CloudPhoneClaim);
    sync();
    await reconciler.reconcile(KEY);
    expect(server.pod(bound.metadata.name ?? '')).toBeDefined(); // the claim records why first
    expect(serverPods().filter((p) => p.status?.phase === 'Pending')).toHaveLength(2);
  });

  it('replaces a phone no node would take for longer than the limit', async () => {
    setPool(1);
    await reconciler.reconcile(KEY);
    const [stuck] = serverPods();
    if (!stuck?.status) throw new Error('no pods');
    stuck.status.conditions = [
      {
        type: 'PodScheduled',
        status: 'False',
        reason: 'Unschedulable',
        lastTransitionTime: new Date(Date.now() - 30_000),
      },
    ];
    sync();
    await reconciler.reconcile(KEY);
    expect(server.pod(stuck.metadata?.name ?? '')).toBeDefined(); // 30 s: not yet
    const condition = stuck.status.conditions[0];
    if (condition) condition.lastTransitionTime = new Date(Date.now() - 61_000);
    sync();
    await reconciler.reconcile(KEY);
    expect(server.pod(stuck.metadata?.name ?? '')).toBeUndefined();
    expect(server.pods.size).toBe(1);
    expect(events.events.find((e) => e.reason === 'PodsReplaced')?.message).toContain('Unschedulable');
  });
});
