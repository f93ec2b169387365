// Benchmark of pools and claims on the local control plane (kwok runs the phone pods; start it with
// `npm run cluster:up`). Not a test: it prints figures and saves them.
//
//   npm run bench:autoscale [-- --claims 100 --grow 1000]
//
// 1. Claim to bound, warm: a pool keeps 20 idle phones (buffer autoscaling); claims are made one every 100 ms
//    and each is timed from its create call returning to a watch seeing it Bound (ms, on this clock).
// 2. Growth: a pool scaled from 0 to 1000 phones (kubectl scale), timed until 1000 are Ready, with the
//    operator's default of 50 pods created per pass; side by side, the peer: a Deployment of the same pods
//    (the ReplicaSet controller of the same controller-manager) scaled from 0 to 1000 the same way.
// 3. Overshoot: throughout, a watch counts each pool's live pods (not being deleted); the most a pool ever had is
//    reported against the most it ever wanted (spec.replicas), and the Deployment's against its replicas.
// Results: bench/results/autoscale.json (claim_p50_ms, claim_p99_ms, grow_0_to_1000_s, *_max_pods).

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, Watch, type V1Pod } from '@kubernetes/client-node';
import type { CloudPhoneClaim, CloudPhonePool } from '../generated/ts/api-types.ts';
import { pooledKubeConfig } from '../operator/src/kube/kube-config.ts';
import { OperatorProcess } from '../test/cluster/operator-process.ts';
import { waitFor } from '../test/cluster/wait-for.ts';
import { percentile, round } from './figures.ts';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: { claims: { type: 'string', default: '100' }, grow: { type: 'string', default: '1000' } },
});
const CLAIMS = Number(values.claims);
const GROW = Number(values.grow);
const kubeconfigPath = join(root, '.cache/cluster/kubeconfig');
process.env.KUBECONFIG = kubeconfigPath;
const kc = pooledKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const namespace = `bench-autoscale-${String(Date.now() % 100_000)}`;
const api = { group: 'cloudphone.io', version: 'v1alpha1', namespace };

function kubectl(...args: string[]): string {
  return execFileSync(join(root, '.cache/bin/kubectl'), ['--kubeconfig', kubeconfigPath, ...args], {
    encoding: 'utf8',
  });
}

async function create(plural: string, kind: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await custom.createNamespacedCustomObject({
    ...api,
    plural,
    body: { apiVersion: 'cloudphone.io/v1alpha1', kind, metadata: { name }, spec },
  });
}

/** The most live pods each owner (pool, or the peer Deployment) ever had, and the most replicas each wanted. */
const most = { pods: new Map<string, number>(), wanted: new Map<string, number>() };
const livePods = new Map<string, string>();

function ownerOf(pod: V1Pod): string | undefined {
  return pod.metadata?.labels?.['cloudphone.io/pool'] ?? (pod.metadata?.labels?.peer ? 'peer' : undefined);
}

/**
 * Watches a path for as long as the benchmark runs: client-node's Watch ends after 30 s without an event, so it
 * is started again (a watch without a resourceVersion begins with every object that exists: `restart` resets).
 */
function keepWatching(path: string, handle: Parameters<Watch['watch']>[2], restart: () => void): () => void {
  let stopped = false;
  let current: { abort: () => void } | undefined;
  const start = (): void => {
    if (stopped) return;
    restart();
    new Watch(kc)
      .watch(path, {}, handle, () => setTimeout(start, 100))
      .then(
        (request) => {
          current = request;
          if (stopped) request.abort();
        },
        () => setTimeout(start, 1000),
      );
  };
  start();
  return () => {
    stopped = true;
    current?.abort();
  };
}

function countPods(): () => void {
  return keepWatching(
    `/api/v1/namespaces/${namespace}/pods`,
    (type: string, pod: V1Pod) => {
      const name = pod.metadata?.name ?? '';
      const owner = ownerOf(pod);
      if (!owner) return;
      if (type === 'DELETED' || pod.metadata?.deletionTimestamp) livePods.delete(name);
      else livePods.set(name, owner);
      const count = [...livePods.values()].filter((o) => o === owner).length;
      most.pods.set(owner, Math.max(most.pods.get(owner) ?? 0, count));
    },
    () => {
      livePods.clear();
    },
  );
}

function watchWanted(): () => void {
  return keepWatching(
    `/apis/cloudphone.io/v1alpha1/namespaces/${namespace}/cloudphonepools`,
    (_type: string, object: CloudPhonePool) => {
      const name = object.metadata?.name ?? '';
      most.wanted.set(name, Math.max(most.wanted.get(name) ?? 0, object.spec.replicas ?? 0));
    },
    () => undefined,
  );
}

async function pool(name: string): Promise<CloudPhonePool> {
  return (await custom.getNamespacedCustomObject({ ...api, plural: 'cloudphonepools', name })) as CloudPhonePool;
}

function template(app: string): Record<string, unknown> {
  return {
    metadata: { labels: { app } },
    spec: { containers: [{ name: 'android', image: 'redroid/redroid:14.0.0-latest' }] },
  };
}

async function claimLatencies(): Promise<number[]> {
  await create('cloudphonepools', 'CloudPhonePool', 'warm', {
    streamRef: { name: 'phones' },
    template: template('bench-phone'),
    autoscaling: { minReplicas: 0, maxReplicas: CLAIMS + 100, buffer: 20 },
  });
  await waitFor(
    '20 idle phones',
    async () => ((await pool('warm')).status?.idleReplicas === 20 ? true : undefined),
    120_000,
  );

  const createdAt = new Map<string, number>();
  const boundAfter = new Map<string, number>();
  const watch = await new Watch(kc).watch(
    `/apis/cloudphone.io/v1alpha1/namespaces/${namespace}/cloudphoneclaims`,
    {},
    (_type: string, claim: CloudPhoneClaim) => {
      const name = claim.metadata?.name ?? '';
      const start = createdAt.get(name);
      if (claim.status?.phase === 'Bound' && start !== undefined && !boundAfter.has(name))
        boundAfter.set(name, performance.now() - start);
    },
    () => undefined,
  );
  try {
    for (let i = 0; i < CLAIMS; i++) {
      const name = `claim-${String(i)}`;
      const start = performance.now();
      await create('cloudphoneclaims', 'CloudPhoneClaim', name, { poolRef: { name: 'warm' }, access: 'control' });
      createdAt.set(name, start);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitFor(
      `${String(CLAIMS)} claims bound`,
      () => Promise.resolve(boundAfter.size === CLAIMS ? true : undefined),
      120_000,
    );
  } finally {
    watch.abort();
  }
  return [...boundAfter.values()];
}

async function growSeconds(): Promise<number> {
  await create('cloudphonepools', 'CloudPhonePool', 'grow', {
    replicas: 0,
    streamRef: { name: 'phones' },
    template: template('bench-phone'),
  });
  const start = performance.now();
  kubectl('scale', '--namespace', namespace, 'cloudphonepool/grow', `--replicas=${String(GROW)}`);
  await waitFor(
    `${String(GROW)} ready phones`,
    async () => ((await pool('grow')).status?.readyReplicas === GROW ? true : undefined),
    600_000,
  );
  return (performance.now() - start) / 1000;
}

/** The peer: the same phones as a Deployment, scaled the same way, timed the same way. */
async function deploymentGrowSeconds(): Promise<number> {
  const apps = kc.makeApiClient(AppsV1Api);
  await apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name: 'peer' },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'bench-phone', peer: 'deployment' } },
        template: {
          metadata: { labels: { app: 'bench-phone', peer: 'deployment' } },
          spec: { containers: [{ name: 'android', image: 'redroid/redroid:14.0.0-latest' }] },
        },
      },
    },
  });
  const start = performance.now();
  kubectl('scale', '--namespace', namespace, 'deployment/peer', `--replicas=${String(GROW)}`);
  await waitFor(
    `${String(GROW)} ready pods of the Deployment`,
    async () =>
      (await apps.readNamespacedDeployment({ name: 'peer', namespace })).status?.readyReplicas === GROW
        ? true
        : undefined,
    600_000,
  );
  return (performance.now() - start) / 1000;
}

async function main(): Promise<void> {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: 'tokens' },
      stringData: { view: 'bench-view-token-1', control: 'bench-control-token-1' },
    },
  });
  await create('cloudphonestreams', 'CloudPhoneStream', 'phones', {
    selector: { matchLabels: { app: 'bench-phone' } },
    phoneContainer: 'android',
    webrtc: { whep: { authSecretRef: { name: 'tokens' } } },
  });
  const operator = await new OperatorProcess('bench-autoscale', kubeconfigPath).started();
  const stopWatching = [countPods(), watchWanted()];
  try {
    await waitFor('the operator to lead', () => Promise.resolve(operator.isLeaderInLogs() ? true : undefined), 60_000);
    const latencies = await claimLatencies();
    const grow = await growSeconds();
    kubectl('scale', '--namespace', namespace, 'cloudphonepool/grow', '--replicas=0');
    await waitFor(
      'the pool to empty',
      async () => ((await pool('grow')).status?.replicas === 0 ? true : undefined),
      300_000,
    );
    const peer = await deploymentGrowSeconds();
    const result = {
      claims: CLAIMS,
      claim_p50_ms: round(percentile(latencies, 50)),
      claim_p99_ms: round(percentile(latencies, 99)),
      claim_max_ms: round(Math.max(...latencies)),
      grow_phones: GROW,
      grow_0_to_1000_s: round(grow),
      peer_deployment_grow_s: round(peer),
      warm_max_pods: most.pods.get('warm') ?? 0,
      warm_max_wanted: most.wanted.get('warm') ?? 0,
      grow_max_pods: most.pods.get('grow') ?? 0,
      grow_max_wanted: most.wanted.get('grow') ?? 0,
      peer_deployment_max_pods: most.pods.get('peer') ?? 0,
    };
    console.log(
      `Pools on the local control plane (kwok):\n` +
        `  claim to bound with a warm pool (${String(CLAIMS)} claims, one every 100 ms): p50 ${String(result.claim_p50_ms)} ms, ` +
        `p99 ${String(result.claim_p99_ms)} ms, max ${String(result.claim_max_ms)} ms (target p99 < 1 s)\n` +
        `  grow 0 -> ${String(GROW)} phones Ready: ${String(result.grow_0_to_1000_s)} s ` +
        `(the peer, a Deployment of the same pods: ${String(result.peer_deployment_grow_s)} s)\n` +
        `  most pods at once against most wanted: warm pool ${String(result.warm_max_pods)} of ` +
        `${String(result.warm_max_wanted)}, growing pool ${String(result.grow_max_pods)} of ` +
        `${String(result.grow_max_wanted)}, the Deployment ${String(result.peer_deployment_max_pods)} of ${String(GROW)}`,
    );
    const dir = new URL('results/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    writeFileSync(new URL('autoscale.json', dir), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    for (const stop of stopWatching) stop();
    await operator.stop();
    await core.deleteNamespace({ name: namespace });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
