// CloudPhonePool on the local control plane: the operator makes the pool's phone pods from its template (kwok
// runs them), whose labels the stream selects, so they get the sidecar; kubectl scale and an HPA work through the
// /scale subresource, scaling down never removes a busy phone, and the buffer autoscaler keeps busy + buffer.
// Where a test needs a busy phone without a claim object, it marks the pod as a claim would (cloudphone.io/claim);
// the last tests bind real CloudPhoneClaims.

import { AutoscalingV2Api, CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CloudPhoneClaim, CloudPhonePool } from '../../generated/ts/api-types.ts';
import { mergePatchOptions } from '../../operator/src/kube/patch-options.ts';
import { OperatorProcess } from '../cluster/operator-process.ts';
import { installCrds, kubeConfig, kubectl, useTestNamespace, waitFor } from '../cluster/test-cluster.ts';

const namespace = useTestNamespace('pools', { 'cloudphone.io/injection': 'enabled' });
const core = (): CoreV1Api => kubeConfig().makeApiClient(CoreV1Api);
const custom = (): CustomObjectsApi => kubeConfig().makeApiClient(CustomObjectsApi);
let operator: OperatorProcess | undefined;

beforeAll(async () => {
  installCrds();
  operator = await new OperatorProcess('pools-operator', inject('kubeconfig')).started();
  await waitFor('the operator to lead', () => Promise.resolve(operator?.isLeaderInLogs() ? true : undefined));
  await core().createNamespacedSecret({
    namespace: namespace(),
    body: {
      metadata: { name: 'viewer-tokens' },
      stringData: { view: 'pool-view-token-1', control: 'pool-control-token-1' },
    },
  });
  await custom().createNamespacedCustomObject({
    group: 'cloudphone.io',
    version: 'v1alpha1',
    namespace: namespace(),
    plural: 'cloudphonestreams',
    body: {
      apiVersion: 'cloudphone.io/v1alpha1',
      kind: 'CloudPhoneStream',
      metadata: { name: 'phones' },
      spec: {
        selector: { matchLabels: { app: 'pooled-phone' } },
        phoneContainer: 'android',
        webrtc: { whep: { authSecretRef: { name: 'viewer-tokens' } } },
      },
    },
  });
});

const cleanupsAfterAll: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanupsAfterAll) await cleanup();
  await operator?.stop();
});

async function createPool(name: string, spec: Record<string, unknown>): Promise<void> {
  await custom().createNamespacedCustomObject({
    group: 'cloudphone.io',
    version: 'v1alpha1',
    namespace: namespace(),
    plural: 'cloudphonepools',
    body: {
      apiVersion: 'cloudphone.io/v1alpha1',
      kind: 'CloudPhonePool',
      metadata: { name },
      spec: {
        streamRef: { name: 'phones' },
        template: {
          metadata: { labels: { app: 'pooled-phone', tier: 'phones' } },
          spec: { containers: [{ name: 'android', image: 'redroid/redroid:14.0.0-latest' }] },
        },
        ...spec,
      },
    },
  });
}

async function pool(name: string): Promise<CloudPhonePool> {
  return (await custom().getNamespacedCustomObject({
    group: 'cloudphone.io',
    version: 'v1alpha1',
    namespace: namespace(),
    plural: 'cloudphonepools',
    name,
  })) as CloudPhonePool;
}

async function phones(name: string): Promise<V1Pod[]> {
  const list = await core().listNamespacedPod({ namespace: namespace(), labelSelector: `cloudphone.io/pool=${name}` });
  return list.items.filter((p) => !p.metadata?.deletionTimestamp);
}

/** Waits until the pool's status says this (and as many live pods exist). */
async function poolAt(
  name: string,
  want: { replicas: number; ready?: number; busy?: number },
): Promise<CloudPhonePool> {
  return waitFor(
    `pool ${name} at ${JSON.stringify(want)}`,
    async () => {
      const current = await pool(name);
      const s = current.status;
      const ok =
        s?.replicas === want.replicas &&
        (want.ready === undefined || s.readyReplicas === want.ready) &&
        (want.busy === undefined || s.busyReplicas === want.busy) &&
        (await phones(name)).length === want.replicas;
      return ok ? current : undefined;
    },
    60_000,
  ).catch((error: unknown) => {
    throw new Error(`${String(error)}\noperator log:\n${operator?.tail(15) ?? ''}`);
  });
}

async function createClaim(name: string, poolName: string, access: 'view' | 'control'): Promise<void> {
  await custom().createNamespacedCustomObject({
    group: 'cloudphone.io',
    version: 'v1alpha1',
    namespace: namespace(),
    plural: 'cloudphoneclaims',
    body: {
      apiVersion: 'cloudphone.io/v1alpha1',
      kind: 'CloudPhoneClaim',
      metadata: { name },
      spec: { poolRef: { name: poolName }, access },
    },
  });
}

async function claim(name: string): Promise<CloudPhoneClaim> {
  return (await custom().getNamespacedCustomObject({
    group: 'cloudphone.io',
    version: 'v1alpha1',
    namespace: namespace(),
    plural: 'cloudphoneclaims',
    name,
  })) as CloudPhoneClaim;
}

async function deleteClaim(name: string): Promise<void> {
  await custom().deleteNamespacedCustomObject({
    group: 'cloudphone.io',
    version: 'v1alpha1',
    namespace: namespace(),
    plural: 'cloudphoneclaims',
    name,
  });
}

async function listClaims(): Promise<CloudPhoneClaim[]> {
  const list = (await custom().listNamespacedCustomObject({
    group: 'cloudphone.io',
    version: 'v1alpha1',
    namespace: namespace(),
    plural: 'cloudphoneclaims',
  })) as { items: CloudPhoneClaim[] };
  return list.items;
}

async function claimMark(pod: V1Pod, claim: string | null): Promise<void> {
  await core().patchNamespacedPod(
    {
      namespace: namespace(),
      name: pod.metadata?.name ?? '',
      body: { metadata: { labels: { 'cloudphone.io/claim': claim } } },
    },
    mergePatchOptions(),
  );
}

describe('CloudPhonePool', () => {
  it('makes its phones from the template, with the labels its stream selects, and reports them', async () => {
    await createPool('fleet', { replicas: 3 });
    const status = await poolAt('fleet', { replicas: 3, ready: 3, busy: 0 });
    expect(status.status).toMatchObject({ idleReplicas: 3, selector: 'cloudphone.io/pool=fleet' });
    for (const pod of await phones('fleet')) {
      expect(pod.metadata?.labels).toMatchObject({
        app: 'pooled-phone',
        tier: 'phones',
        'cloudphone.io/pool': 'fleet',
      });
      expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({
        kind: 'CloudPhonePool',
        name: 'fleet',
        controller: true,
      });
      // The stream selects it, so the webhook gave it the sidecar.
      expect(pod.spec?.initContainers?.some((c) => c.name === 'cloudphone-sidecar')).toBe(true);
    }
    await waitFor('deletion costs', async () =>
      (await phones('fleet')).every(
        (p) => p.metadata?.annotations?.['controller.kubernetes.io/pod-deletion-cost'] === '0',
      )
        ? true
        : undefined,
    );
  });

  it('follows kubectl scale, and scaling down never removes a busy phone', async () => {
    kubectl('scale', '--namespace', namespace(), 'cloudphonepool/fleet', '--replicas=5');
    await poolAt('fleet', { replicas: 5, ready: 5 });
    const [busyPod] = await phones('fleet');
    if (!busyPod) throw new Error('no phone');
    await claimMark(busyPod, 'someone');
    await poolAt('fleet', { replicas: 5, busy: 1 });
    kubectl('scale', '--namespace', namespace(), 'cloudphonepool/fleet', '--replicas=0');
    await poolAt('fleet', { replicas: 1, busy: 1 });
    const left = await phones('fleet');
    expect(left.map((p) => p.metadata?.name)).toEqual([busyPod.metadata?.name]);
    await waitFor('the busy phone to cost the most', async () =>
      Number((await phones('fleet'))[0]?.metadata?.annotations?.['controller.kubernetes.io/pod-deletion-cost']) >= 1000
        ? true
        : undefined,
    );
    // Released: now it may go.
    await claimMark(busyPod, null);
    await poolAt('fleet', { replicas: 0 });
  });

  it(
    'is a scale target an HPA resolves (the controller-manager reads /scale and its selector)',
    { timeout: 200_000 },
    async () => {
      // An HPA leaves a target at zero replicas alone (scaling disabled): start from one phone.
      kubectl('scale', '--namespace', namespace(), 'cloudphonepool/fleet', '--replicas=1');
      await poolAt('fleet', { replicas: 1 });
      await kubeConfig()
        .makeApiClient(AutoscalingV2Api)
        .createNamespacedHorizontalPodAutoscaler({
          namespace: namespace(),
          body: {
            metadata: { name: 'fleet' },
            spec: {
              scaleTargetRef: { apiVersion: 'cloudphone.io/v1alpha1', kind: 'CloudPhonePool', name: 'fleet' },
              minReplicas: 2,
              maxReplicas: 4,
              metrics: [
                {
                  type: 'Resource',
                  resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } },
                },
              ],
            },
          },
        });
      const hpa = await waitFor(
        'the HPA to read the pool scale',
        async () => {
          const current = await kubeConfig()
            .makeApiClient(AutoscalingV2Api)
            .readNamespacedHorizontalPodAutoscaler({ name: 'fleet', namespace: namespace() });
          const able = current.status?.conditions?.find((c) => c.type === 'AbleToScale');
          return able?.status === 'True' ? current : undefined;
        },
        // The controller-manager learns of new CRDs when its discovery cache is refreshed (every 30 s), and the
        // HPA controller retries a failed scale read with backoff: on a fresh cluster this takes a minute or two.
        170_000,
      );
      // It read the scale (and may already have written it: SucceededRescale).
      expect(['SucceededGetScale', 'SucceededRescale']).toContain(
        hpa.status?.conditions?.find((c) => c.type === 'AbleToScale')?.reason,
      );
      // Below its minimum the HPA scales the pool up through /scale; the pool follows.
      await poolAt('fleet', { replicas: 2, ready: 2 });
    },
  );

  it('autoscales to busy + buffer within min and max', async () => {
    await createPool('buffered', { autoscaling: { minReplicas: 1, maxReplicas: 6, buffer: 2 } });
    await poolAt('buffered', { replicas: 2, ready: 2, busy: 0 });
    expect((await pool('buffered')).spec.replicas).toBe(2);
    for (const pod of await phones('buffered')) await claimMark(pod, `claim-${pod.metadata?.name ?? ''}`);
    // Two busy: two more idle ones kept ready.
    await poolAt('buffered', { replicas: 4, ready: 4, busy: 2 });
    for (const pod of await phones('buffered'))
      if (pod.metadata?.labels?.['cloudphone.io/claim']) await claimMark(pod, null);
    await poolAt('buffered', { replicas: 2, busy: 0 });
  });

  it('binds 20 claims made at once to 20 distinct phones, growing the pool; deleting claims recycles their phones', async () => {
    await createPool('claimed', { autoscaling: { minReplicas: 2, maxReplicas: 40, buffer: 5 } });
    await poolAt('claimed', { replicas: 5, ready: 5 });
    const names = Array.from({ length: 20 }, (_, i) => `user-${String(i)}`);
    await Promise.all(names.map((name, i) => createClaim(name, 'claimed', i % 2 === 0 ? 'control' : 'view')));
    const bound = await waitFor(
      '20 bound claims',
      async () => {
        const all = await Promise.all(names.map((name) => claim(name)));
        return all.every((c) => c.status?.phase === 'Bound') ? all : undefined;
      },
      90_000,
    );
    // Each claim on its own phone, and the phone's label says the same claim.
    const pods = await phones('claimed');
    const byClaim = new Map(pods.map((p) => [p.metadata?.labels?.['cloudphone.io/claim'], p.metadata?.name]));
    expect(new Set(bound.map((c) => c.status?.pod)).size).toBe(20);
    for (const c of bound) expect(byClaim.get(c.metadata?.name)).toBe(c.status?.pod);
    expect(bound[0]?.status?.conditions?.find((x) => x.type === 'Bound')).toMatchObject({
      status: 'True',
      reason: 'Bound',
    });
    await poolAt('claimed', { replicas: 25, busy: 20 });

    // 15 claims go: their phones are deleted (recycle: delete), the pool shrinks to busy + buffer.
    const released = names.slice(0, 15);
    const releasedPods = new Set(bound.slice(0, 15).map((c) => c.status?.pod));
    await Promise.all(released.map((name) => deleteClaim(name)));
    await poolAt('claimed', { replicas: 10, busy: 5 });
    const left = await phones('claimed');
    expect(left.some((p) => releasedPods.has(p.metadata?.name))).toBe(false);
    // The five claims still held kept their phones.
    for (const c of bound.slice(15)) expect(left.map((p) => p.metadata?.name)).toContain(c.status?.pod);
  });

  it('makes a claim on a full pool wait and say why; with recycle: reuse a released phone stays, idle', async () => {
    await createPool('small', { recycle: 'reuse', autoscaling: { minReplicas: 1, maxReplicas: 1, buffer: 0 } });
    await poolAt('small', { replicas: 1, ready: 1 });
    await createClaim('first', 'small', 'control');
    const first = await waitFor('the first claim bound', async () => {
      const c = await claim('first');
      return c.status?.phase === 'Bound' ? c : undefined;
    });
    await createClaim('second', 'small', 'view');
    const waiting = await waitFor('the second claim to say why it waits', async () => {
      const c = await claim('second');
      return c.status?.conditions?.some((x) => x.reason === 'PoolAtMaximum') ? c : undefined;
    });
    expect(waiting.status?.phase).toBe('Pending');
    // The first claim goes; its phone stays (reuse) and the waiting claim gets it.
    await deleteClaim('first');
    const second = await waitFor('the second claim bound', async () => {
      const c = await claim('second');
      return c.status?.phase === 'Bound' ? c : undefined;
    });
    expect(second.status?.pod).toBe(first.status?.pod);
  });

  // Last: it kills the first operator. 200 claims at once, two operator replicas, the leader killed halfway.
  it(
    'binds 200 claims made at once to 200 distinct phones across a leader failover, and shrinks safely',
    { timeout: 300_000 },
    async () => {
      const second = await new OperatorProcess('pools-operator-b', inject('kubeconfig')).started();
      cleanupsAfterAll.push(() => second.stop());
      await createPool('big', { autoscaling: { minReplicas: 2, maxReplicas: 300, buffer: 5 } });
      await poolAt('big', { replicas: 5, ready: 5 });
      const names = Array.from({ length: 200 }, (_, i) => `big-${String(i)}`);
      for (let i = 0; i < names.length; i += 25)
        await Promise.all(names.slice(i, i + 25).map((name) => createClaim(name, 'big', 'view')));
      await waitFor(
        '50 claims bound',
        async () => {
          const list = await listClaims();
          return list.filter((c) => c.metadata?.name?.startsWith('big-') && c.status?.phase === 'Bound').length >= 50
            ? true
            : undefined;
        },
        120_000,
      );
      operator?.kill();
      const bound = await waitFor(
        '200 bound claims',
        async () => {
          const list = (await listClaims()).filter((c) => c.metadata?.name?.startsWith('big-'));
          return list.length === 200 && list.every((c) => c.status?.phase === 'Bound') ? list : undefined;
        },
        240_000,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\nsecond operator:\n${second.tail(15)}`);
      });
      const pods = await phones('big');
      const labelled = pods.filter((p) => p.metadata?.labels?.['cloudphone.io/claim']?.startsWith('big-'));
      // No phone bound twice: 200 claims, 200 different pods, and each pod's label names its claim.
      expect(new Set(bound.map((c) => c.status?.pod)).size).toBe(200);
      expect(labelled).toHaveLength(200);
      const podOf = new Map(labelled.map((p) => [p.metadata?.labels?.['cloudphone.io/claim'], p.metadata?.name]));
      for (const c of bound) expect(podOf.get(c.metadata?.name)).toBe(c.status?.pod);
      await poolAt('big', { replicas: 205, busy: 200 });

      const gone = names.slice(0, 150);
      for (let i = 0; i < gone.length; i += 25)
        await Promise.all(gone.slice(i, i + 25).map((name) => deleteClaim(name)));
      await poolAt('big', { replicas: 55, busy: 50 });
      const kept = new Set((await phones('big')).map((p) => p.metadata?.name));
      const goneNames = new Set(gone);
      const held = bound.filter((c) => !goneNames.has(c.metadata?.name ?? ''));
      expect(held).toHaveLength(50);
      for (const c of held) expect(kept).toContain(c.status?.pod);
    },
  );
});
