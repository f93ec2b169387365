// The sidecar reporting to the operator, for real: a phone pod of a pool is injected by the operator's webhook
// (kwok runs it, without containers), and the sidecar that pod would run is started here, as its own process, with
// the very config the webhook rendered (only its paths and ports moved to this machine, and the pod's projected
// token replaced by one from a TokenRequest bound to that pod). Its reports make the stream's status count the
// phone as streaming and its viewers; a connected control viewer makes the phone busy, so a claim does not get it
// until the viewer leaves.

import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import type { RTCPeerConnection } from 'werift';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CloudPhoneClaim, CloudPhonePool, CloudPhoneStream } from '../../generated/ts/api-types.ts';
import { OperatorProcess } from '../cluster/operator-process.ts';
import { installCrds, kubeConfig, sidecarReportToken, useTestNamespace, waitFor } from '../cluster/test-cluster.ts';
import { freeTcpPort, SidecarProcess, Simulator, tempDir } from '../media/media-peers.ts';
import { h264Receiver } from '../media/webrtc-peers.ts';

const namespace = useTestNamespace('reports', { 'cloudphone.io/injection': 'enabled' });
const core = (): CoreV1Api => kubeConfig().makeApiClient(CoreV1Api);
const custom = (): CustomObjectsApi => kubeConfig().makeApiClient(CustomObjectsApi);
const VIEW = `view-${randomBytes(8).toString('hex')}`;
const CONTROL = `control-${randomBytes(8).toString('hex')}`;
const work = tempDir('cloudphone-report-');
let operator: OperatorProcess | undefined;
let sidecar: SidecarProcess | undefined;
let simulator: Simulator | undefined;
let whepPort = 0;
let phone: V1Pod;

function object<T>(plural: string, name: string): Promise<T> {
  return custom().getNamespacedCustomObject({
    group: 'cloudphone.io',
    version: 'v1alpha1',
    namespace: namespace(),
    plural,
    name,
  }) as Promise<T>;
}

function create(plural: string, kind: string, name: string, spec: Record<string, unknown>): Promise<unknown> {
  return custom().createNamespacedCustomObject({
    group: 'cloudphone.io',
    version: 'v1alpha1',
    namespace: namespace(),
    plural,
    body: { apiVersion: 'cloudphone.io/v1alpha1', kind, metadata: { name }, spec },
  });
}

/** A WHEP viewer with werift (pure TypeScript): connects with a token, with the data channel a player opens. */
async function connectViewer(token: string): Promise<RTCPeerConnection> {
  const pc = h264Receiver();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.createDataChannel('cloudphone');
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') await pc.iceGatheringStateChange.watch((s) => s === 'complete');
  const response = await fetch(`http://127.0.0.1:${String(whepPort)}/whep`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/sdp' },
    body: pc.localDescription?.sdp,
  });
  if (response.status !== 201) throw new Error(`WHEP: ${String(response.status)}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  await pc.connectionStateChange.watch((s) => s === 'connected');
  return pc;
}

beforeAll(async () => {
  installCrds();
  operator = await new OperatorProcess('report-operator', inject('kubeconfig')).started();
  await waitFor('the operator to lead', () => Promise.resolve(operator?.isLeaderInLogs() ? true : undefined));
  await core().createNamespacedSecret({
    namespace: namespace(),
    body: { metadata: { name: 'viewer-tokens' }, stringData: { view: VIEW, control: CONTROL } },
  });
  await create('cloudphonestreams', 'CloudPhoneStream', 'phones', {
    selector: { matchLabels: { app: 'reporting' } },
    phoneContainer: 'android',
    webrtc: { whep: { authSecretRef: { name: 'viewer-tokens' } } },
  });
  await create('cloudphonepools', 'CloudPhonePool', 'one', {
    replicas: 1,
    recycle: 'reuse',
    streamRef: { name: 'phones' },
    template: {
      metadata: { labels: { app: 'reporting' } },
      spec: { containers: [{ name: 'android', image: 'redroid/redroid:14.0.0-latest' }] },
    },
  });
  phone = await waitFor('the pool phone, injected and Ready', async () => {
    const pods = await core().listNamespacedPod({ namespace: namespace(), labelSelector: 'cloudphone.io/pool=one' });
    const pod = pods.items.find((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    return pod?.spec?.initContainers?.some((c) => c.name === 'cloudphone-sidecar') ? pod : undefined;
  });

  // The config the webhook rendered for this pod, with its files and ports moved here.
  const sidecarContainer = phone.spec?.initContainers?.find((c) => c.name === 'cloudphone-sidecar');
  const rendered = JSON.parse(
    sidecarContainer?.env?.find((e) => e.name === 'CLOUDPHONE_SIDECAR_CONFIG')?.value ?? '{}',
  ) as Record<string, Record<string, unknown>>;
  const shared = join(work.path, 'shared');
  mkdirSync(shared);
  const files = (name: string, content: string): string => {
    writeFileSync(join(work.path, name), content);
    return join(work.path, name);
  };
  const token = await sidecarReportToken(phone);
  whepPort = await freeTcpPort();
  const webrtc = rendered.webrtc as { whep: Record<string, unknown> };
  const config = {
    ...rendered,
    shared: { dir: shared },
    report: {
      ...rendered.report,
      tokenFile: files('report-token', token),
      // What the kubelet would mount: the CA bundle the operator published in this namespace.
      caFile: files('operator-ca', await publishedCaBundle(namespace())),
      intervalSeconds: 2,
    },
    webrtc: {
      ...webrtc,
      whep: {
        ...webrtc.whep,
        port: whepPort,
        viewTokenFile: files('view', VIEW),
        controlTokenFile: files('control', CONTROL),
      },
    },
  };
  sidecar = new SidecarProcess({
    config,
    configFile: join(work.path, 'config.json'),
    metricsPort: await freeTcpPort(),
    env: { POD_NAMESPACE: namespace(), POD_NAME: phone.metadata?.name ?? '' },
  });
  simulator = new Simulator({ dir: shared, width: 320, height: 640, fps: 30 });
});

afterAll(async () => {
  await simulator?.stop();
  await sidecar?.stop();
  await operator?.stop();
  work.remove();
});

describe('sidecar reports', () => {
  it('make the stream count the phone as streaming', async () => {
    const stream = await waitFor('the stream to see its phone stream', async () => {
      const s = await object<CloudPhoneStream>('cloudphonestreams', 'phones');
      return (s.status?.streaming ?? 0) >= 1 ? s : undefined;
    });
    expect(stream.status?.viewers).toBe(0);
  });

  it('make a phone with a control viewer busy, so a claim waits for it, and gets it once the viewer leaves', async () => {
    const viewer = await connectViewer(CONTROL);
    try {
      await waitFor('the stream to count the viewer', async () => {
        const s = await object<CloudPhoneStream>('cloudphonestreams', 'phones');
        return s.status?.viewers === 1 ? true : undefined;
      });
      const pool = await waitFor('the pool to see its phone busy', async () => {
        const p = await object<CloudPhonePool>('cloudphonepools', 'one');
        return p.status?.busyReplicas === 1 ? p : undefined;
      });
      expect(pool.status?.idleReplicas).toBe(0);
      await create('cloudphoneclaims', 'CloudPhoneClaim', 'waiting', { poolRef: { name: 'one' }, access: 'view' });
      const pending = await waitFor('the claim to wait', async () => {
        const c = await object<CloudPhoneClaim>('cloudphoneclaims', 'waiting');
        return c.status?.phase === 'Pending' ? c : undefined;
      });
      expect(pending.status?.conditions?.find((c) => c.type === 'Bound')?.reason).toBe('NoIdlePhone');
    } finally {
      await viewer.close();
    }
    const bound = await waitFor('the claim to get the phone', async () => {
      const c = await object<CloudPhoneClaim>('cloudphoneclaims', 'waiting');
      return c.status?.phase === 'Bound' ? c : undefined;
    });
    expect(bound.status?.pod).toBe(phone.metadata?.name);
  });

  it('gives the claim its own token for this phone only: the sidecar takes it at once, and not after the claim goes', async () => {
    const bound = await object<CloudPhoneClaim>('cloudphoneclaims', 'waiting');
    const podIp = (await core().readNamespacedPod({ name: phone.metadata?.name ?? '', namespace: namespace() })).status
      ?.podIP;
    expect(bound.status?.endpoints).toEqual({
      whep: `http://${podIp ?? ''}:8443/whep`,
      player: `http://${podIp ?? ''}:8443/`,
    });
    const secret = await core().readNamespacedSecret({
      name: bound.status?.tokenSecretName ?? '',
      namespace: namespace(),
    });
    const token = Buffer.from(secret.data?.token ?? '', 'base64').toString();
    expect(token.length).toBeGreaterThanOrEqual(40);
    expect(secret.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'CloudPhoneClaim', name: 'waiting' });
    // The pod carries only the digest.
    const pod = await core().readNamespacedPod({ name: phone.metadata?.name ?? '', namespace: namespace() });
    expect(JSON.stringify(pod.metadata)).not.toContain(token);

    // Taken at once: the unknown token makes the sidecar ask the operator before refusing it.
    const viewer = await connectViewer(token);
    await expect(connectViewer(`not-${token}`)).rejects.toThrow('WHEP: 401');

    // Released: the session the claim's token opened ends (at the sidecar's next report, every 2 s here).
    await custom().deleteNamespacedCustomObject({
      group: 'cloudphone.io',
      version: 'v1alpha1',
      namespace: namespace(),
      plural: 'cloudphoneclaims',
      name: 'waiting',
    });
    await waitFor('the session of the released claim to end', async () =>
      (await sidecar?.metric('cloudphone_webrtc_viewers_revoked_total')) === 1 ? true : undefined,
    );
    expect(await sidecar?.metric('cloudphone_webrtc_viewers{role="view"}')).toBe(0);
    await viewer.close();
    await waitFor('the released token to be refused', async () =>
      (await connectViewer(token).then(
        async (pc) => {
          await pc.close();
          return false;
        },
        () => true,
      ))
        ? true
        : undefined,
    );
  });

  it("stops taking claim tokens when the operator cannot be reached (fail closed); the stream's own go on", async () => {
    await create('cloudphoneclaims', 'CloudPhoneClaim', 'second', { poolRef: { name: 'one' }, access: 'control' });
    const bound = await waitFor('the second claim to get the phone', async () => {
      const c = await object<CloudPhoneClaim>('cloudphoneclaims', 'second');
      return c.status?.phase === 'Bound' && c.status.tokenSecretName ? c : undefined;
    });
    const secret = await core().readNamespacedSecret({
      name: bound.status?.tokenSecretName ?? '',
      namespace: namespace(),
    });
    const token = Buffer.from(secret.data?.token ?? '', 'base64').toString();
    const viewer = await connectViewer(token);
    const revokedBefore = (await sidecar?.metric('cloudphone_webrtc_viewers_revoked_total')) ?? 0;

    await operator?.stop();
    // Three report intervals (2 s here) without the operator's word, and the claim's session ends.
    await waitFor('the unconfirmed claim session to end', async () =>
      ((await sidecar?.metric('cloudphone_webrtc_viewers_revoked_total')) ?? 0) > revokedBefore ? true : undefined,
    );
    await viewer.close();
    await expect(connectViewer(token)).rejects.toThrow('WHEP: 401');
    const own = await connectViewer(VIEW);
    await own.close();
  });
});

/** The operator's CA bundle ConfigMap of a namespace, once the leader has published it there. */
function publishedCaBundle(namespace: string): Promise<string> {
  return waitFor('the CA bundle ConfigMap', async () => {
    const configMap = await core()
      .readNamespacedConfigMap({ name: 'cloudphone-operator-ca', namespace })
      .catch(() => undefined);
    return configMap?.data?.['ca.crt'];
  });
}
