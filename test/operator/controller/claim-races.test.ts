// Claims are never wrong, whatever the pods cache shows: driven step by step against a fake apiserver whose
// truth the cache has not caught up with (fake-cluster.ts says why a fake). Each case is a race seen in review:
// the label the operator itself just wrote is not in the cache yet.

import { createHash } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CloudPhoneClaim, CloudPhonePool, CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import { CLAIM_FINALIZER, ClaimReconciler } from '../../../operator/src/controller/claim-reconciler.ts';
import {
  CLAIM_LABEL,
  CLAIM_TOKEN_DIGEST_ANNOTATION,
  CLAIM_TOKEN_SECRET_ANNOTATION,
} from '../../../operator/src/labels.ts';
import {
  FakeApiServer,
  FakeCache,
  noReports,
  RecordingEvents,
  RecordingStatusWriter,
  silentLog,
} from './fake-cluster.ts';

const NS = 'ns';

function phone(name: string, createdSecondsAgo: number, labels: Record<string, string> = {}): V1Pod {
  return {
    metadata: {
      name,
      namespace: NS,
      creationTimestamp: new Date(Date.now() - createdSecondsAgo * 1000),
      labels: { 'cloudphone.io/pool': 'pool', ...labels },
      ownerReferences: [
        {
          apiVersion: 'cloudphone.io/v1alpha1',
          kind: 'CloudPhonePool',
          name: 'pool',
          uid: 'pool-uid',
          controller: true,
        },
      ],
    },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

function claim(status?: CloudPhoneClaim['status'], deleting = false): CloudPhoneClaim {
  return {
    apiVersion: 'cloudphone.io/v1alpha1',
    kind: 'CloudPhoneClaim',
    metadata: {
      name: 'c1',
      namespace: NS,
      uid: 'claim-uid-1234',
      generation: 1,
      finalizers: [CLAIM_FINALIZER],
      ...(deleting ? { deletionTimestamp: new Date() } : {}),
    },
    spec: { poolRef: { name: 'pool' } },
    ...(status ? { status } : {}),
  } as CloudPhoneClaim;
}

describe('claims against a lagging cache', () => {
  let server: FakeApiServer;
  let pods: FakeCache<V1Pod>;
  let claims: FakeCache<CloudPhoneClaim>;
  let status: RecordingStatusWriter;
  let events: RecordingEvents;
  let reconciler: ClaimReconciler;
  let newReconciler: () => ClaimReconciler;

  beforeEach(() => {
    server = new FakeApiServer();
    pods = new FakeCache();
    claims = new FakeCache();
    status = new RecordingStatusWriter();
    events = new RecordingEvents();
    const pools = new FakeCache<CloudPhonePool>();
    pools.set({
      metadata: { name: 'pool', namespace: NS, uid: 'pool-uid' },
      spec: { streamRef: { name: 'stream' }, template: { spec: { containers: [] } } },
    } as unknown as CloudPhonePool);
    const streams = new FakeCache<CloudPhoneStream>();
    newReconciler = () =>
      new ClaimReconciler({
        claims: claims.asInformer(),
        pools: pools.asInformer(),
        streams: streams.asInformer(),
        pods: pods.asInformer(),
        reports: noReports,
        core: server.core(),
        custom: server.custom(),
        statusWriter: status.asStatusWriter(),
        events,
        metrics: { claimBound: () => undefined },
        log: silentLog,
      });
    reconciler = newReconciler();
  });

  /** The server has `name` bound to c1; the cache still shows it as it was before. */
  function boundOnServerOnly(name: string, ageSeconds: number): void {
    pods.set(server.addPod(phone(name, ageSeconds)));
    const truth = server.pods.get(name);
    if (truth?.metadata?.labels) truth.metadata.labels[CLAIM_LABEL] = 'c1';
  }

  it('does not mark a Bound claim Released while its phone is still bound on the apiserver', async () => {
    boundOnServerOnly('phone-a', 60);
    claims.set(claim({ phase: 'Bound', pod: 'phone-a' }));
    await reconciler.reconcile(`${NS}/c1`);
    expect(status.last('c1')?.phase).not.toBe('Released');
    expect(events.events.filter((e) => e.type === 'Warning')).toEqual([]);
  });

  it('never gives a claim a second phone when its first is bound on the apiserver only', async () => {
    pods.set(server.addPod(phone('phone-old', 120))); // idle, the longest running: the first candidate
    boundOnServerOnly('phone-new', 60); // bound by an earlier pass whose status write failed
    claims.set(claim({ phase: 'Pending' }));
    await reconciler.reconcile(`${NS}/c1`);
    const bound = [...server.pods.values()].filter((p) => p.metadata?.labels?.[CLAIM_LABEL] === 'c1');
    expect(bound.map((p) => p.metadata?.name)).toEqual(['phone-new']);
    expect(status.last('c1')).toMatchObject({ phase: 'Bound', pod: 'phone-new' });
  });

  it('releases the phone bound a moment ago when the claim is deleted', async () => {
    boundOnServerOnly('phone-a', 60);
    claims.set(claim({ phase: 'Bound', pod: 'phone-a' }, true));
    await reconciler.reconcile(`${NS}/c1`);
    expect(server.pod('phone-a')).toBeUndefined(); // recycle: delete
    expect(server.calls).toContain('patch custom c1'); // and only then the finalizer came off
  });

  it('releases a claim whose phone failed, with the reason and a Warning Event, and removes the dead pod', async () => {
    const dead = phone('phone-a', 60, { [CLAIM_LABEL]: 'c1' });
    dead.status = { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' };
    pods.set(server.addPod(dead));
    claims.set(claim({ phase: 'Bound', pod: 'phone-a' }));
    await reconciler.reconcile(`${NS}/c1`);
    const written = status.last('c1') as { phase?: string; conditions?: { reason?: string; message?: string }[] };
    expect(written.phase).toBe('Released');
    expect(written.conditions?.[0]).toMatchObject({ reason: 'PhoneFailed' });
    expect(written.conditions?.[0]?.message).toContain('Evicted');
    expect(events.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'PhoneFailed' }));
    expect(server.pod('phone-a')).toBeUndefined();
  });

  it('releases a claim whose phone is gone on the apiserver too, with a Warning Event', async () => {
    claims.set(claim({ phase: 'Bound', pod: 'phone-a' }));
    await reconciler.reconcile(`${NS}/c1`);
    expect(status.last('c1')?.phase).toBe('Released');
    expect(events.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'PhoneGone' }));
  });

  it('gives a bound claim a token Secret the pod names, and never reads a Secret, even after a leader change', async () => {
    pods.set(server.addPod(phone('phone-a', 60)));
    claims.set(claim({ phase: 'Pending' }));
    // The first leader made the claim's Secret and then lost its leadership before binding: that Secret's token
    // is known to nobody now. The next leader (a fresh reconciler) must not need it.
    server.secrets.set(`${NS}/c1-token-x`, { metadata: { name: 'c1-token-x' }, data: { token: 'b2xk' } });
    reconciler = newReconciler();
    await reconciler.reconcile(`${NS}/c1`);
    const bound = server.pod('phone-a');
    const secretName = bound?.metadata?.annotations?.[CLAIM_TOKEN_SECRET_ANNOTATION] ?? '';
    expect(secretName).not.toBe('c1-token-x');
    const token = Buffer.from(server.secrets.get(`${NS}/${secretName}`)?.data?.token ?? '', 'base64');
    expect(token.length).toBeGreaterThan(20);
    expect(bound?.metadata?.annotations?.[CLAIM_TOKEN_DIGEST_ANNOTATION]).toBe(
      createHash('sha256').update(token).digest('hex'),
    );
    expect(status.last('c1')).toMatchObject({ phase: 'Bound', pod: 'phone-a', tokenSecretName: secretName });
    expect(server.calls.filter((c) => c.startsWith('read secret'))).toEqual([]);
  });
});
