// The operator end to end against the real control plane: the apiserver calls our webhooks, the
// controller-manager creates the pods, kwok runs them, and the operator reconciles what it sees.

import { execFileSync } from 'node:child_process';
import { request } from 'node:https';
import { connect, type PeerCertificate } from 'node:tls';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PolicyV1Api,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CloudPhoneStream, Condition } from '../../generated/ts/api-types.ts';
import { SchemaValidator } from '../../schemas/runtime/validator.ts';
import {
  apiErrorMessage,
  createStream,
  deleteStreams,
  getStream,
  installCrds,
  kubeConfig,
  repoRoot,
  sidecarReportToken,
  streamBody,
  useTestNamespace,
  waitFor,
} from '../cluster/test-cluster.ts';
import { jsonPatchOptions } from '../../operator/src/kube/patch-options.ts';
import { OperatorProcess } from '../cluster/operator-process.ts';

const phones = useTestNamespace('phones', { 'cloudphone.io/injection': 'enabled' });
const plain = useTestNamespace('plain');
const custom = () => kubeConfig().makeApiClient(CustomObjectsApi);
const STREAMS = { group: 'cloudphone.io', version: 'v1alpha1', plural: 'cloudphonestreams' };
const core = () => kubeConfig().makeApiClient(CoreV1Api);
const apps = () => kubeConfig().makeApiClient(AppsV1Api);
const validator = new SchemaValidator();

let first: OperatorProcess;
let second: OperatorProcess | undefined;

function condition(stream: CloudPhoneStream, type: string): Condition | undefined {
  return stream.status?.conditions?.find((c) => c.type === type);
}

function phonePod(name: string, labels: Record<string, string>, annotations: Record<string, string> = {}) {
  return {
    metadata: { name, labels, annotations },
    spec: { containers: [{ name: 'android', image: 'redroid/redroid:14.0.0-latest' }] },
  };
}

async function deployment(namespace: string, name: string, app: string, replicas: number): Promise<void> {
  await apps().createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name },
      spec: {
        replicas,
        selector: { matchLabels: { app } },
        template: phonePod('', { app }) as never,
      },
    },
  });
}

async function runningPods(namespace: string, app: string, count: number): Promise<V1Pod[]> {
  return waitFor(`${String(count)} running ${app} pods`, async () => {
    const list = await core().listNamespacedPod({ namespace, labelSelector: `app=${app}` });
    const running = list.items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
    return running.length === count ? running : undefined;
  });
}

function sidecarOf(pod: V1Pod) {
  return pod.spec?.initContainers?.find((c) => c.name === 'cloudphone-sidecar');
}

/** What a sidecar does: POST a report with its pod's projected token (here obtained with a TokenRequest). */
async function report(op: OperatorProcess, pod: V1Pod, stream: string, body: Partial<Record<string, unknown>> = {}) {
  const namespace = pod.metadata?.namespace ?? '';
  const token = await sidecarReportToken(pod);
  const payload = JSON.stringify({
    stream: { namespace, name: stream },
    pod: pod.metadata?.name,
    streaming: true,
    viewers: 1,
    controlViewers: 1,
    ...body,
  });
  return postReport(op, token, payload);
}

/** POSTs a report body with a bearer token to the operator's report endpoint; returns the HTTP status. */
async function postReport(
  op: OperatorProcess,
  token: string,
  payload: string,
  at: { port?: number; path?: string } = {},
): Promise<number> {
  const ca = Buffer.from(
    (await core().readNamespacedSecret({ name: 'cloudphone-operator-tls', namespace: 'cloudphone-system' })).data?.[
      'ca.crt'
    ] ?? '',
    'base64',
  );
  return new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: at.port ?? op.reportPort,
        path: at.path ?? '/report',
        method: 'POST',
        ca,
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          resolve(res.statusCode ?? 0);
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Out of the cluster, the leader points the webhook configurations at its own local port. */
async function webhooksPointAt(op: OperatorProcess): Promise<void> {
  const admission = kubeConfig().makeApiClient(AdmissionregistrationV1Api);
  await waitFor(`the webhooks to point at port ${String(op.httpsPort)}`, async () => {
    const validating = await admission.readValidatingWebhookConfiguration({ name: 'cloudphone-operator' });
    const mutating = await admission.readMutatingWebhookConfiguration({ name: 'cloudphone-operator' });
    const at = `:${String(op.httpsPort)}/`;
    return validating.webhooks?.[0]?.clientConfig.url?.includes(at) &&
      mutating.webhooks?.[0]?.clientConfig.url?.includes(at)
      ? true
      : undefined;
  });
}

/** The certificate the operator's HTTPS port presents right now. */
function servedCertificate(port: number): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
    socket.on('error', reject);
  });
}

async function leaseHolder(): Promise<string | undefined> {
  const lease = await kubeConfig()
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name: 'cloudphone-operator', namespace: 'cloudphone-system' });
  return lease.spec?.holderIdentity;
}

describe('the operator', () => {
  beforeAll(async () => {
    installCrds();
    for (const namespace of [phones(), plain()]) {
      await core().createNamespacedSecret({
        namespace,
        body: {
          metadata: { name: 'viewer-tokens' },
          stringData: { view: 'view-token-1234', control: 'control-token-5678' },
        },
      });
    }
    first = await new OperatorProcess('operator-a', inject('kubeconfig')).started();
    await waitFor('operator-a to lead', () => Promise.resolve(first.isLeaderInLogs() || undefined));
    await webhooksPointAt(first);
    // A pod from before the stream: it must show up as needing a restart.
    await core().createNamespacedPod({ namespace: phones(), body: phonePod('early-phone', { app: 'phone' }) });
    await createStream(phones(), streamBody('phones', 'phone'));
    // The webhook answers from the operator's cache: wait until it has seen the stream.
    await waitFor('the stream to be reconciled', async () => (await getStream(phones(), 'phones')).status ?? undefined);
  });

  afterAll(async () => {
    // While an operator still runs to remove their finalizers (the first one may have been killed).
    await deleteStreams(phones());
    await deleteStreams(plain());
    await first.stop();
    await second?.stop();
    // A killed development operator leaves its webhooks pointing at a closed port: remove them.
    const admission = kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    await admission.deleteMutatingWebhookConfiguration({ name: 'cloudphone-operator' }).catch(() => undefined);
    await admission.deleteValidatingWebhookConfiguration({ name: 'cloudphone-operator' }).catch(() => undefined);
  });

  it('injects the sidecar, the shared volume and the config into the pods of a Deployment', async () => {
    await deployment(phones(), 'phone', 'phone', 2);
    const pods = (await runningPods(phones(), 'phone', 3)).filter((p) => p.metadata?.name !== 'early-phone');
    expect(pods).toHaveLength(2);
    for (const pod of pods) {
      const sidecar = sidecarOf(pod);
      expect(sidecar?.restartPolicy).toBe('Always');
      expect(pod.spec?.initContainers?.[0]?.name).toBe('cloudphone-sidecar');
      const phone = pod.spec?.containers.find((c) => c.name === 'android');
      expect(phone?.volumeMounts).toContainEqual(
        expect.objectContaining({ name: 'cloudphone-shared', mountPath: '/run/cloudphone' }),
      );
      expect(sidecar?.volumeMounts).toContainEqual(
        expect.objectContaining({ name: 'cloudphone-shared', mountPath: '/run/cloudphone' }),
      );
      expect(pod.spec?.volumes?.find((v) => v.name === 'cloudphone-shared')?.emptyDir?.medium).toBe('Memory');
      const config = JSON.parse(
        sidecar?.env?.find((e) => e.name === 'CLOUDPHONE_SIDECAR_CONFIG')?.value ?? '{}',
      ) as unknown;
      const parsed = validator.parse('SidecarConfig', config);
      expect(parsed.stream).toMatchObject({ namespace: phones(), name: 'phones' });
      expect(parsed.report?.url).toBe(`https://127.0.0.1:${String(first.reportPort)}/report`);
      expect(JSON.parse(pod.metadata?.annotations?.['cloudphone.io/injection-status'] ?? '{}')).toMatchObject({
        stream: 'phones',
        generation: 1,
      });
    }
  });

  it('changes nothing when an injected pod is admitted again', async () => {
    const [pod] = (await runningPods(phones(), 'phone', 3)).filter((p) => sidecarOf(p));
    if (!pod) throw new Error('no injected pod');
    const again = structuredClone(pod);
    delete again.status;
    again.metadata = {
      name: 'readmitted',
      labels: pod.metadata?.labels,
      annotations: pod.metadata?.annotations,
    };
    delete again.spec?.nodeName;
    const created = await core().createNamespacedPod({ namespace: phones(), body: again, dryRun: 'All' });
    expect(created.spec?.initContainers?.filter((c) => c.name === 'cloudphone-sidecar')).toHaveLength(1);
    expect(created.spec?.volumes?.filter((v) => v.name === 'cloudphone-shared')).toHaveLength(1);
    expect(created.spec?.initContainers).toEqual(again.spec?.initContainers);
  });

  it('leaves alone an opted-out pod, a pod in a namespace not opted in, and kube-system', async () => {
    const optedOut = await core().createNamespacedPod({
      namespace: phones(),
      body: phonePod('opted-out', { app: 'phone', 'cloudphone.io/inject': 'false' }),
      dryRun: 'All',
    });
    expect(sidecarOf(optedOut)).toBeUndefined();

    await createStream(plain(), streamBody('phones', 'phone'));
    const notOptedIn = await core().createNamespacedPod({
      namespace: plain(),
      body: phonePod('plain', { app: 'phone' }),
    });
    expect(sidecarOf(notOptedIn)).toBeUndefined();

    await core().patchNamespace(
      {
        name: 'kube-system',
        body: [{ op: 'add', path: '/metadata/labels/cloudphone.io~1injection', value: 'enabled' }],
      },
      (await import('../../operator/src/kube/patch-options.ts')).jsonPatchOptions(),
    );
    try {
      const system = await core().createNamespacedPod({
        namespace: 'kube-system',
        body: phonePod('system-phone', { app: 'phone' }),
        dryRun: 'All',
      });
      expect(sidecarOf(system)).toBeUndefined();
    } finally {
      await core().patchNamespace(
        { name: 'kube-system', body: [{ op: 'remove', path: '/metadata/labels/cloudphone.io~1injection' }] },
        (await import('../../operator/src/kube/patch-options.ts')).jsonPatchOptions(),
      );
    }
  });

  it('denies a pod whose override annotation is invalid, naming the field', async () => {
    const message = await core()
      .createNamespacedPod({
        namespace: phones(),
        body: phonePod('bad-override', { app: 'phone' }, { 'cloudphone.io/overrides': '{"video":{"fps":500}}' }),
      })
      .then(
        () => 'created',
        (error: unknown) => apiErrorMessage(error),
      );
    expect(message).toContain('cloudphone.io/overrides');
    expect(message).toContain('video.fps: must be <= 120');
  });

  it('admits a stream before its Secret, says so in ResolvedRefs and an Event, and clears it when the Secret comes', async () => {
    // Before, the webhook refused it (reading the Secret with the operator's rights, for whoever asked).
    await createStream(
      phones(),
      streamBody('early-stream', 'nothing-yet', { webrtc: { whep: { authSecretRef: { name: 'later-tokens' } } } }),
    );
    const missing = await waitFor('ResolvedRefs False', async () => {
      const s = await getStream(phones(), 'early-stream');
      return condition(s, 'ResolvedRefs')?.status === 'False' ? condition(s, 'ResolvedRefs') : undefined;
    });
    expect(missing).toMatchObject({
      reason: 'SecretNotFound',
      message: 'spec.webrtc.whep.authSecretRef: Secret later-tokens does not exist',
    });
    const warning = await waitFor('a SecretNotFound Event', async () => {
      const list = await core().listNamespacedEvent({
        namespace: phones(),
        fieldSelector: 'involvedObject.name=early-stream',
      });
      return list.items.find((e) => e.reason === 'SecretNotFound');
    });
    expect(warning.type).toBe('Warning');
    await core().createNamespacedSecret({
      namespace: phones(),
      body: { metadata: { name: 'later-tokens' }, stringData: { view: 'later-view-1', control: 'later-control-1' } },
    });
    const resolved = await waitFor('ResolvedRefs True', async () => {
      const s = await getStream(phones(), 'early-stream');
      return condition(s, 'ResolvedRefs')?.status === 'True' ? condition(s, 'ResolvedRefs') : undefined;
    });
    expect(resolved.reason).toBe('ResolvedRefs');
    await custom().deleteNamespacedCustomObject({ ...STREAMS, namespace: phones(), name: 'early-stream' });
  });

  it("leaves alone a Service of the stream's name that is not its own, and says so", async () => {
    await core().createNamespacedService({
      namespace: phones(),
      body: {
        metadata: { name: 'cloudphone-taken' },
        spec: { selector: { app: 'someone-else' }, ports: [{ name: 'web', port: 80 }] },
      },
    });
    await createStream(phones(), streamBody('taken', 'taken-phone'));
    const notOwned = await waitFor('ServiceReady False', async () => {
      const s = await getStream(phones(), 'taken');
      return condition(s, 'ServiceReady')?.status === 'False' ? condition(s, 'ServiceReady') : undefined;
    });
    expect(notOwned.reason).toBe('ServiceNotOwned');
    const service = await core().readNamespacedService({ name: 'cloudphone-taken', namespace: phones() });
    expect(service.spec?.selector).toEqual({ app: 'someone-else' });
    expect(service.spec?.ports?.map((p) => p.name)).toEqual(['web']);
    expect(service.metadata?.ownerReferences ?? []).toEqual([]);
    await custom().deleteNamespacedCustomObject({ ...STREAMS, namespace: phones(), name: 'taken' });
    await core().deleteNamespacedService({ name: 'cloudphone-taken', namespace: phones() });
  });

  it('refuses a stream whose selector overlaps another stream, naming the field', async () => {
    const overlapping = await createStream(phones(), {
      ...streamBody('overlap', 'phone'),
      spec: {
        ...streamBody('overlap', 'phone').spec,
        selector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] },
      },
    }).then(
      () => 'created',
      (error: unknown) => apiErrorMessage(error),
    );
    expect(overlapping).toContain('spec.selector: overlaps the selector of CloudPhoneStream phones');
  });

  it('converges the status from the pods and the sidecar reports, and records Events', async () => {
    const injected = (await runningPods(phones(), 'phone', 3)).filter((p) => sidecarOf(p));
    for (const pod of injected) expect(await report(first, pod, 'phones', { viewers: 2 })).toBe(200);
    const stream = await waitFor('the stream status to converge', async () => {
      const s = await getStream(phones(), 'phones');
      return s.status?.streaming === 2 ? s : undefined;
    });
    expect(stream.status).toMatchObject({
      pods: 3,
      injected: 2,
      streaming: 2,
      viewers: 4,
      podsNeedingRestart: ['early-phone'],
    });
    expect(condition(stream, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'PodsNotStreaming',
      observedGeneration: 1,
    });
    expect(condition(stream, 'Progressing')).toMatchObject({ status: 'True', reason: 'PodsNeedRestart' });
    expect(condition(stream, 'Degraded')).toMatchObject({ status: 'False' });

    const events = await waitFor('Injected events', async () => {
      const list = await core().listNamespacedEvent({
        namespace: phones(),
        fieldSelector: 'involvedObject.name=phones',
      });
      return list.items.filter((e) => e.reason === 'Injected').length >= 2 ? list.items : undefined;
    });
    expect(events.map((e) => e.reason)).toContain('Injected');
  });

  it('refuses a report from a pod about another pod, and one without a valid token', async () => {
    const [a] = (await runningPods(phones(), 'phone', 3)).filter((p) => sidecarOf(p));
    if (!a) throw new Error('no injected pod');
    expect(await report(first, a, 'phones', { pod: 'early-phone' })).toBe(403);
    expect(await report(first, a, 'other-stream')).toBe(403);
    const body = JSON.stringify({
      stream: { namespace: phones(), name: 'phones' },
      pod: a.metadata?.name,
      streaming: true,
      viewers: 0,
      controlViewers: 0,
    });
    expect(await postReport(first, 'not-a-token', body)).toBe(401);
    expect(await postReport(first, '', body)).toBe(401);
    // Reports and admission on ports apart: neither serves the other's paths.
    const token = await sidecarReportToken(a);
    expect(await postReport(first, token, body, { port: first.httpsPort })).toBe(404);
    expect(await postReport(first, token, '{}', { path: '/mutate-pods' })).toBe(404);
    expect(await postReport(first, token, body)).toBe(200);
  });

  it('restarts pods created before the stream when asked to, and then reports every pod streaming', async () => {
    await custom().patchNamespacedCustomObject(
      {
        group: 'cloudphone.io',
        version: 'v1alpha1',
        namespace: phones(),
        plural: 'cloudphonestreams',
        name: 'phones',
        body: { spec: { rollout: 'restartExisting' } },
      },
      (await import('../../operator/src/kube/patch-options.ts')).mergePatchOptions(),
    );
    // early-phone has no controller: nothing would bring it back, so it is reported and left alone.
    const early = await core().readNamespacedPod({ namespace: phones(), name: 'early-phone' });
    const blocked = await waitFor('the stream to say early-phone cannot be restarted', async () => {
      const s = await getStream(phones(), 'phones');
      const progressing = condition(s, 'Progressing');
      return s.status?.observedGeneration === 2 && progressing?.reason === 'PodsCannotRestart'
        ? progressing
        : undefined;
    });
    expect(blocked.message).toContain('early-phone (no controller would recreate it (a bare pod))');
    await new Promise((resolve) => setTimeout(resolve, 3000)); // a few more reconciles
    expect((await core().readNamespacedPod({ namespace: phones(), name: 'early-phone' })).metadata?.uid).toBe(
      early.metadata?.uid,
    );
    // Its owner restarts it, as the condition asks: then the stream matches the two others.
    await core().deleteNamespacedPod({ namespace: phones(), name: 'early-phone', gracePeriodSeconds: 0 });
    const injected = (await runningPods(phones(), 'phone', 2)).filter((p) => sidecarOf(p));
    for (const pod of injected) expect(await report(first, pod, 'phones')).toBe(200);
    const stream = await waitFor('Ready', async () => {
      const s = await getStream(phones(), 'phones');
      return condition(s, 'Ready')?.status === 'True' && s.status?.observedGeneration === 2 ? s : undefined;
    });
    expect(stream.status).toMatchObject({ pods: 2, injected: 2, streaming: 2 });
    expect(stream.status?.podsNeedingRestart).toBeUndefined();
    const events = await core().listNamespacedEvent({
      namespace: phones(),
      fieldSelector: 'involvedObject.name=phones',
    });
    // Nothing was restarted for this stream: its only pod without the sidecar was a bare one.
    expect(events.items.map((e) => e.reason)).not.toContain('RestartedPod');
  });

  it('restarts by eviction only pods a controller recreates in an opted-in namespace, and reports the others', async () => {
    // Phones of two Deployments, running before any stream selects them: one in the opted-in namespace, one in a
    // namespace without injection; and a bare pod beside the first.
    await deployment(phones(), 'legacy', 'legacy', 2);
    await deployment(plain(), 'legacy', 'legacy', 1);
    await core().createNamespacedPod({ namespace: phones(), body: phonePod('legacy-bare', { app: 'legacy' }) });
    const before = await runningPods(phones(), 'legacy', 3);
    const [plainPod] = await runningPods(plain(), 'legacy', 1);
    const restartExisting = { rollout: 'restartExisting' };
    await createStream(phones(), streamBody('legacy', 'legacy', restartExisting));
    await createStream(plain(), streamBody('legacy', 'legacy', restartExisting));

    // The Deployment's pods are evicted one at a time and come back with the sidecar; the bare pod stays.
    const after = await waitFor(
      'the Deployment pods to come back injected',
      async () => {
        const list = await core().listNamespacedPod({ namespace: phones(), labelSelector: 'app=legacy' });
        const live = list.items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
        return live.length === 3 && live.filter((p) => sidecarOf(p)).length === 2 ? live : undefined;
      },
      60_000,
    );
    const bare = after.find((p) => p.metadata?.name === 'legacy-bare');
    if (!bare) throw new Error('legacy-bare is gone');
    expect(bare.metadata?.uid).toBe(before.find((p) => p.metadata?.name === 'legacy-bare')?.metadata?.uid);
    expect(sidecarOf(bare)).toBeUndefined();
    const legacy = await waitFor('the stream to report the bare pod', async () => {
      const st = await getStream(phones(), 'legacy');
      return condition(st, 'Progressing')?.reason === 'PodsCannotRestart' ? st : undefined;
    });
    expect(legacy.status?.podsNeedingRestart).toEqual(['legacy-bare']);
    const events = await core().listNamespacedEvent({
      namespace: phones(),
      fieldSelector: 'involvedObject.name=legacy',
    });
    expect(events.items.filter((e) => e.reason === 'RestartedPod').map((e) => e.message)).toHaveLength(2);

    // Without injection in its namespace, a restarted pod would come back bare, again and again: left alone.
    const plainStream = await waitFor('the plain stream to say why it restarts nothing', async () => {
      const st = await getStream(plain(), 'legacy');
      return condition(st, 'Progressing')?.reason === 'PodsCannotRestart' ? st : undefined;
    });
    expect(condition(plainStream, 'Progressing')?.message).toContain('is not labelled cloudphone.io/injection=enabled');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const [stillThere] = await runningPods(plain(), 'legacy', 1);
    expect(stillThere?.metadata?.uid).toBe(plainPod?.metadata?.uid);
  });

  it('restarts a pod only when its PodDisruptionBudget allows it', async () => {
    await deployment(phones(), 'guarded', 'guarded', 1);
    const [guarded] = await runningPods(phones(), 'guarded', 1);
    const policy = kubeConfig().makeApiClient(PolicyV1Api);
    await policy.createNamespacedPodDisruptionBudget({
      namespace: phones(),
      body: { metadata: { name: 'guarded' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'guarded' } } } },
    });
    await waitFor('the budget to be computed', async () => {
      const pdb = await policy.readNamespacedPodDisruptionBudget({ namespace: phones(), name: 'guarded' });
      return pdb.status?.currentHealthy === 1 ? pdb : undefined;
    });
    await createStream(phones(), streamBody('guarded', 'guarded', { rollout: 'restartExisting' }));
    const restarting = await waitFor('the stream to want the restart', async () => {
      const st = await getStream(phones(), 'guarded');
      return condition(st, 'Progressing')?.reason === 'RestartingPods' ? st : undefined;
    });
    expect(restarting.status?.podsNeedingRestart).toEqual([guarded?.metadata?.name]);
    await new Promise((resolve) => setTimeout(resolve, 4000)); // the eviction is refused, and tried again
    const [still] = await runningPods(phones(), 'guarded', 1);
    expect(still?.metadata?.uid).toBe(guarded?.metadata?.uid);
    // The budget goes: the pod is evicted and comes back with the sidecar.
    await policy.deleteNamespacedPodDisruptionBudget({ namespace: phones(), name: 'guarded' });
    await waitFor(
      'the pod to come back injected',
      async () => {
        const [pod] = await runningPods(phones(), 'guarded', 1);
        return pod && pod.metadata?.uid !== guarded?.metadata?.uid && sidecarOf(pod) ? pod : undefined;
      },
      60_000,
    );
  });

  it('marks the stream Degraded when a sidecar stops reporting', async () => {
    const stream = await waitFor(
      'SidecarNotReporting',
      async () => {
        const s = await getStream(phones(), 'phones');
        return condition(s, 'Degraded')?.reason === 'SidecarNotReporting' ? s : undefined;
      },
      30_000,
    );
    expect(condition(stream, 'Ready')?.status).toBe('False');
  });

  it('owns a headless Service for the stream and removes it when the stream is deleted, even after its Secret', async () => {
    await core().createNamespacedSecret({
      namespace: phones(),
      body: { metadata: { name: 'short-tokens' }, stringData: { view: 'v-1234', control: 'c-5678' } },
    });
    await createStream(
      phones(),
      streamBody('short-lived', 'short', { webrtc: { whep: { authSecretRef: { name: 'short-tokens' } } } }),
    );
    const service = await waitFor('the stream Service', async () => {
      const list = await core().listNamespacedService({
        namespace: phones(),
        labelSelector: 'cloudphone.io/stream=short-lived',
      });
      return list.items[0];
    });
    expect(service.spec?.clusterIP).toBe('None');
    expect(service.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'CloudPhoneStream',
      name: 'short-lived',
      controller: true,
    });
    // No finalizer: the Service goes by its owner reference, whether or not the operator is up.
    expect((await getStream(phones(), 'short-lived')).metadata?.finalizers ?? []).toEqual([]);

    // Its Secret goes first, as when a whole namespace is deleted.
    await core().deleteNamespacedSecret({ name: 'short-tokens', namespace: phones() });
    await custom().deleteNamespacedCustomObject({
      group: 'cloudphone.io',
      version: 'v1alpha1',
      namespace: phones(),
      plural: 'cloudphonestreams',
      name: 'short-lived',
    });
    await waitFor('the stream and its Service to be gone', async () => {
      const services = await core().listNamespacedService({
        namespace: phones(),
        labelSelector: 'cloudphone.io/stream=short-lived',
      });
      const gone = await getStream(phones(), 'short-lived').then(
        () => false,
        () => true,
      );
      return gone && services.items.length === 0 ? true : undefined;
    });
  });

  it('recovers its watches after the apiserver restarts, without restarting itself', async () => {
    execFileSync('bash', [join(repoRoot, 'test/cluster/restart.sh'), 'kube-apiserver'], { stdio: 'ignore' });
    await createStream(phones(), streamBody('after-restart', 'after'));
    const stream = await waitFor(
      'the new stream to be reconciled',
      async () => {
        const s = await getStream(phones(), 'after-restart');
        return condition(s, 'Ready')?.reason === 'NoMatchingPods' ? s : undefined;
      },
      60_000,
    );
    expect(stream.status?.pods).toBe(0);
    expect(first.logs.some((l) => l.msg === 'watch failed, restarting')).toBe(true);
  });

  it('replaces lost certificates, rolling the CA over: both trusted, the old served a while, then the new', async () => {
    const before = await servedCertificate(first.httpsPort);
    const readTls = () =>
      core().readNamespacedSecret({ name: 'cloudphone-operator-tls', namespace: 'cloudphone-system' });
    const oldCa = Buffer.from((await readTls()).data?.['ca.crt'] ?? '', 'base64').toString();
    const published = async (): Promise<string> =>
      (await core().readNamespacedConfigMap({ name: 'cloudphone-operator-ca', namespace: phones() })).data?.[
        'ca.crt'
      ] ?? '';
    expect(await published()).toBe(oldCa);
    await core().deleteNamespacedSecret({ name: 'cloudphone-operator-tls', namespace: 'cloudphone-system' });
    const secret = await waitFor('new certificates', async () => readTls().catch(() => undefined));
    const caPem = Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64').toString();
    expect(caPem).not.toBe(oldCa);
    // The Secret remembers the CA it replaced, and the sidecars' bundle holds both while the old is still served.
    expect(Buffer.from(secret.data?.['previous-ca.crt'] ?? '', 'base64').toString()).toBe(oldCa);
    const admission = kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    const webhookBundle = async (): Promise<string> =>
      Buffer.from(
        (await admission.readMutatingWebhookConfiguration({ name: 'cloudphone-operator' })).webhooks?.[0]?.clientConfig
          .caBundle ?? '',
        'base64',
      ).toString();
    const both = await waitFor('both CAs in the bundle', async () => {
      const bundle = await published();
      return bundle.includes(caPem.trim()) && bundle.includes(oldCa.trim()) ? bundle : undefined;
    });
    expect(both).toContain(oldCa.trim());
    expect(await webhookBundle()).toContain(oldCa.trim());
    expect((await servedCertificate(first.httpsPort)).fingerprint256).toBe(before.fingerprint256);
    // Then the new certificate is served, and later the old CA leaves the bundles.
    await waitFor('the new certificate to be served', async () =>
      (await servedCertificate(first.httpsPort)).fingerprint256 !== before.fingerprint256 ? true : undefined,
    );
    await waitFor('the old CA to leave the bundles', async () =>
      (await published()) === caPem && (await webhookBundle()) === caPem ? true : undefined,
    );
    // A bundle someone deleted is put back at once.
    await core().deleteNamespacedConfigMap({ name: 'cloudphone-operator-ca', namespace: phones() });
    await waitFor('the bundle to be put back', async () =>
      (await published().catch(() => '')) === caPem ? true : undefined,
    );
    // Same process, new certificate, and the apiserver trusts it: injection still works.
    expect(first.logs.filter((l) => l.msg === 'operator started')).toHaveLength(1);
    const pod = await core().createNamespacedPod({
      namespace: phones(),
      body: phonePod('after-rotation', { app: 'phone' }),
      dryRun: 'All',
    });
    expect(sidecarOf(pod)).toBeDefined();
  });

  it('counts injections and reconciles in its metrics', async () => {
    const text = await fetch(`http://127.0.0.1:${String(first.healthPort)}/metrics`).then((r) => r.text());
    expect(text).toMatch(/cloudphone_pods_injected_total\{namespace="phones-[0-9a-f]+"\} [1-9]/);
    expect(text).toMatch(/cloudphone_reconcile_duration_seconds_count\{controller="cloudphonestream"\} [1-9]/);
    expect(text).toMatch(/cloudphone_webhook_duration_seconds_bucket/);
    expect(text).toContain('cloudphone_leader 1');
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    // Read from the parts at scrape time: the apiserver's admission connections, every informer's restarts.
    expect(text).toMatch(/^cloudphone_https_connections\{port="admission"\} [1-9]/m);
    expect(text).toMatch(/^cloudphone_informer_restarts\{informer="pods"\} \d/m);
    expect(text).toMatch(/^cloudphone_report_connections_refused 0$/m);
    // Its phones in full; the pods of the plain namespace (no stream, no sidecar) as metadata only.
    const cached = await waitFor('the pod cache metric', async () => {
      const now = await fetch(`http://127.0.0.1:${String(first.healthPort)}/metrics`).then((r) => r.text());
      const full = Number(/^cloudphone_pods_cached\{kept="full"\} (\d+)/m.exec(now)?.[1] ?? -1);
      const metadata = Number(/^cloudphone_pods_cached\{kept="metadata"\} (\d+)/m.exec(now)?.[1] ?? -1);
      return full >= 2 && metadata >= 1 ? { full, metadata } : undefined;
    });
    const everyPod = (await core().listPodForAllNamespaces()).items.length;
    expect(cached.full).toBeLessThan(everyPod);
  });

  it('puts back a caBundle someone else blanked, without waiting for a certificate change', async () => {
    const admission = kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    const before = await admission.readMutatingWebhookConfiguration({ name: 'cloudphone-operator' });
    const caBundle = before.webhooks?.[0]?.clientConfig.caBundle;
    expect(caBundle).toBeTruthy();
    await admission.patchMutatingWebhookConfiguration(
      {
        name: 'cloudphone-operator',
        body: [
          { op: 'test', path: '/webhooks/0/clientConfig/caBundle', value: caBundle },
          { op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: '' },
        ],
      },
      jsonPatchOptions(),
    );
    await waitFor('the caBundle to be put back', async () => {
      const now = await admission.readMutatingWebhookConfiguration({ name: 'cloudphone-operator' });
      return now.webhooks?.[0]?.clientConfig.caBundle === caBundle ? true : undefined;
    });
  });

  it('fails over to the other replica when the leader is killed', async () => {
    second = await new OperatorProcess('operator-b', inject('kubeconfig')).started();
    expect(await leaseHolder()).toBe('operator-a');
    first.kill();
    await waitFor(
      'operator-b to take the Lease',
      async () => ((await leaseHolder()) === 'operator-b' ? true : undefined),
      60_000,
    );
    // The new leader reconciles, and the webhook now points at it (the apiserver notices within a moment).
    await waitFor('the apiserver to call the new leader', () =>
      createStream(phones(), streamBody('after-failover', 'failover')).then(() => true),
    );
    await waitFor('the stream created after failover to be reconciled', async () => {
      const s = await getStream(phones(), 'after-failover');
      return s.status?.observedGeneration === 1 ? s : undefined;
    });
    await deployment(phones(), 'failover', 'failover', 1);
    const [pod] = await runningPods(phones(), 'failover', 1);
    expect(pod && sidecarOf(pod)).toBeDefined();
  });
});
