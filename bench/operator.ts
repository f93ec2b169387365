// Benchmark of the operator on the local control plane (not a test: it prints figures and saves them).
//
//   npm run bench:operator [-- --pods 1000 --rate 200]
//
// 1. Admission: pods created at a steady rate (200/s) in an opted-in namespace; the operator's own handling
//    time per review (from its request log) gives webhook p50/p99, and the client's create latency is put
//    side by side with the same run in a namespace without injection (the peer: the apiserver alone).
// 2. Convergence: from the first pod creation until the stream's status counts every pod injected, with the
//    operator's status writes per second and the apiserver's write requests per second over that time.
// 3. Memory: the operator's resident set (VmRSS from /proc), sampled every 250 ms from its start to the end, with
//    all 2 x pods in the cluster (half of them pods it has no business with); the peak is reported (goal < 256 MB).
// Results: bench/results/operator.json.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { pooledKubeConfig } from '../operator/src/kube/kube-config.ts';
import { OperatorProcess } from '../test/cluster/operator-process.ts';
import { waitFor } from '../test/cluster/wait-for.ts';
import { percentile, round } from './figures.ts';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: { pods: { type: 'string', default: '1000' }, rate: { type: 'string', default: '200' } },
});
const PODS = Number(values.pods);
const RATE = Number(values.rate);
const kubeconfigPath = join(root, '.cache/cluster/kubeconfig');

function apiserverMetrics(): string {
  return execFileSync(join(root, '.cache/bin/kubectl'), ['--kubeconfig', kubeconfigPath, 'get', '--raw', '/metrics'], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
}

/** The apiserver's count of mutating requests so far (POST, PUT, PATCH, DELETE). */
function apiserverWrites(text: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    if (!/verb="(POST|PUT|PATCH|DELETE|APPLY)"/.test(line)) continue;
    total += Number(line.split(' ').at(-1));
  }
  return total;
}

/** Cumulative buckets (upper bound in seconds -> count) of the apiserver's timing of our injection webhook. */
function webhookBuckets(text: string): Map<number, number> {
  const buckets = new Map<number, number>();
  const pattern = /^apiserver_admission_webhook_admission_duration_seconds_bucket\{(.*)\} (\d+)$/;
  for (const line of text.split('\n')) {
    const match = pattern.exec(line);
    if (!match?.[1]?.includes('name="sidecar-injector.cloudphone.io"') || !match[1].includes('rejected="false"'))
      continue;
    const le = /le="([^"]+)"/.exec(match[1])?.[1] ?? '+Inf';
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(match[2]));
  }
  return buckets;
}

/** A percentile, in ms, of the observations between two snapshots of a histogram, interpolated in its bucket. */
function histogramPercentile(before: Map<number, number>, after: Map<number, number>, p: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const rank = (p / 100) * (counts.at(-1) ?? 0);
  let lower = 0;
  for (const [i, bound] of bounds.entries()) {
    const count = counts[i] ?? 0;
    const below = i === 0 ? 0 : (counts[i - 1] ?? 0);
    if (count >= rank) {
      if (bound === Infinity) return lower * 1000;
      return (lower + ((rank - below) / Math.max(1, count - below)) * (bound - lower)) * 1000;
    }
    lower = bound;
  }
  return NaN;
}

/** Resident memory of a process in MB, from /proc (0 once it is gone). */
function rssMb(pid: number | undefined): number {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'))?.[1];
    return Number(kb ?? 0) / 1024;
  } catch {
    return 0;
  }
}

function podBody(name: string) {
  return {
    metadata: { name, labels: { app: 'bench' } },
    spec: { containers: [{ name: 'android', image: 'redroid/redroid:14.0.0-latest' }] },
  };
}

/** Creates `count` pods at `rate` per second; returns each create's latency in ms. */
async function createPods(core: CoreV1Api, namespace: string, count: number, rate: number): Promise<number[]> {
  const latencies: number[] = [];
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const sent = performance.now();
    inFlight.push(
      core.createNamespacedPod({ namespace, body: podBody(`phone-${String(i)}`) }).then(() => {
        latencies.push(performance.now() - sent);
      }),
    );
  }
  await Promise.all(inFlight);
  return latencies.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  execFileSync('bash', [join(root, 'test/cluster/up.sh')], { stdio: 'inherit' });
  execFileSync(
    join(root, '.cache/bin/kubectl'),
    ['--kubeconfig', kubeconfigPath, 'apply', '--server-side', '--force-conflicts', '-f', join(root, 'crds')],
    {
      stdio: 'ignore',
    },
  );
  const kc = pooledKubeConfig((config) => {
    config.loadFromFile(kubeconfigPath);
  });
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const suffix = Date.now().toString(36);
  const injected = `bench-inject-${suffix}`;
  const plain = `bench-plain-${suffix}`;
  await core.createNamespace({
    body: { metadata: { name: injected, labels: { 'cloudphone.io/injection': 'enabled' } } },
  });
  await core.createNamespace({ body: { metadata: { name: plain } } });
  for (const namespace of [injected, plain]) {
    await waitFor('the default ServiceAccount', () =>
      core.readNamespacedServiceAccount({ name: 'default', namespace }),
    );
  }
  await core.createNamespacedSecret({
    namespace: injected,
    body: {
      metadata: { name: 'viewer-tokens' },
      stringData: { view: 'bench-view-token', control: 'bench-control-token' },
    },
  });

  const operator = await new OperatorProcess('bench-operator', kubeconfigPath).started();
  let peakRssMb = 0;
  let peakHeapMb = 0;
  let samples = 0;
  const sampler = setInterval(() => {
    peakRssMb = Math.max(peakRssMb, rssMb(operator.pid));
    // The operator's own view, every second: how much of the resident set is live JavaScript heap.
    if (samples++ % 4 === 0)
      void fetch(`http://127.0.0.1:${String(operator.healthPort)}/metrics`)
        .then((r) => r.text())
        .then((text) => {
          const used = Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? 0) / 1024 / 1024;
          peakHeapMb = Math.max(peakHeapMb, used);
        })
        .catch(() => undefined);
  }, 250);
  try {
    await waitFor('the operator to lead', () => Promise.resolve(operator.isLeaderInLogs() || undefined));
    await custom.createNamespacedCustomObject({
      group: 'cloudphone.io',
      version: 'v1alpha1',
      namespace: injected,
      plural: 'cloudphonestreams',
      body: {
        apiVersion: 'cloudphone.io/v1alpha1',
        kind: 'CloudPhoneStream',
        metadata: { name: 'bench' },
        spec: {
          selector: { matchLabels: { app: 'bench' } },
          phoneContainer: 'android',
          webrtc: { whep: { authSecretRef: { name: 'viewer-tokens' } } },
        },
      },
    });
    // Let the webhook see the stream before the first pod arrives.
    await waitFor(
      'the stream to be reconciled',
      async () =>
        (
          (await custom.getNamespacedCustomObject({
            group: 'cloudphone.io',
            version: 'v1alpha1',
            namespace: injected,
            plural: 'cloudphonestreams',
            name: 'bench',
          })) as { status?: object }
        ).status,
    );

    console.log(`peer: ${String(PODS)} pods at ${String(RATE)}/s without injection`);
    const plainLatencies = await createPods(core, plain, PODS, RATE);

    console.log(`cloudphone: ${String(PODS)} pods at ${String(RATE)}/s with injection`);
    const logStart = operator.logs.length;
    const metricsBefore = apiserverMetrics();
    const started = performance.now();
    const injectLatencies = await createPods(core, injected, PODS, RATE);
    await waitFor(
      'the stream status to count every pod injected',
      async () => {
        const stream = (await custom.getNamespacedCustomObject({
          group: 'cloudphone.io',
          version: 'v1alpha1',
          namespace: injected,
          plural: 'cloudphonestreams',
          name: 'bench',
        })) as { status?: { pods?: number; injected?: number } };
        return stream.status?.pods === PODS && stream.status.injected === PODS ? true : undefined;
      },
      600_000,
    );
    const convergeS = (performance.now() - started) / 1000;
    const metricsAfter = apiserverMetrics();
    const apiserverWritesPerS = (apiserverWrites(metricsAfter) - apiserverWrites(metricsBefore)) / convergeS;
    const seenBefore = webhookBuckets(metricsBefore);
    const seenAfter = webhookBuckets(metricsAfter);
    const metrics = await fetch(`http://127.0.0.1:${String(operator.healthPort)}/metrics`).then((r) => r.text());
    const statusWrites = Number(/^cloudphone_status_writes_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    const diagnostics = metrics
      .split('\n')
      .filter((l) =>
        /^(cloudphone_https_connections\{[^}]*\}|nodejs_eventloop_lag_(mean|p50|p99|max)_seconds|nodejs_heap_size_(total|used)_bytes|nodejs_external_memory_bytes|process_resident_memory_bytes|nodejs_heap_space_size_total_bytes\{[^}]*\}) /.test(
          l,
        ),
      );
    console.log(diagnostics.join('\n'));

    const webhook = operator.logs
      .slice(logStart)
      .filter((l) => l.msg === 'request served' && String(l.path).startsWith('/mutate-pods'))
      .map((l) => Number(l.durationMs))
      .sort((a, b) => a - b);
    const result = {
      // As the apiserver measures a call to our webhook (network, TLS and queueing included), interpolated
      // within its histogram's buckets.
      webhook_p50_ms: round(histogramPercentile(seenBefore, seenAfter, 50)),
      webhook_p99_ms: round(histogramPercentile(seenBefore, seenAfter, 99)),
      // The operator's own time from request to response, exact.
      webhook_handler_p50_ms: round(percentile(webhook, 50)),
      webhook_handler_p99_ms: round(percentile(webhook, 99)),
      pods: PODS,
      converge_s: round(convergeS),
      status_writes_per_s: round(statusWrites / convergeS),
      apiserver_writes_per_s: round(apiserverWritesPerS),
      rate_per_s: RATE,
      reviews: webhook.length,
      create_p50_ms: {
        cloudphone: round(percentile(injectLatencies, 50)),
        peer_no_webhook: round(percentile(plainLatencies, 50)),
      },
      create_p99_ms: {
        cloudphone: round(percentile(injectLatencies, 99)),
        peer_no_webhook: round(percentile(plainLatencies, 99)),
      },
      operator_peak_rss_mb: round(Math.max(peakRssMb, rssMb(operator.pid))),
      operator_peak_heap_used_mb: round(peakHeapMb),
      pods_in_cluster: 2 * PODS,
    };
    console.log('\n                          cloudphone   peer (no webhook)');
    console.log(
      `pod create p50 (ms)      ${String(result.create_p50_ms.cloudphone).padEnd(12)} ${String(result.create_p50_ms.peer_no_webhook)}`,
    );
    console.log(
      `pod create p99 (ms)      ${String(result.create_p99_ms.cloudphone).padEnd(12)} ${String(result.create_p99_ms.peer_no_webhook)}`,
    );
    console.log(
      `webhook p50/p99 (ms) as the apiserver saw it: ${String(result.webhook_p50_ms)} / ${String(result.webhook_p99_ms)}`,
    );
    console.log(
      `webhook p50/p99 (ms) inside the operator: ${String(result.webhook_handler_p50_ms)} / ${String(result.webhook_handler_p99_ms)} over ${String(webhook.length)} reviews`,
    );
    console.log(`${String(PODS)} pods injected and counted in status after ${String(result.converge_s)} s`);
    console.log(
      `operator peak RSS: ${String(result.operator_peak_rss_mb)} MB (live heap at most ${String(result.operator_peak_heap_used_mb)} MB) with ${String(2 * PODS)} pods in the cluster (goal < 256 MB)`,
    );
    console.log(
      `status writes/s: ${String(result.status_writes_per_s)}; apiserver writes/s: ${String(result.apiserver_writes_per_s)}`,
    );
    mkdirSync(join(root, 'bench/results'), { recursive: true });
    writeFileSync(join(root, 'bench/results/operator.json'), `${JSON.stringify(result, null, 2)}\n`);
    console.log('saved bench/results/operator.json');
  } catch (error) {
    console.error(`the operator's last log lines:\n${operator.tail(40)}`);
    throw error;
  } finally {
    clearInterval(sampler);
    await cleanUp(core, [injected, plain], operator);
  }
}

/**
 * Namespaces first, while the operator still runs (streams of older releases carried its finalizer). Then waits for them to
 * go, since deleting their pods would load the next run. Reports, never throws: the figures are already out.
 */
async function cleanUp(core: CoreV1Api, namespaces: string[], operator: OperatorProcess): Promise<void> {
  for (const name of namespaces) await core.deleteNamespace({ name }).catch(() => undefined);
  try {
    for (const name of namespaces) {
      await waitFor(
        `namespace ${name} to be deleted`,
        () =>
          core.readNamespace({ name }).then(
            () => undefined,
            () => true,
          ),
        300_000,
      );
    }
  } catch (error) {
    console.error(`${String(error)}; the operator's last log lines:\n${operator.tail(40)}`);
    process.exitCode = 1;
  } finally {
    await operator.stop();
  }
}

await main();
