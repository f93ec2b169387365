// RTMP push to a real media server: mediamtx's RTMP ingest takes the sidecar's FLV, as a live service does,
// publishing only to the path that ends in the right stream key. What it received is read back over RTSP by
// ffmpeg and the stamps decoded. Also: the server killed and restarted is pushed to again, a wrong key is
// refused and counted (and backed off from) without the key ever appearing in a log line or a reason, and a
// new surface size goes out as a new sequence header (ffmpeg as the RTMP server keeps the FLV as it came).

import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadSidecarConfig } from '../../sidecar/src/config.ts';
import type { PipelineEvent } from '../../sidecar/src/native.ts';
import { Sidecar } from '../../sidecar/src/sidecar.ts';
import { waitFor } from '../cluster/wait-for.ts';
import { freeTcpPort, readMetric, rtmpListener, sidecarConfig, Simulator, stopChild, tempDir } from './media-peers.ts';
import { MediaServer } from './media-server.ts';

const WIDTH = 480;
const HEIGHT = 864;
const KEY = 'rtmp-stream-key-5f1c9e27';
// The pod is test/phone-0: the URL template {namespace}-{pod} names the application, the key ends the path.
const PATH = `test-phone-0/${KEY}`;

let server: MediaServer;
const cleanups: (() => Promise<void>)[] = [];
const certificates = tempDir('cloudphone-rtmps-');

beforeAll(async () => {
  // A certificate no CA of the system signed, for RTMPS: the push must refuse to publish to it.
  const certFile = join(certificates.path, 'cert.pem');
  const keyFile = join(certificates.path, 'key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'].concat([
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ]),
    { stdio: 'ignore' },
  );
  server = await MediaServer.start(undefined, undefined, PATH, { certFile, keyFile });
});

afterAll(async () => {
  await server.stop();
  certificates.remove();
});

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups.length = 0;
});

interface RtmpPhone {
  sidecar: Sidecar;
  simulator: Simulator;
  /** Every line the sidecar logged (JSON). */
  logLines: string[];
  events: PipelineEvent[];
  /** When each session began publishing (performance.now()). */
  publishedAt: number[];
  metric: (name: string) => Promise<number>;
  stop: () => Promise<void>;
}

/** The AVC sequence headers (AVCDecoderConfigurationRecords) in an FLV file, in order. */
function avcSequenceHeaders(flv: Buffer): Buffer[] {
  const headers: Buffer[] = [];
  // After the 9-byte header and the first PreviousTagSize: tags of 11 bytes of header, data, then 4 bytes.
  for (let at = 13; at + 11 <= flv.length; ) {
    const size = flv.readUIntBE(at + 1, 3);
    const data = flv.subarray(at + 11, at + 11 + size);
    // Video tag, codec 7 (AVC), AVCPacketType 0 (sequence header), then a 3-byte composition time.
    if (flv[at] === 9 && ((data[0] ?? 0) & 0x0f) === 7 && data[1] === 0) headers.push(data.subarray(5));
    at += 11 + size + 4;
  }
  return headers;
}

/** A simulated phone and its sidecar (in this process, its log kept) pushing RTMP with this stream key. */
async function rtmpPhone(key: string, ingest = server.rtmpUrl('{namespace}-{pod}')): Promise<RtmpPhone> {
  const shared = tempDir('cloudphone-rtmp-');
  const keyFile = join(shared.path, 'stream-key');
  writeFileSync(keyFile, `${key}\n`); // as a Secret volume may hold it: the newline is not part of the key
  const config = {
    ...sidecarConfig({ sharedDir: shared.path, video: { fps: 30, keyframeIntervalSeconds: 1 } }),
    logLevel: 'debug',
    rtmp: { url: ingest, streamKeyFile: keyFile },
  };
  const logLines: string[] = [];
  const events: PipelineEvent[] = [];
  const publishedAt: number[] = [];
  const settings = loadSidecarConfig(JSON.stringify(config), { namespace: 'test', pod: 'phone-0' });
  const sidecar = new Sidecar(settings, pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) }), {
    metricsHost: '127.0.0.1',
    metricsPort: 0,
    onEvent: (event) => {
      events.push(event);
      if (event.type === 'rtmp-connected') publishedAt.push(performance.now());
    },
  });
  await sidecar.start();
  const simulator = new Simulator({ dir: shared.path, width: WIDTH, height: HEIGHT, fps: 30 });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await simulator.stop();
    await sidecar.stop();
    shared.remove();
  };
  cleanups.push(stop);
  await waitFor('the phone to connect', () => Promise.resolve(sidecar.ready() ? true : undefined), 15_000);
  const metric = async (name: string): Promise<number> => (await readMetric(sidecar.metricsPort, name)) ?? 0;
  return { sidecar, simulator, logLines, events, publishedAt, metric, stop };
}

async function publishing(phone: RtmpPhone): Promise<boolean> {
  return (await phone.metric('cloudphone_rtmp_publishing')) === 1;
}

async function readBack(count: number): Promise<(number | null)[]> {
  return server.readBack(PATH, count, WIDTH, HEIGHT);
}

function expectWholeAndInOrder(frames: (number | null)[]): void {
  expect(frames.filter((frame) => frame === null)).toEqual([]);
  const numbers = frames as number[];
  for (let i = 1; i < numbers.length; i++) expect(numbers[i]).toBeGreaterThan(numbers[i - 1] ?? Infinity);
}

describe('RTMP push to mediamtx', () => {
  it('publishes the phone on the server, every frame read back whole and in order; stopping ends the publish', async () => {
    const phone = await rtmpPhone(KEY);
    await waitFor('the push to publish', async () => ((await publishing(phone)) ? true : undefined));
    const path = await waitFor('the path to be ready on the server', async () => {
      const found = await server.path(PATH);
      return found?.ready ? found : undefined;
    });
    expect(path).toMatchObject({ tracks: ['H264'], source: { type: 'rtmpConn' } });

    const frames = await readBack(60);
    expectWholeAndInOrder(frames);
    // Consecutive frames: nothing was lost between the sidecar and the server on loopback.
    const numbers = frames as number[];
    expect((numbers.at(-1) ?? 0) - (numbers[0] ?? 0)).toBeLessThan(numbers.length + 5);
    expect(await phone.metric('cloudphone_rtmp_sessions_total')).toBe(1);
    expect(await phone.metric('cloudphone_rtmp_failed_sessions_total')).toBe(0);
    expect(await phone.metric('cloudphone_rtmp_access_units_sent_total')).toBeGreaterThan(60);
    expect(await phone.metric('cloudphone_rtmp_bytes_sent_total')).toBeGreaterThan(10_000);

    // Stopping the sidecar ends the session: the server's path goes at once, not after a read timeout. (The
    // socket closing would do that alone; the FLV trailer and unpublish sent before it are not seen from here.)
    await phone.stop();
    await waitFor('the path to end on the server', async () => ((await server.path(PATH)) ? undefined : true), 3000);
  });

  it('sends a new sequence header when the picture changes size', async () => {
    // ffmpeg as the RTMP server this time: it keeps the FLV as it came (-c copy), sequence headers included.
    const port = await freeTcpPort();
    const dir = tempDir('cloudphone-rtmp-flv-');
    const flv = join(dir.path, 'received.flv');
    const receiver = rtmpListener(`rtmp://127.0.0.1:${String(port)}/app/${KEY}`, ['-c', 'copy', '-f', 'flv', flv]);
    cleanups.push(async () => {
      await stopChild(receiver);
      dir.remove();
    });
    const phone = await rtmpPhone(KEY, `rtmp://127.0.0.1:${String(port)}/app`);
    await waitFor('the push to publish', async () => ((await publishing(phone)) ? true : undefined));
    await waitFor('60 frames sent', async () =>
      (await phone.metric('cloudphone_rtmp_access_units_sent_total')) >= 60 ? true : undefined,
    );
    // The phone announces a new 864x480 surface: the encoder restarts with a new SPS.
    phone.simulator.command(`resize ${String(HEIGHT)} ${String(WIDTH)}`);
    await waitFor('the new surface', () =>
      Promise.resolve(phone.events.some((e) => e.type === 'surface' && e.width === HEIGHT) ? true : undefined),
    );
    const sentBefore = await phone.metric('cloudphone_rtmp_access_units_sent_total');
    await waitFor('60 more frames sent', async () =>
      (await phone.metric('cloudphone_rtmp_access_units_sent_total')) >= sentBefore + 60 ? true : undefined,
    );
    await phone.stop();
    await once(receiver, 'exit');

    const headers = avcSequenceHeaders(readFileSync(flv));
    expect(headers).toHaveLength(2);
    // Each is an AVCDecoderConfigurationRecord (version 1, 4-byte lengths), and the second holds another SPS.
    for (const header of headers) expect([header[0], (header[4] ?? 0) & 3]).toEqual([1, 3]);
    expect(Buffer.compare(headers[0] ?? Buffer.alloc(0), headers[1] ?? Buffer.alloc(0))).not.toBe(0);
  });

  it('pushes again once a media server that died is back', async () => {
    const phone = await rtmpPhone(KEY);
    await waitFor('the push to publish', async () => ((await publishing(phone)) ? true : undefined));
    const before = await readBack(10);

    await server.kill();
    await waitFor(
      'the sidecar to see the push lost',
      async () => ((await publishing(phone)) ? undefined : true),
      20_000,
    );
    await server.startProcess();
    await waitFor('the push to publish again', async () => ((await publishing(phone)) ? true : undefined), 40_000);
    const after = await readBack(30);
    expectWholeAndInOrder(after);
    expect(after[0]).toBeGreaterThan(before.at(-1) ?? Infinity);
    expect(await phone.metric('cloudphone_rtmp_sessions_total')).toBe(2);
    const lost = phone.events.find((e) => e.type === 'rtmp-disconnected');
    expect(lost).toBeDefined();
  });

  it('counts a refused stream key, backs off, and never shows the key', async () => {
    const wrongKey = 'not-the-key-7d04b1aa';
    const phone = await rtmpPhone(wrongKey);
    // mediamtx accepts the publish, then hangs up when the path's permission check fails (after a pause it
    // adds to slow down guessing), as live services do with a wrong key.
    await waitFor(
      'three refused sessions',
      async () => ((await phone.metric('cloudphone_rtmp_failed_sessions_total')) >= 3 ? true : undefined),
      60_000,
    );
    expect(await server.path(`test-phone-0/${wrongKey}`)).toBeUndefined();
    expect(await server.path(PATH)).toBeUndefined();
    expect(server.log.some((line) => line.includes('authentication failed'))).toBe(true);

    const ended = phone.events.filter((e) => e.type === 'rtmp-disconnected' || e.type === 'rtmp-error');
    expect(ended.length).toBeGreaterThanOrEqual(1);
    for (const event of ended) expect('reason' in event && event.reason).toMatch(/of publishing|cannot publish/);
    // Backing off: a session ended early does not reset the delay (0.5 s, then 1 s, each ±20 %), so the second
    // wait between sessions is longer than the first by more than the jitter; were it reset, they would match.
    const [first = 0, second = 0, third = 0] = phone.publishedAt;
    expect(third - second - (second - first)).toBeGreaterThan(200);

    expect(phone.logLines.join('\n')).toContain('rtmp disconnected');
    expect(phone.logLines.join('\n')).not.toContain(wrongKey);
    expect(JSON.stringify(phone.events)).not.toContain(wrongKey);
  });

  it('refuses to publish over RTMPS to a server whose certificate no trusted CA signed', async () => {
    const phone = await rtmpPhone(KEY, server.rtmpsUrl('{namespace}-{pod}'));
    await waitFor(
      'two failed attempts',
      async () => ((await phone.metric('cloudphone_rtmp_failed_sessions_total')) >= 2 ? true : undefined),
      20_000,
    );
    expect(await phone.metric('cloudphone_rtmp_sessions_total')).toBe(0);
    expect(await server.path(PATH)).toBeUndefined();
    const failure = phone.events.find((e) => e.type === 'rtmp-error');
    expect(failure && 'reason' in failure ? failure.reason : '').toMatch(/^cannot publish: .*tls:/);
    // The server saw the TLS handshake abandoned: the connection reached it, the certificate stopped it.
    expect(server.log.some((line) => line.includes('[RTMPS]') && line.includes('opened'))).toBe(true);
  });
});
