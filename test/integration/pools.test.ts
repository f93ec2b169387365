// CloudPhonePool on the local control plane: the operator makes the pool's phone pods from its template (kwok
// runs them), whose labels the stream selects, so they get the sidecar; kubectl scale and an HPA work through the
// /scale subresource, scaling down never removes a busy phone, and the buffer autoscaler keeps busy + buffer.
// A claim is stood in for by its mark on the pod (the cloudphone.io/claim label), until claims bind for real.

import { AutoscalingV2Api, CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CloudPhonePool } from '../../generated/ts/api-types.ts';
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

afterAll(async () => {
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
});
