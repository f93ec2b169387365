// The product as a user runs it, on the real node: the chart's two operator replicas as pods, phone pods (the
// simulator image as the `android` container) of a CloudPhonePool and of a StatefulSet, each injected with the
// sidecar by the chart's webhook and streaming for real; viewers, SRT receivers and a media server on this
// machine. Each test asserts what a user would see, in the order a user would meet it; the later ones break
// things (the leader, a sidecar, a phone) and the last one uninstalls.

import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { CoreV1Api, CoordinationV1Api, type V1Pod } from '@kubernetes/client-node';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import type { CloudPhoneClaim, CloudPhoneStream } from '../../generated/ts/api-types.ts';
import {
  kubeConfig,
  kubectl,
  repoRoot,
  sidecarReportToken,
  useTestNamespace,
  waitFor,
} from '../cluster/test-cluster.ts';
import { holdsFor } from '../cluster/wait-for.ts';
import { launchChromium, openPlayer, pagePoint, shownFrames } from '../media/chromium-player.ts';
import { SrtReceiver, type Stamp } from '../media/media-peers.ts';
import { MediaServer, RtspReader } from '../media/media-server.ts';
import { helm, installChartOnRealNode, killContainer, localImages, realNode, restartCount } from './real-node.ts';

const release = 'cloudphone';
const releaseNamespace = `cloudphone-e2e-${randomBytes(3).toString('hex')}`;
const phones = useTestNamespace('e2e-phones', { 'cloudphone.io/injection': 'enabled' });
const core = (): CoreV1Api => kubeConfig().makeApiClient(CoreV1Api);
const VIEW = `view-${randomBytes(12).toString('hex')}`;
const CONTROL = `control-${randomBytes(12).toString('hex')}`;
const WIDTH = 480;
const HEIGHT = 864;
const SRT_PORT = 9000;
const SRT_PASSPHRASE = 'e2e-srt-passphrase';
const RTMP_STREAM_KEY = 'e2e-rtmp-key-4c1f';
const WHEP_PORT = 8443;
const SIDECAR = 'cloudphone-sidecar';
/** The host directory behind the fleet's recording volume, and its PersistentVolume. */
const recordings = join(tmpdir(), `cloudphone-e2e-recordings-${randomBytes(3).toString('hex')}`);
const recordingsVolume = `cloudphone-e2e-recordings-${randomBytes(3).toString('hex')}`;

function kubectlWithInput(input: string, ...args: string[]): string {
  return execFileSync(join(repoRoot, '.cache/bin/kubectl'), ['--kubeconfig', inject('kubeconfig'), ...args], {
    input,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** kubectl apply of objects given as data, through the apiserver and so through the operator's webhooks. */
function apply(...objects: object[]): void {
  kubectlWithInput(objects.map((o) => stringify(o)).join('---\n'), 'apply', '-f', '-');
}

/** kubectl get ... -o json, parsed (the callers say what it is). */
function getJson(...args: string[]): unknown {
  return JSON.parse(kubectl('get', ...args, '-o', 'json'));
}

function stream(name: string): CloudPhoneStream {
  return getJson('cloudphonestream', name, '-n', phones()) as CloudPhoneStream;
}

function phonePods(app: string): V1Pod[] {
  return (getJson('pods', '-n', phones(), '-l', `app=${app}`) as { items: V1Pod[] }).items.filter(
    (pod) => !pod.metadata?.deletionTimestamp,
  );
}

function operatorPods(): V1Pod[] {
  return (
    getJson('pods', '-n', releaseNamespace, '-l', 'app.kubernetes.io/name=cloudphone-operator') as { items: V1Pod[] }
  ).items;
}

async function leaseHolder(): Promise<string> {
  const lease = await kubeConfig()
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name: 'cloudphone-operator', namespace: releaseNamespace });
  return lease.spec?.holderIdentity ?? '';
}

/** An SRT receiver calling a pool phone's listener, with the stream's passphrase. */
function srtReceiverOf(pod: V1Pod): SrtReceiver {
  return new SrtReceiver({
    connectTo: podIp(pod),
    port: SRT_PORT,
    width: WIDTH,
    height: HEIGHT,
    passphrase: SRT_PASSPHRASE,
  });
}

function podIp(pod: V1Pod): string {
  const ip = pod.status?.podIP;
  if (!ip) throw new Error(`pod ${pod.metadata?.name ?? ''} has no IP`);
  return ip;
}

/** The phone's simulator prints every input event it gets on stdout: the pod's log is the phone's side. */
function phoneInputEvents(pod: string): { kind: string; action?: number; x?: number; y?: number }[] {
  return kubectl('logs', pod, '-n', phones(), '-c', 'android')
    .split('\n')
    .filter((line) => line.startsWith('{"event":"input"'))
    .map((line) => JSON.parse(line) as { kind: string; action?: number; x?: number; y?: number });
}

/** Whether the stream's status counts every one of its phones streaming, with Ready=True. */
function allStreaming(name: string, phoneCount: number): boolean {
  const status = stream(name).status;
  const ready = status?.conditions?.find((c) => c.type === 'Ready')?.status;
  return status?.pods === phoneCount && status.streaming === phoneCount && ready === 'True';
}

/** A WHEP POST that only asks whether the token is taken: 415 (wrong body type) means yes, 401 means no. */
async function tokenTaken(pod: V1Pod, token: string): Promise<number> {
  const response = await fetch(`http://${podIp(pod)}:${String(WHEP_PORT)}/whep`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'text/plain' },
    body: 'not an offer',
  });
  return response.status;
}

/** The sidecar's Prometheus metrics, from its pod's metrics port. */
async function sidecarMetrics(pod: V1Pod): Promise<string> {
  return (await fetch(`http://${podIp(pod)}:9090/metrics`)).text();
}

/** One sample's value (the first, whatever its labels); NaN when there is none. */
function metricValue(text: string, name: string): number {
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
}

/** POSTs JSON over HTTPS trusting only one CA, as a sidecar reports; resolves with the status code. */
function postJson(url: string, body: object, o: { token: string; ca: string; serverName: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        ca: o.ca,
        servername: o.serverName,
        headers: {
          authorization: `Bearer ${o.token}`,
          'content-type': 'application/json',
          'content-length': data.length,
        },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** The certificate a TLS server presents (not verified: what it presents is the question). */
function servedCertificate(host: string, port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port, rejectUnauthorized: false }, () => {
      const certificate = socket.getPeerX509Certificate();
      socket.destroy();
      if (certificate) resolve(certificate);
      else reject(new Error(`${host}:${String(port)} presented no certificate`));
    });
    socket.on('error', reject);
  });
}

/** The operator pods' last log lines, for a failure's message. */
function operatorLogs(): string {
  return operatorPods()
    .map((p) => {
      const name = p.metadata?.name ?? '';
      try {
        return `--- ${name}\n${kubectl('logs', name, '-n', releaseNamespace, '-c', 'operator', '--tail=40')}`;
      } catch (error) {
        return `--- ${name}: ${String(error)}`;
      }
    })
    .join('\n');
}

function increasing(stamps: Stamp[]): number[] {
  return stamps.map((s) => s.frame).filter((f): f is number => f !== null);
}

describe('cloudphone on a real node', () => {
  let mediaServer: MediaServer;
  let browser: Browser | undefined;
  let installed = false;

  beforeAll(async () => {
    // Over RTMP, any phone may publish to <its pod name>/<the stream key>, and to nothing else.
    mediaServer = await MediaServer.start(
      'whip-secret-e2e-0123456789',
      realNode.ip,
      `~^[a-z0-9-]+/${RTMP_STREAM_KEY}$`,
    );
    installChartOnRealNode(release, releaseNamespace);
    installed = true;
    // The fleet records into a claim whose PersistentVolume (hostPath, as an admin might give) claims 1Gi but is a
    // 2 MiB tmpfs: the volume fills long before retention's 64Mi, as a shared or undersized one does. hostPath
    // ignores fsGroup, so its root is writable by all; the kubelet makes each pod's directory (subPathExpr) so.
    mkdirSync(recordings, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0777', 'tmpfs', recordings]);
    apply(
      {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: recordingsVolume },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteMany'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: '',
          hostPath: { path: recordings, type: 'Directory' },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: 'recordings', namespace: phones() },
        spec: {
          accessModes: ['ReadWriteMany'],
          storageClassName: '',
          volumeName: recordingsVolume,
          resources: { requests: { storage: '1Gi' } },
        },
      },
    );
    apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'viewer-tokens', namespace: phones() },
      stringData: { view: VIEW, control: CONTROL },
    });
    // The leader fills the webhooks' caBundle with its CA; until then the apiserver cannot call them. A claim of a
    // pool that does not exist is refused by the validating webhook only once it answers.
    const probe = stringify({
      apiVersion: 'cloudphone.io/v1alpha1',
      kind: 'CloudPhoneClaim',
      metadata: { name: 'probe', namespace: phones() },
      spec: { poolRef: { name: 'no-such-pool' } },
    });
    await waitFor(
      'the webhooks to answer',
      () => {
        try {
          kubectlWithInput(probe, 'create', '--dry-run=server', '-f', '-');
          return Promise.resolve(undefined);
        } catch (error) {
          return Promise.resolve(String((error as { stderr?: string }).stderr).includes('no-such-pool') || undefined);
        }
      },
      120_000,
    );
    apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'whip-token', namespace: phones() },
        stringData: { token: mediaServer.publisherToken },
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'rtmp-key', namespace: phones() },
        stringData: { 'stream-key': RTMP_STREAM_KEY },
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'srt-passphrase', namespace: phones() },
        stringData: { passphrase: SRT_PASSPHRASE },
      },
      {
        apiVersion: 'cloudphone.io/v1alpha1',
        kind: 'CloudPhoneStream',
        metadata: { name: 'pool', namespace: phones() },
        spec: {
          selector: { matchLabels: { app: 'sim-pool' } },
          phoneContainer: 'android',
          video: { fps: 30 },
          srt: {
            mode: 'listener',
            port: SRT_PORT,
            latencyMs: 20,
            passphraseSecretRef: { name: 'srt-passphrase', key: 'passphrase' },
          },
          webrtc: {
            whep: { port: WHEP_PORT, authSecretRef: { name: 'viewer-tokens' } },
            whip: {
              url: mediaServer.whipUrl('{pod}'),
              tokenSecretRef: { name: 'whip-token', key: 'token' },
            },
          },
        },
      },
      {
        apiVersion: 'cloudphone.io/v1alpha1',
        kind: 'CloudPhoneStream',
        metadata: { name: 'fleet', namespace: phones() },
        spec: {
          selector: { matchLabels: { app: 'sim-fleet' } },
          phoneContainer: 'android',
          video: { fps: 30 },
          rtmp: { url: mediaServer.rtmpUrl('{pod}'), streamKeySecretRef: { name: 'rtmp-key', key: 'stream-key' } },
          recording: {
            volume: { persistentVolumeClaim: { claimName: 'recordings' } },
            segmentSeconds: 2,
            retention: { maxSize: '64Mi' },
          },
          webrtc: { whep: { port: WHEP_PORT, authSecretRef: { name: 'viewer-tokens' } } },
        },
      },
    );
    // The pool's phones put frames in a file of the shared volume, the fleet's in a sealed memfd passed over the
    // control socket: both ways a phone may share its screen, under the kubelet's users and seccomp profile.
    const phoneSpec = (memory: 'file' | 'memfd'): object => ({
      ...realNode.placement,
      terminationGracePeriodSeconds: 2,
      containers: [
        {
          name: 'android',
          image: localImages.simulator,
          imagePullPolicy: 'Never',
          args: [
            ...['--dir', '/run/cloudphone', '--width', String(WIDTH), '--height', String(HEIGHT)],
            ...['--fps', '30', '--memory', memory],
          ],
        },
      ],
    });
    apply(
      {
        apiVersion: 'cloudphone.io/v1alpha1',
        kind: 'CloudPhonePool',
        metadata: { name: 'pool', namespace: phones() },
        spec: {
          streamRef: { name: 'pool' },
          replicas: 2,
          autoscaling: { enabled: false, maxReplicas: 2 },
          template: { metadata: { labels: { app: 'sim-pool' } }, spec: phoneSpec('file') },
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'fleet', namespace: phones() },
        spec: {
          serviceName: 'fleet',
          replicas: 1,
          selector: { matchLabels: { app: 'sim-fleet' } },
          template: { metadata: { labels: { app: 'sim-fleet' } }, spec: phoneSpec('memfd') },
        },
      },
    );
    await waitFor(
      'three phone pods Ready on the real node',
      () => {
        const pods = [...phonePods('sim-pool'), ...phonePods('sim-fleet')];
        const ready = pods.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
        return Promise.resolve(ready.length === 3 || undefined);
      },
      240_000,
    );
  });

  afterAll(async () => {
    await browser?.close();
    await mediaServer.stop();
    try {
      kubectl('delete', 'persistentvolume', recordingsVolume, '--wait=false');
    } catch {
      /* never made */
    }
    try {
      execFileSync('umount', ['--lazy', recordings]);
      rmSync(recordings, { recursive: true, force: true });
    } catch {
      /* never mounted */
    }
    if (installed) {
      try {
        helm('uninstall', release, '--namespace', releaseNamespace, '--wait', '--timeout', '2m');
      } catch {
        /* already uninstalled by the last test */
      }
    }
    await core()
      .deleteNamespace({ name: releaseNamespace })
      .catch(() => undefined);
  });

  it('runs both operator replicas as pods on the real node, one of them leading', async () => {
    const pods = operatorPods();
    expect(pods).toHaveLength(2);
    for (const pod of pods) {
      expect(pod.spec?.nodeName).toBe(realNode.name);
      expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    }
    const holder = await waitFor('a leader', async () => (await leaseHolder()) || undefined);
    expect(pods.map((p) => p.metadata?.name)).toContain(holder.replace(/_[0-9a-f]+$/, ''));
  });

  it('injects the sidecar into every phone pod, and kubectl get cps shows every phone streaming', async () => {
    for (const pod of [...phonePods('sim-pool'), ...phonePods('sim-fleet')]) {
      expect(pod.spec?.nodeName).toBe(realNode.name);
      expect(pod.spec?.initContainers?.map((c) => c.name)).toContain(SIDECAR);
      expect(pod.metadata?.labels?.['cloudphone.io/stream']).toBeDefined();
    }
    // Sidecars report through the Service to either replica; the status counts all of them only if every report
    // reaches the leader.
    await waitFor(
      'both streams to count every phone streaming',
      () => Promise.resolve((allStreaming('pool', 2) && allStreaming('fleet', 1)) || undefined),
      90_000,
    );
    const table = kubectl('get', 'cps', '-n', phones());
    expect(table).toMatch(/^pool\s+True\s+2\s+2\s+/m);
    expect(table).toMatch(/^fleet\s+True\s+1\s+1\s+/m);
  });

  it('counts a report that reached the replica that does not lead', async () => {
    // Which replica a sidecar's connection lands on is the Service's choice, so this test picks it: a phone pod of
    // the fleet stream on a kwok node (injected, but no sidecar runs there to report), whose report is sent, with
    // a token bound to that pod as its sidecar's would be, straight to the replica that does not hold the Lease.
    apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'silent-phone', namespace: phones(), labels: { app: 'sim-fleet' } },
      spec: { nodeName: 'kwok-node-0', containers: [{ name: 'android', image: localImages.simulator }] },
    });
    const silent = await waitFor('the kwok phone to run', () => {
      const pod = getJson('pod', 'silent-phone', '-n', phones()) as V1Pod;
      return Promise.resolve(pod.status?.phase === 'Running' ? pod : undefined);
    });
    expect(silent.spec?.initContainers?.map((c) => c.name)).toContain(SIDECAR);
    const holder = await leaseHolder();
    const follower = operatorPods().find((p) => !holder.startsWith(`${p.metadata?.name ?? ''}_`));
    if (!follower) throw new Error('no replica besides the leader');
    const token = await sidecarReportToken(silent);
    const tls = await core().readNamespacedSecret({ name: 'cloudphone-operator-tls', namespace: releaseNamespace });
    const report = {
      stream: { namespace: phones(), name: 'fleet' },
      pod: 'silent-phone',
      streaming: true,
      viewers: 0,
      controlViewers: 0,
    };
    const send = (): Promise<number> =>
      postJson(`https://${podIp(follower)}:9444/report`, report, {
        token,
        ca: Buffer.from(tls.data?.['ca.crt'] ?? '', 'base64').toString(),
        serverName: `cloudphone-operator.${releaseNamespace}.svc`,
      });
    // The follower's pod cache may not have the new pod yet (403): a sidecar would report again, and so does this.
    await waitFor('the follower to take the report', async () => ((await send()) === 200 ? true : undefined));
    await waitFor('the leader to count the phone that reported only to the follower', async () => {
      if ((await send()) !== 200) return undefined;
      return allStreaming('fleet', 2) || undefined;
    });
    kubectl('delete', 'pod', 'silent-phone', '-n', phones(), '--wait=true', '--timeout=60s');
    await waitFor('the fleet stream back to its one real phone', () =>
      Promise.resolve(allStreaming('fleet', 1) || undefined),
    );
  });

  it('plays a phone pod in Chromium with the player page, and a tap lands on the phone', async () => {
    const [pod] = phonePods('sim-fleet');
    if (!pod) throw new Error('no fleet phone');
    browser = await launchChromium();
    const page = await openPlayer(browser, `http://${podIp(pod)}:${String(WHEP_PORT)}`, CONTROL);
    const frames = await waitFor('30 frames shown', async () => {
      const shown = await shownFrames(page);
      return shown.length >= 30 ? shown : undefined;
    });
    const numbers = frames.map((f) => f.frame);
    expect(numbers.at(-1)).toBeGreaterThan(numbers[0] ?? Infinity);
    const point = await pagePoint(page, 0.3, 0.6);
    await page.mouse.click(point.x, point.y);
    const tap = await waitFor('the tap on the phone', () =>
      Promise.resolve(phoneInputEvents(pod.metadata?.name ?? '').find((e) => e.kind === 'touch' && e.action === 1)),
    );
    expect(tap.x).toBeCloseTo(0.3, 2);
    expect(tap.y).toBeCloseTo(0.6, 2);
    await page.close();
  });

  it("gets each pool phone's SRT stream on this machine, frames in order", async () => {
    for (const pod of phonePods('sim-pool')) {
      const receiver = srtReceiverOf(pod);
      try {
        await waitFor(`30 frames from ${pod.metadata?.name ?? ''} over SRT`, () =>
          Promise.resolve(increasing(receiver.stamps).length >= 30 || undefined),
        );
        const numbers = increasing(receiver.stamps);
        for (let i = 1; i < numbers.length; i++) expect(numbers[i]).toBeGreaterThan(numbers[i - 1] ?? Infinity);
      } finally {
        await receiver.stop();
      }
    }
  });

  it('pushes every pool phone to the media server with WHIP', async () => {
    const pods = phonePods('sim-pool');
    for (const pod of pods) {
      const path = await waitFor(`mediamtx to receive ${pod.metadata?.name ?? ''}`, async () => {
        const found = await mediaServer.path(pod.metadata?.name ?? '');
        return found?.ready ? found : undefined;
      });
      expect(path.source?.type).toBe('webRTCSession');
    }
    const name = pods[0]?.metadata?.name ?? '';
    const reader = new RtspReader(`rtsp://${mediaServer.host}:${String(mediaServer.rtspPort)}/${name}`, WIDTH, HEIGHT);
    try {
      await waitFor('30 frames read back from the media server', () =>
        Promise.resolve(increasing(reader.stamps).length >= 30 || undefined),
      );
    } finally {
      await reader.stop();
    }
  });

  it('pushes the fleet phone to the media server over RTMP, its stream key from the Secret', async () => {
    const name = phonePods('sim-fleet')[0]?.metadata?.name ?? '';
    const path = await waitFor(`mediamtx to receive ${name} over RTMP`, async () => {
      const found = await mediaServer.path(`${name}/${RTMP_STREAM_KEY}`);
      return found?.ready ? found : undefined;
    });
    expect(path.source?.type).toBe('rtmpConn');
    const url = `rtsp://${mediaServer.host}:${String(mediaServer.rtspPort)}/${name}/${RTMP_STREAM_KEY}`;
    const reader = new RtspReader(url, WIDTH, HEIGHT);
    try {
      await waitFor('30 frames read back from the media server', () =>
        Promise.resolve(increasing(reader.stamps).length >= 30 || undefined),
      );
    } finally {
      await reader.stop();
    }
  });

  it('records the fleet phone into its claim; a full volume shows in the Recording condition and an Event', async () => {
    const name = phonePods('sim-fleet')[0]?.metadata?.name ?? '';
    const directory = join(recordings, name); // the pod's own directory, made by the kubelet
    const recording = (): { status?: string; reason?: string; message?: string } | undefined =>
      stream('fleet').status?.conditions?.find((c) => c.type === 'Recording');
    // 2 MiB fill within seconds at the stream's bitrate.
    const stopped = await waitFor(
      'the Recording condition to say the volume is full',
      () => Promise.resolve(recording()?.status === 'False' ? recording() : undefined),
      120_000,
    );
    expect(stopped).toMatchObject({ reason: 'RecordingStopped' });
    expect(stopped.message).toContain(`${name}: the recording volume is full`);
    const events = kubectl(
      'get',
      'events',
      '-n',
      phones(),
      '--field-selector',
      'involvedObject.name=fleet',
      '-o',
      'json',
    );
    const warning = (JSON.parse(events) as { items: { type: string; reason: string; message: string }[] }).items.find(
      (e) => e.reason === 'RecordingStopped',
    );
    expect(warning?.type).toBe('Warning');
    expect(warning?.message).toContain(name);
    // What it wrote is whole: finished segments only, each decoding cleanly from a keyframe.
    const files = readdirSync(directory).sort();
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      expect(file).toMatch(/^\d{8}T\d{6}\.\d{3}Z\.mp4$/);
      expect(
        execFileSync('ffmpeg', ['-v', 'error', '-i', join(directory, file), '-f', 'null', '-'], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      ).toBe('');
    }
    // The stream goes on while recording is stopped.
    expect(stream('fleet').status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');

    // The admin grows the volume: recording resumes by itself, and the condition says so.
    execFileSync('mount', ['-o', 'remount,size=256m', recordings]);
    await waitFor(
      'the Recording condition to be True again',
      () => Promise.resolve(recording()?.status === 'True' || undefined),
      120_000,
    );
    await waitFor('a segment written after resuming', () =>
      Promise.resolve(readdirSync(directory).filter((f) => f.endsWith('.mp4')).length > files.length || undefined),
    );
  });

  it('binds a claim to a phone pod of the pool, and its token works on that phone only', async () => {
    apply({
      apiVersion: 'cloudphone.io/v1alpha1',
      kind: 'CloudPhoneClaim',
      metadata: { name: 'alice', namespace: phones() },
      spec: { poolRef: { name: 'pool' }, access: 'control' },
    });
    const claim = await waitFor('the claim to be Bound', () => {
      const c = getJson('cloudphoneclaim', 'alice', '-n', phones()) as CloudPhoneClaim;
      return Promise.resolve(c.status?.phase === 'Bound' ? c : undefined);
    });
    const secret = await core().readNamespacedSecret({
      name: claim.status?.tokenSecretName ?? '',
      namespace: phones(),
    });
    const token = Buffer.from(secret.data?.token ?? '', 'base64').toString();
    expect(token.length).toBeGreaterThan(20);
    const pods = phonePods('sim-pool');
    const bound = pods.find((p) => p.metadata?.name === claim.status?.pod);
    const other = pods.find((p) => p.metadata?.name !== claim.status?.pod);
    if (!bound || !other) throw new Error('the pool does not have the bound phone and another');
    expect(await tokenTaken(bound, token)).toBe(415);
    expect(await tokenTaken(other, token)).toBe(401);
  });

  it('replaces the CA while the phones stream, and no sidecar report fails', async () => {
    const phonesNow = [...phonePods('sim-pool'), ...phonePods('sim-fleet')];
    const reports = async (pod: V1Pod, result: 'ok' | 'failed'): Promise<number> =>
      Number(
        new RegExp(`^cloudphone_operator_reports_total\\{result="${result}"\\} (\\S+)$`, 'm').exec(
          await sidecarMetrics(pod),
        )?.[1] ?? 0,
      );
    const failedBefore = await Promise.all(phonesNow.map((p) => reports(p, 'failed')));
    const readTls = () => core().readNamespacedSecret({ name: 'cloudphone-operator-tls', namespace: releaseNamespace });
    const oldCa = Buffer.from((await readTls()).data?.['ca.crt'] ?? '', 'base64').toString();
    // The Secret is lost: the leader makes a new CA, and rolls the old one over.
    await core().deleteNamespacedSecret({ name: 'cloudphone-operator-tls', namespace: releaseNamespace });
    const newCa = await waitFor('a new CA', async () => {
      const ca = Buffer.from((await readTls().catch(() => undefined))?.data?.['ca.crt'] ?? '', 'base64').toString();
      return ca && ca !== oldCa ? ca : undefined;
    });
    // Meanwhile the old CA's certificate is still served (the rollover has only begun).
    const oldKey = new X509Certificate(oldCa).publicKey;
    for (const pod of operatorPods()) expect((await servedCertificate(podIp(pod), 9444)).verify(oldKey)).toBe(true);
    // Both replicas end up serving the new CA's certificate on the report port (after the rollover period the
    // chart was given here, longer than the kubelet takes to bring the new bundle into the pods).
    await waitFor(
      'both replicas serving the new CA',
      async () => {
        // Both CAs have the same name: the signature tells them apart.
        const served = await Promise.all(operatorPods().map((p) => servedCertificate(podIp(p), 9444)));
        const key = new X509Certificate(newCa).publicKey;
        return (served.length === 2 && served.every((c) => c.verify(key))) || undefined;
      },
      300_000,
    );
    // Every sidecar reports successfully again after the switch, and none ever failed.
    const okAfterSwitch = await Promise.all(phonesNow.map((p) => reports(p, 'ok')));
    await waitFor(
      'two more reports from every phone',
      async () => {
        const ok = await Promise.all(phonesNow.map((p) => reports(p, 'ok')));
        return ok.every((n, i) => n >= (okAfterSwitch[i] ?? 0) + 2) || undefined;
      },
      60_000,
    );
    expect(await Promise.all(phonesNow.map((p) => reports(p, 'failed')))).toEqual(failedBefore);
    expect(allStreaming('pool', 2) && allStreaming('fleet', 1)).toBe(true);
  }, 400_000);

  it('keeps every stream reported and every phone when the leader pod is killed', async () => {
    const before = new Map(
      [...phonePods('sim-pool'), ...phonePods('sim-fleet')].map((p) => [p.metadata?.name, p.metadata?.uid]),
    );
    const holder = await leaseHolder();
    const leaderPod = operatorPods().find((p) => holder.startsWith(`${p.metadata?.name ?? ''}_`));
    if (!leaderPod) throw new Error(`no operator pod holds the lease (${holder})`);
    killContainer(leaderPod, 'operator');
    // Another process takes the lease once it runs out: the other replica, or the killed container restarted by
    // the kubelet (it starts in about a second and races the other replica for the expired lease; both have been
    // seen winning). Either way a leader that was not running when the phones reported takes over.
    const successor = await waitFor(
      'another operator process to take the lease',
      async () => {
        const now = await leaseHolder();
        return now && now !== holder ? now : undefined;
      },
      60_000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${operatorLogs()}`);
    });
    expect(successor).not.toBe(holder);
    // The new leader knew every phone's report already: the streams stay fully reported. The status the old
    // leader wrote would still read so for a moment, so it must hold over a report interval and more, long after
    // the new leader reconciled every stream on taking over (a leader knowing only its own reports would have
    // written fewer phones by then).
    await holdsFor(
      'both streams counting every phone streaming under the new leader',
      () => allStreaming('pool', 2) && allStreaming('fleet', 1),
      15_000,
    );
    const after = new Map(
      [...phonePods('sim-pool'), ...phonePods('sim-fleet')].map((p) => [p.metadata?.name, p.metadata?.uid]),
    );
    expect(after).toEqual(before);
    expect((getJson('cloudphoneclaim', 'alice', '-n', phones()) as CloudPhoneClaim).status?.phase).toBe('Bound');
  });

  it('restarts a killed sidecar, and the phone streams again', async () => {
    const [pod] = phonePods('sim-fleet');
    if (!pod) throw new Error('no fleet phone');
    const restarts = restartCount(pod, SIDECAR);
    const startedBefore = metricValue(await sidecarMetrics(pod), 'process_start_time_seconds');
    killContainer(pod, SIDECAR);
    await waitFor('the kubelet to restart the sidecar', () =>
      Promise.resolve(
        restartCount(getJson('pod', pod.metadata?.name ?? '', '-n', phones()) as V1Pod, SIDECAR) > restarts ||
          undefined,
      ),
    );
    // The new sidecar process (a later start time) has the phone again and encodes its frames.
    await waitFor('the new sidecar to encode the phone', async () => {
      const metrics = await sidecarMetrics(pod).catch(() => '');
      return (
        (metricValue(metrics, 'process_start_time_seconds') > startedBefore &&
          metricValue(metrics, 'cloudphone_producer_connected') === 1 &&
          metricValue(metrics, 'cloudphone_frames_encoded_total') >= 30) ||
        undefined
      );
    });
    await waitFor('the fleet stream to count the phone streaming', () =>
      Promise.resolve(allStreaming('fleet', 1) || undefined),
    );
  });

  it('keeps the sidecar when the phone container dies, and streams the new phone', async () => {
    const [pod] = phonePods('sim-pool');
    if (!pod) throw new Error('no pool phone');
    const name = pod.metadata?.name ?? '';
    const sidecarRestarts = restartCount(pod, SIDECAR);
    const phoneRestarts = restartCount(pod, 'android');
    const receiver = srtReceiverOf(pod);
    try {
      await waitFor('frames before the phone dies', () =>
        Promise.resolve(increasing(receiver.stamps).length >= 10 || undefined),
      );
      const lastBefore = Math.max(...increasing(receiver.stamps));
      const countBefore = receiver.stamps.length;
      killContainer(pod, 'android');
      await waitFor('the kubelet to restart the phone', () =>
        Promise.resolve(
          restartCount(getJson('pod', name, '-n', phones()) as V1Pod, 'android') > phoneRestarts || undefined,
        ),
      );
      // The new phone counts its frames from zero: frames numbered below the last one before are the new phone's.
      await waitFor(
        'frames of the new phone over the same SRT connection',
        () =>
          Promise.resolve(
            increasing(receiver.stamps.slice(countBefore)).filter((n) => n < lastBefore).length >= 10 || undefined,
          ),
        60_000,
      );
    } finally {
      await receiver.stop();
    }
    expect(restartCount(getJson('pod', name, '-n', phones()) as V1Pod, SIDECAR)).toBe(sidecarRestarts);
  });

  it('leaves no operator pod and no webhook behind on helm uninstall', async () => {
    // The streams' finalizer is the operator's to remove: delete them while it runs, as a user would.
    kubectl(
      'delete',
      'cloudphoneclaims,cloudphonepools,cloudphonestreams',
      '--all',
      '-n',
      phones(),
      '--wait=true',
      '--timeout=90s',
    );
    kubectl('delete', 'statefulset', 'fleet', '-n', phones(), '--wait=true', '--timeout=60s');
    helm('uninstall', release, '--namespace', releaseNamespace, '--wait', '--timeout', '2m');
    await waitFor('the operator pods to be gone', () => Promise.resolve(operatorPods().length === 0 || undefined));
    const webhooks = kubectl('get', 'mutatingwebhookconfigurations,validatingwebhookconfigurations', '-o', 'name');
    expect(webhooks).not.toMatch(/cloudphone/);
  });
});
