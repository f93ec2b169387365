// The data path end to end with real peers: the reference producer publishes stamped frames into shared
// memory, the sidecar encodes them and pushes MPEG-TS over SRT, and ffmpeg (listening, as an ingest server
// would) decodes them; the stamps read back from the decoded pictures say which frames arrived, in what order.

import { chmodSync, chownSync, writeFileSync } from 'node:fs';
import * as flatbuffers from 'flatbuffers';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Body, Goodbye, Message } from '../../generated/ts/fbs/control_generated.ts';
import { Key, KeyAction, Text, Touch, TouchAction } from '../../generated/ts/fbs/input_generated.ts';
import { waitFor } from '../cluster/wait-for.ts';
import { loadSidecarConfig } from '../../sidecar/src/config.ts';
import { NativeError, NativePipeline, type PipelineEvent } from '../../sidecar/src/native.ts';
import { Sidecar } from '../../sidecar/src/sidecar.ts';
import {
  EncodedPhone,
  FrameExactReceiver,
  freeUdpPort,
  pipelineOptions,
  runHostileProducer,
  sidecarConfig,
  Simulator,
  SrtReceiver,
  type SimulatorEvent,
  tempDir,
} from './media-peers.ts';

const silent = pino({ level: 'silent' });

interface Harness {
  dir: string;
  port: number;
  sidecar: Sidecar;
  events: PipelineEvent[];
}

let cleanups: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  cleanups = [];
});

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/**
 * A sidecar whose SRT output calls a receiver on the port it returns; with `listen`, it listens there instead
 * (a listener needs the passphrase).
 */
async function startSidecar(
  options: { passphrase?: string; maxSize?: number; listen?: { maxReceivers: number } } = {},
): Promise<Harness> {
  const shared = tempDir('cloudphone-shared-');
  cleanups.push(shared.remove);
  const port = await freeUdpPort();
  let passphraseFile: string | undefined;
  if (options.passphrase) {
    passphraseFile = join(shared.path, 'passphrase');
    writeFileSync(passphraseFile, `${options.passphrase}\n`);
  }
  const config = sidecarConfig({
    sharedDir: shared.path,
    srtUrl: `srt://127.0.0.1:${String(port)}`,
    video: {
      fps: 30,
      bitrate: { targetKbps: 2000, minKbps: 500, maxKbps: 4000 },
      ...(options.maxSize ? { maxSize: options.maxSize } : {}),
    },
    srt: passphraseFile ? { passphraseFile } : {},
  });
  if (options.listen) config.srt = { mode: 'listener', port, latencyMs: 20, passphraseFile, ...options.listen };
  const settings = loadSidecarConfig(JSON.stringify(config), { namespace: 'test', pod: 'phone-0' });
  const events: PipelineEvent[] = [];
  const sidecar = new Sidecar(settings, silent, {
    metricsHost: '127.0.0.1',
    metricsPort: 0,
    onEvent: (e) => events.push(e),
  });
  await sidecar.start();
  cleanups.push(() => sidecar.stop());
  return { dir: shared.path, port, sidecar, events };
}

function simulator(
  dir: string,
  options: { width: number; height: number; format?: string; memory?: 'file' | 'memfd'; frames?: number; uid?: number },
): Simulator {
  const sim = new Simulator({ dir, ...options });
  cleanups.push(() => sim.stop());
  return sim;
}

function receiver(port: number, options: { width: number; height: number; passphrase?: string }): SrtReceiver {
  const rx = new SrtReceiver({ port, ...options });
  cleanups.push(() => rx.stop());
  return rx;
}

async function framesArrive(rx: SrtReceiver, count: number): Promise<void> {
  await waitFor(
    `${String(count)} decoded frames`,
    () => Promise.resolve(rx.stamps.length >= count ? true : undefined),
    30_000,
  );
}

function expectInOrderAndWhole(frames: (number | null)[]): void {
  expect(frames.filter((f) => f === null)).toEqual([]);
  const numbers = frames as number[];
  for (let i = 1; i < numbers.length; i++) expect(numbers[i]).toBeGreaterThan(numbers[i - 1] ?? 0);
}

/**
 * The frames of the newest generation: frame numbers start again at a new surface. Split there rather than
 * at the moment ffmpeg reports the new size, because that report (stderr) and the stamps (stdout, through
 * the stamp reader) reach the test on different pipes, in no fixed order.
 */
function lastGeneration(frames: (number | null)[]): (number | null)[] {
  let start = 0;
  for (let i = 1; i < frames.length; i++) {
    const previous = frames[i - 1];
    const current = frames[i];
    if (previous != null && current != null && current < previous) start = i;
  }
  return frames.slice(start);
}

/** Waits until frame numbers have started again (a new generation) and 20 frames of it arrived. */
async function newGenerationArrives(rx: SrtReceiver): Promise<void> {
  await waitFor('20 frames of the new generation', () => {
    const newest = lastGeneration(rx.frames());
    return Promise.resolve(newest.length >= 20 && newest.length < rx.frames().length ? true : undefined);
  });
}

describe('the SRT data path', () => {
  it.each([
    { format: 'rgba', memory: 'file' as const },
    { format: 'bgra', memory: 'memfd' as const },
    { format: 'nv12', memory: 'file' as const },
    { format: 'rgbx', memory: 'memfd' as const },
  ])('delivers $format frames from $memory memory in order, each one whole', async ({ format, memory }) => {
    const { dir, port, sidecar } = await startSidecar();
    const rx = receiver(port, { width: 480, height: 960 });
    simulator(dir, { width: 480, height: 960, format, memory });
    await framesArrive(rx, 60);
    expectInOrderAndWhole(rx.frames());
    expect(rx.decodedSizes).toEqual(['480x960']);
    const stats = sidecar.stats();
    expect(stats.framesTorn).toBe(0);
    expect(stats.srt.connected).toBe(true);
    expect(stats.srt.accessUnitsSent).toBeGreaterThanOrEqual(60);
  });

  it('sends each frame as soon as it is encoded: one frame and then a still phone is seen', async () => {
    const { dir, port, events } = await startSidecar();
    // A receiver that decodes each frame the moment its last byte arrives (the ffmpeg CLI holds the newest
    // frame until the next one starts, so it could not see this).
    const rx = new FrameExactReceiver({ port });
    cleanups.push(() => rx.stop());
    await waitFor('the receiver', () => Promise.resolve(events.find((e) => e.type === 'srt-connected')), 15_000);
    simulator(dir, { width: 320, height: 640, frames: 1 });
    // An encoder that holds each picture until the next one arrives (x264 with variable-rate input does)
    // would keep this one back for ever.
    await waitFor('frame 1 decoded', () => Promise.resolve(rx.stamps.length > 0 ? true : undefined), 15_000);
    expect(rx.frames()).toEqual([1]);
  });

  it.each([
    { format: 'rgba', memory: 'file' as const },
    { format: 'nv12', memory: 'memfd' as const },
  ])('scales $format frames down to video.maxSize, keeping the aspect ratio', async ({ format, memory }) => {
    // Scaled by half, the most a surface may be (twice maxSize on its longest side).
    const { dir, port } = await startSidecar({ maxSize: 960 });
    const rx = receiver(port, { width: 480, height: 960 });
    // 960 = 32 stamp blocks of 30 px: after scaling, 15 px, still on the grid.
    simulator(dir, { width: 960, height: 1920, format, memory });
    await framesArrive(rx, 30);
    expect(rx.decodedSizes).toEqual(['480x960']);
    // Scaled pictures still carry readable stamps, in order.
    expectInOrderAndWhole(rx.frames());
  });

  it('refuses a surface more than twice video.maxSize on its longest side, and says why', async () => {
    const { dir, sidecar, events } = await startSidecar({ maxSize: 320 });
    simulator(dir, { width: 480, height: 960 });
    const refusal = await waitFor('the refusal', () =>
      Promise.resolve(events.find((e) => e.type === 'error' && e.reason.includes('larger than this stream takes'))),
    );
    expect(refusal.type === 'error' && refusal.reason).toContain('480x960');
    expect(refusal.type === 'error' && refusal.reason).toContain('at most 640');
    expect(sidecar.stats().framesEncoded).toBe(0);
    expect(sidecar.stats().producerErrors).toBeGreaterThan(0);
  });

  it('is refused by a receiver with another passphrase, and says why', async () => {
    const { dir, port, sidecar, events } = await startSidecar({ passphrase: 'the-wrong-passphrase' });
    const rx = receiver(port, { width: 480, height: 960, passphrase: 'the-right-passphrase' });
    simulator(dir, { width: 480, height: 960 });
    // Earlier attempts may time out before ffmpeg listens; the refusal itself names the secret.
    await waitFor('the refusal', () =>
      Promise.resolve(events.find((e) => e.type === 'srt-error' && /secret|passphrase|password/i.test(e.reason))),
    );
    expect(rx.stamps).toEqual([]);
    expect(sidecar.stats().srt.accessUnitsSent).toBe(0);
  });

  it('streams to a receiver with the same passphrase', async () => {
    const { dir, port } = await startSidecar({ passphrase: 'the-right-passphrase' });
    const rx = receiver(port, { width: 480, height: 960, passphrase: 'the-right-passphrase' });
    simulator(dir, { width: 480, height: 960 });
    await framesArrive(rx, 30);
    expectInOrderAndWhole(rx.frames());
  });

  it('resumes when the receiver goes away and comes back', async () => {
    const { dir, port, events } = await startSidecar();
    const first = receiver(port, { width: 480, height: 960 });
    simulator(dir, { width: 480, height: 960 });
    await framesArrive(first, 20);
    await first.stop();
    const lastBefore = first.frames().at(-1) ?? 0;
    await waitFor('the sidecar to notice', () => Promise.resolve(events.find((e) => e.type === 'srt-disconnected')));
    const second = receiver(port, { width: 480, height: 960 });
    await framesArrive(second, 20);
    expectInOrderAndWhole(second.frames());
    expect(second.frames()[0]).toBeGreaterThan(lastBefore);
    expect(events.filter((e) => e.type === 'srt-connected')).toHaveLength(2);
  });

  it('continues at the new size when the phone changes resolution', async () => {
    const { dir, port, sidecar } = await startSidecar();
    const rx = receiver(port, { width: 480, height: 960 });
    const sim = simulator(dir, { width: 480, height: 960 });
    await framesArrive(rx, 20);
    sim.command('resize 320 640');
    await waitFor('the new size', () => Promise.resolve(rx.decodedSizes.includes('320x640') ? true : undefined));
    await newGenerationArrives(rx);
    expect(rx.decodedSizes).toEqual(['480x960', '320x640']);
    // Frame numbers start again with the new generation; within it they rise and every frame reads back.
    expectInOrderAndWhole(lastGeneration(rx.frames()));
    expect(sidecar.stats()).toMatchObject({ width: 320, height: 640 });
  });

  it('continues at the new size when the phone restarts with another resolution', async () => {
    const { dir, port, events } = await startSidecar();
    const rx = receiver(port, { width: 480, height: 960 });
    const before = simulator(dir, { width: 480, height: 960 });
    await framesArrive(rx, 20);
    await before.stop();
    await waitFor('the phone to leave', () => Promise.resolve(events.find((e) => e.type === 'producer-disconnected')));
    simulator(dir, { width: 320, height: 640, format: 'nv12', memory: 'memfd' });
    await waitFor('the new size', () => Promise.resolve(rx.decodedSizes.includes('320x640') ? true : undefined));
    await newGenerationArrives(rx);
    expectInOrderAndWhole(lastGeneration(rx.frames()));
  });
});

describe('SRT as a listener', () => {
  const passphrase = 'listener-passphrase';

  const startListener = (maxReceivers: number): Promise<Harness> =>
    startSidecar({ passphrase, listen: { maxReceivers } });

  function caller(port: number, key: string): SrtReceiver {
    const rx = new SrtReceiver({ port, connectTo: '127.0.0.1', width: 480, height: 960, passphrase: key });
    cleanups.push(() => rx.stop());
    return rx;
  }

  it('is refused without a passphrase: anyone who reaches the pod could take the stream', () => {
    const config = {
      ...sidecarConfig({ sharedDir: '/run/cloudphone', video: { fps: 30 } }),
      srt: { mode: 'listener', port: 9000 },
    };
    expect(() => loadSidecarConfig(JSON.stringify(config), { namespace: 'test', pod: 'phone-0' })).toThrow(
      /passphraseFile is required in listener mode/,
    );
    const shared = tempDir('cloudphone-listener-');
    cleanups.push(shared.remove);
    const pipeline = new NativePipeline(
      pipelineOptions(shared.path, { srt: { listener: true, host: '', port: 9000, latencyMs: 20, keyLength: 16 } }),
      () => undefined,
    );
    cleanups.push(() => {
      pipeline.stop();
    });
    expect(() => {
      pipeline.start();
    }).toThrow(/listener mode needs a passphrase/);
  });

  it('serves several receivers at once, each its own stream, and refuses one more, saying why', async () => {
    const { dir, port, sidecar } = await startListener(2);
    // Idle, the listener keeps the one socket it listens on: it does not make and drop one every wake-up.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(sidecar.stats().srt.socketsCreated).toBe(1);

    simulator(dir, { width: 480, height: 960 });
    const first = caller(port, passphrase);
    const second = caller(port, passphrase);
    await framesArrive(first, 30);
    await framesArrive(second, 30);
    expect(sidecar.stats().srt.receivers).toBe(2);

    const third = caller(port, passphrase);
    await waitFor('the third receiver refused', () =>
      Promise.resolve(
        sidecar.stats().srt.refused >= 1 && third.log.some((l) => /reject|refused|overload/i.test(l))
          ? true
          : undefined,
      ),
    );
    expect(third.stamps).toEqual([]);

    // The two keep streaming, whole and in order, while the third is turned away.
    const before = [first.stamps.length, second.stamps.length];
    await waitFor('30 more frames on both', () =>
      Promise.resolve(
        first.stamps.length >= (before[0] ?? 0) + 30 && second.stamps.length >= (before[1] ?? 0) + 30
          ? true
          : undefined,
      ),
    );
    expectInOrderAndWhole(first.frames());
    expectInOrderAndWhole(second.frames());

    // When one leaves, its slot is free again.
    await first.stop();
    const fourth = caller(port, passphrase);
    await framesArrive(fourth, 30);
    expectInOrderAndWhole(fourth.frames());
    expect(sidecar.stats().srt.socketsCreated).toBe(1);
  });

  it('turns away a receiver with the wrong passphrase, while the right one streams', async () => {
    const { dir, port, sidecar } = await startListener(2);
    simulator(dir, { width: 480, height: 960 });
    const right = caller(port, passphrase);
    const wrong = caller(port, 'not-the-passphrase');
    await framesArrive(right, 30);
    await waitFor('the wrong passphrase refused', () =>
      Promise.resolve(wrong.log.some((l) => /reject|password|passphrase|bad secret/i.test(l)) ? true : undefined),
    );
    expect(wrong.stamps).toEqual([]);
    expect(sidecar.stats().srt.receivers).toBe(1);
  });

  it("keeps libsrt's log to a few lines a second while callers try wrong passphrases over and over", async () => {
    const { port, sidecar } = await startListener(2);
    // Each refused handshake is four lines from libsrt: 15 of them, 60 lines, at once.
    const before = sidecar.stats().srtLogLinesSuppressed;
    const wrong = Array.from({ length: 15 }, () => caller(port, 'not-the-passphrase'));
    await waitFor('every caller refused', () =>
      Promise.resolve(
        wrong.every((w) => w.log.some((l) => /reject|password|passphrase|bad secret/i.test(l))) ? true : undefined,
      ),
    );
    expect(sidecar.stats().srtLogLinesSuppressed - before).toBeGreaterThan(20);
  });
});

describe('a phone that encodes H.264 itself', () => {
  it('is passed through without re-encoding: frames in order and whole, big keyframes in fragments', async () => {
    const { dir, port, sidecar, events } = await startSidecar();
    const rx = receiver(port, { width: 360, height: 640 });
    // 8 Mbit/s at 720x1280 makes keyframes larger than one 64 KiB control message.
    const phone = new EncodedPhone({ dir, width: 720, height: 1280, kbps: 8000 });
    cleanups.push(() => phone.stop());
    await framesArrive(rx, 60);
    expectInOrderAndWhole(rx.frames());
    expect(events).toContainEqual({
      type: 'surface',
      generation: expect.any(Number) as unknown,
      width: 720,
      height: 1280,
      format: 'H264',
      rotation: 0,
    });
    expect(sidecar.stats().encodeSecondsTotal).toBe(0); // x264 never ran
    // The sidecar asked the phone for an IDR when its surface began.
    expect(phone.events).toContainEqual({ event: 'keyframe-request' });
    await phone.stop();
    const closed = phone.events.find((e) => e.event === 'closed');
    expect(closed).toMatchObject({ framesDropped: 0 });
    expect(Number(closed?.fragmentsSent)).toBeGreaterThan(Number(closed?.framesSent));
  });

  it('is refused when its pictures are larger than video.maxSize (they cannot be scaled), and told why', async () => {
    const { dir, sidecar, events } = await startSidecar({ maxSize: 640 });
    const phone = new EncodedPhone({ dir, width: 360, height: 720 });
    cleanups.push(() => phone.stop());
    const refusal = await waitFor('the refusal', () =>
      Promise.resolve(events.find((e) => e.type === 'error' && e.reason.includes('larger than this stream takes'))),
    );
    expect(refusal.type === 'error' && refusal.reason).toContain('at most 640 (video.maxSize');
    expect(sidecar.stats().framesEncoded).toBe(0);
  });
});

describe('a hostile producer', () => {
  it.each([
    { mode: 'lying-size', error: /holds \d+ bytes, the surface announced/ },
    { mode: 'garbage-header', error: /wrong magic/ },
    { mode: 'bad-path', error: /plain file name/ },
    { mode: 'truncate', error: /shrank/ },
    { mode: 'unsealed-memfd', error: /sealed against shrinking/ },
  ])('$mode is refused with a clear error, and the next phone streams', async ({ mode, error }) => {
    const { dir, port, sidecar, events } = await startSidecar();
    expect(await runHostileProducer(dir, mode)).toBe(0);
    const refusal = await waitFor('a producer error', () => Promise.resolve(events.find((e) => e.type === 'error')));
    expect(refusal).toMatchObject({ name: 'ProducerError', reason: expect.stringMatching(error) as unknown });

    const rx = receiver(port, { width: 480, height: 960 });
    simulator(dir, { width: 480, height: 960 });
    await framesArrive(rx, 20);
    expectInOrderAndWhole(rx.frames());
    expect(sidecar.stats().producerErrors).toBe(1);
  });

  it("bad-clipboard: a phone's clipboard too long or not UTF-8, and a surface turned no way a screen turns, are refused by name; nothing reaches viewers", async () => {
    const { dir, port, sidecar, events } = await startSidecar();
    expect(await runHostileProducer(dir, 'bad-clipboard')).toBe(0);
    const reasons = await waitFor('six refusals', () => {
      const found = events.flatMap((e) => (e.type === 'error' ? [e.reason] : []));
      return Promise.resolve(found.length >= 6 ? found : undefined);
    });
    expect(reasons).toEqual([
      'clipboard text of 40000 bytes is over the 32768 forwarded',
      ...Array.from({ length: 4 }, () => 'clipboard text is not well-formed UTF-8 (or holds a NUL)'),
      "surface rotation must be 0 to 3 (Android's Surface.ROTATION_*)",
    ]);
    expect(events.filter((e) => e.type === 'clipboard')).toEqual([]);
    expect(sidecar.stats()).toMatchObject({ clipboardUpdates: 0, producerErrors: 6 });

    // An honest phone's clipboard passes: UTF-8 with a newline, as the phone's user copied it.
    const rx = receiver(port, { width: 480, height: 960 });
    const phone = simulator(dir, { width: 480, height: 960 });
    await framesArrive(rx, 5);
    phone.command('clipboard grüße\\n手机 📋');
    const copied = await waitFor('the clipboard event', () =>
      Promise.resolve(events.find((e) => e.type === 'clipboard')),
    );
    expect(copied).toMatchObject({ type: 'clipboard', text: 'grüße\n手机 📋' });
    expect(sidecar.stats().clipboardUpdates).toBe(1);
  });

  it.each([
    { mode: 'garbage-message', malformed: 1 },
    { mode: 'no-hello', malformed: 1 },
    // An encoded phone's fragments that do not add up: each of the four lies is refused and counted.
    { mode: 'encoded-lies', malformed: 4 },
  ])('$mode is dropped and counted, and the next phone streams', async ({ mode, malformed }) => {
    const { dir, port, sidecar } = await startSidecar();
    expect(await runHostileProducer(dir, mode)).toBe(0);
    await waitFor('the messages to be counted', () =>
      Promise.resolve(sidecar.stats().malformedMessages >= malformed ? true : undefined),
    );
    expect(sidecar.stats().framesEncoded).toBe(0);
    const rx = receiver(port, { width: 480, height: 960 });
    simulator(dir, { width: 480, height: 960 });
    await framesArrive(rx, 20);
    expectInOrderAndWhole(rx.frames());
  });
});

describe("the control socket takes only the phone's users", () => {
  const PHONE_UID = 4242;

  /** A pipeline whose shared directory a process of PHONE_UID can use, as a pod's fsGroup makes the volume. */
  function pipelineFor(phoneUids?: number[]): { dir: string; pipeline: NativePipeline; events: PipelineEvent[] } {
    const shared = tempDir('cloudphone-peercred-');
    cleanups.push(shared.remove);
    // The kubelet's fsGroup: the volume's group, set-group-id so the socket made in it belongs to the group too.
    chownSync(shared.path, 0, PHONE_UID);
    chmodSync(shared.path, 0o2770);
    const events: PipelineEvent[] = [];
    const pipeline = new NativePipeline(pipelineOptions(shared.path, phoneUids ? { phoneUids } : {}), (e) =>
      events.push(e),
    );
    pipeline.start();
    cleanups.push(() => {
      pipeline.stop();
    });
    return { dir: shared.path, pipeline, events };
  }

  const refusals = (events: PipelineEvent[]): string[] =>
    events.flatMap((e) => (e.type === 'error' && e.reason.startsWith('refused a control socket') ? [e.reason] : []));

  it('streams from a phone of a listed uid; another user connecting is refused and the phone streams on', async () => {
    const { dir, pipeline, events } = pipelineFor([PHONE_UID]);
    simulator(dir, { width: 320, height: 640, memory: 'memfd', uid: PHONE_UID });
    await waitFor('frames from the phone', () =>
      Promise.resolve(pipeline.stats().framesEncoded >= 10 ? true : undefined),
    );
    // The test runs as root: a process of another uid than the phone's, such as an app inside the phone.
    expect(await runHostileProducer(dir, 'no-hello')).toBe(0);
    const [reason] = await waitFor('the refusal', () => {
      const found = refusals(events);
      return Promise.resolve(found.length ? found : undefined);
    });
    expect(reason).toMatch(
      new RegExp(`^refused a control socket connection from uid 0 \\(pid \\d+\\): only uid ${String(PHONE_UID)} may`),
    );
    const stats = pipeline.stats();
    expect(stats.connectionsRefused).toBe(1);
    // It did not replace the phone, and sent it nothing: the phone keeps streaming.
    expect(stats.producerConnects).toBe(1);
    expect(stats.malformedMessages).toBe(0);
    const encoded = stats.framesEncoded;
    await waitFor('more frames', () =>
      Promise.resolve(pipeline.stats().framesEncoded >= encoded + 10 ? true : undefined),
    );
    expect(pipeline.stats().producerConnected).toBe(true);
  });

  it("refuses a phone of another user when no uids are configured: only the sidecar's own", async () => {
    const { dir, pipeline, events } = pipelineFor();
    const phone = simulator(dir, { width: 320, height: 640, memory: 'memfd', uid: PHONE_UID });
    await waitFor('the refusal', () => Promise.resolve(refusals(events).length ? true : undefined));
    expect(refusals(events)[0]).toContain(`from uid ${String(PHONE_UID)}`);
    await phone.stop();
    expect(pipeline.stats()).toMatchObject({ producerConnects: 0, framesEncoded: 0 });
  });
});

describe('H.264 a phone encoded itself is checked before any receiver gets it', () => {
  it('refuses NAL units, parameter sets and pictures a viewer should not get, saying why, and the next phone streams', async () => {
    const { dir, port, sidecar, events } = await startSidecar();
    expect(await runHostileProducer(dir, 'encoded-bad-h264')).toBe(0);
    const reasons = await waitFor('eight refusals', () => {
      const found = events.flatMap((e) => (e.type === 'error' ? [e.reason] : []));
      return Promise.resolve(found.length >= 8 ? found : undefined);
    });
    expect(reasons.map((r) => r.replace('refused H.264 from the phone: ', ''))).toEqual([
      'a NAL unit has its forbidden bit set',
      'NAL unit type 20 (an SVC or MVC slice) is not one a viewer decodes',
      'an access unit holds no picture (no slice)',
      'an IDR picture must bring its SPS and PPS: a receiver starts decoding there',
      'PPS 0 refers to SPS 0, which the phone has not sent',
      'SPS picture 128x128 is not the announced surface 64x64',
      'an SPS is cut short',
      'SPS chroma format 0 is not 4:2:0 (1)',
    ]);
    expect(sidecar.stats()).toMatchObject({ framesEncoded: 0, producerErrors: 8 });

    const rx = receiver(port, { width: 360, height: 640 });
    const phone = new EncodedPhone({ dir, width: 360, height: 640 });
    cleanups.push(() => phone.stop());
    await framesArrive(rx, 20);
    expectInOrderAndWhole(rx.frames());
  });

  it('passes High profile with scaling matrices of its own, whole and in order', async () => {
    const { dir, port, sidecar } = await startSidecar();
    // Eight quantisation matrices (4x4 and 8x8, intra and inter), every entry its own: the PPS carries them.
    const matrices = join(dir, 'matrices.cqm');
    const names = ['INTRA4X4_LUMA', 'INTRA4X4_CHROMAU', 'INTRA4X4_CHROMAV', 'INTER4X4_LUMA', 'INTER4X4_CHROMAU']
      .concat(['INTER4X4_CHROMAV', 'INTRA8X8_LUMA', 'INTER8X8_LUMA'])
      .map((name) => {
        const size = name.includes('8X8') ? 64 : 16;
        return `${name} =\n${Array.from({ length: size }, (_, i) => String(6 + ((i * 7 + name.length) % 50))).join(' ')}`;
      });
    writeFileSync(matrices, `${names.join('\n')}\n`);
    const rx = receiver(port, { width: 360, height: 640 });
    const phone = new EncodedPhone({ dir, width: 360, height: 640, x264Params: `8x8dct=1:cqmfile=${matrices}` });
    cleanups.push(() => phone.stop());
    await framesArrive(rx, 40);
    expectInOrderAndWhole(rx.frames());
    expect(sidecar.stats().producerErrors).toBe(0);
  });

  it('refuses pictures larger than the surface the phone announced (video.maxSize checked that one)', async () => {
    const { dir, sidecar, events } = await startSidecar({ maxSize: 640 });
    const phone = new EncodedPhone({ dir, width: 720, height: 1280, announce: { width: 360, height: 640 } });
    cleanups.push(() => phone.stop());
    const refusal = await waitFor('the refusal', () =>
      Promise.resolve(events.find((e) => e.type === 'error' && e.reason.includes('SPS picture'))),
    );
    expect(refusal.type === 'error' && refusal.reason).toContain(
      'SPS picture 720x1280 is not the announced surface 360x640',
    );
    expect(sidecar.stats().framesEncoded).toBe(0);
  });

  it('refuses a profile browsers do not decode: 4:4:4 (High 4:4:4 Predictive)', async () => {
    const { dir, sidecar, events } = await startSidecar();
    const phone = new EncodedPhone({ dir, width: 360, height: 640, pixelFormat: 'yuv444p' });
    cleanups.push(() => phone.stop());
    const refusal = await waitFor('the refusal', () =>
      Promise.resolve(events.find((e) => e.type === 'error' && e.reason.includes('profile'))),
    );
    expect(refusal.type === 'error' && refusal.reason).toContain('SPS profile 244 (High 4:4:4 Predictive)');
    // What comes between keyframes refers to the refused ones: dropped too, and none reached a sink.
    await waitFor('pictures dropped after the refusal', () =>
      Promise.resolve(sidecar.stats().framesStale > 10 ? true : undefined),
    );
    expect(sidecar.stats().framesEncoded).toBe(0);
  });
});

describe('a phone flooding the sidecar with what it must refuse or announce', () => {
  it.each([
    // Each reconnect is a connected and a disconnected event; each refused surface an error event.
    { mode: 'reconnect-flood', types: ['producer-connected', 'producer-disconnected'], counted: 'producerConnects' },
    { mode: 'surface-flood', types: ['error'], counted: 'producerErrors' },
  ] as const)('$mode reaches JavaScript a few times a second, counted, and the next phone streams', async (flood) => {
    const { dir, port, sidecar, events } = await startSidecar();
    expect(await runHostileProducer(dir, flood.mode)).toBe(0);
    await waitFor('all 2000 counted natively', () =>
      Promise.resolve(sidecar.stats()[flood.counted] >= 2000 ? true : undefined),
    );
    const delivered = events.filter((e) => (flood.types as readonly string[]).includes(e.type));
    // A burst of 10 and 5 a second per kind, over the few seconds the flood lasts: a few dozen, not thousands.
    expect(delivered.length).toBeLessThan(100);
    expect(sidecar.stats().eventsSuppressed).toBeGreaterThan(1900);
    const rx = receiver(port, { width: 480, height: 960 });
    simulator(dir, { width: 480, height: 960 });
    await framesArrive(rx, 20);
    expectInOrderAndWhole(rx.frames());
  });
});

describe('the sidecar endpoints', () => {
  it('is ready once a phone streams, and exports the pipeline counters', async () => {
    const { dir, sidecar } = await startSidecar();
    const base = `http://127.0.0.1:${String(sidecar.metricsPort)}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    simulator(dir, { width: 320, height: 640 });
    await waitFor('readiness', async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined));
    await waitFor('encoded frames', () => Promise.resolve(sidecar.stats().framesEncoded >= 10 ? true : undefined));
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const encoded = /^cloudphone_frames_encoded_total (\d+)/m.exec(metrics);
    expect(Number(encoded?.[1])).toBeGreaterThanOrEqual(10);
    expect(metrics).toMatch(/^cloudphone_producer_connected 1$/m);
    expect(metrics).toMatch(/^cloudphone_srt_connected 0$/m);
    expect(metrics).toMatch(/^cloudphone_encoder_info\{encoder="x264"\} 1$/m);
  });
});

describe('the encoder setting', () => {
  it('auto encodes in software and says why; a hardware encoder that cannot be used is refused, not replaced', async () => {
    const { sidecar } = await startSidecar();
    expect(sidecar.stats()).toMatchObject({ encoder: 'x264', encoderReason: expect.stringMatching(/./) as unknown });
    const shared = tempDir('cloudphone-encoder-');
    cleanups.push(shared.remove);
    for (const encoder of ['vaapi', 'nvenc'] as const) {
      const options = pipelineOptions(shared.path, { socketName: `${encoder}.sock`, encoder });
      const pipeline = new NativePipeline(options, () => undefined);
      let failure: unknown;
      try {
        pipeline.start();
      } catch (error) {
        failure = error;
      }
      pipeline.stop();
      expect(failure).toBeInstanceOf(NativeError);
      expect(failure).toMatchObject({
        name: 'EncoderError',
        message: expect.stringMatching(`^${encoder}: `) as unknown,
      });
    }
  });
});

describe('input to the phone', () => {
  function message(body: (b: flatbuffers.Builder) => [Body, number]): Uint8Array {
    const builder = new flatbuffers.Builder(64);
    const [type, offset] = body(builder);
    Message.finishMessageBuffer(builder, Message.createMessage(builder, type, offset));
    return builder.asUint8Array();
  }

  const touch = (action: TouchAction, pointer: number, x: number, y: number, pressure = 1): Uint8Array =>
    message((b) => [Body.cloudphone_input_Touch, Touch.createTouch(b, action, pointer, x, y, pressure)]);
  const key = (action: KeyAction, keycode: number, meta = 0): Uint8Array =>
    message((b) => [Body.cloudphone_input_Key, Key.createKey(b, action, keycode, 0, meta)]);
  function inputs(sim: Simulator): SimulatorEvent[] {
    // Without atNs: when each arrived is for the benchmark, not for these comparisons.
    return sim.events.filter((e) => e.event === 'input').map(({ atNs: _, ...event }) => event);
  }

  it('reaches the phone through the control socket with its values intact', async () => {
    const { dir, sidecar } = await startSidecar();
    const sim = simulator(dir, { width: 320, height: 640 });
    await waitFor('the phone', () => Promise.resolve(sidecar.stats().producerConnected ? true : undefined));
    sidecar.pipeline.sendInput(1, touch(TouchAction.Down, 2, 0.25, 0.75, 0.5));
    sidecar.pipeline.sendInput(1, key(KeyAction.Down, 66, 1));
    sidecar.pipeline.sendInput(
      1,
      message((b) => [Body.cloudphone_input_Text, Text.createText(b, b.createString('héllo "phone"'))]),
    );
    await waitFor('three inputs', () => Promise.resolve(inputs(sim).length >= 3 ? true : undefined));
    expect(inputs(sim)).toEqual([
      // The viewer's finger 2 is the phone's first free finger.
      { event: 'input', kind: 'touch', action: 0, pointerId: 0, x: 0.25, y: 0.75, pressure: 0.5 },
      { event: 'input', kind: 'key', action: 0, keycode: 66, repeat: 0, metaState: 1 },
      { event: 'input', kind: 'text', text: 'héllo "phone"' },
    ]);
  });

  it('gives each viewer its own fingers on the phone, and lets go of all a viewer holds when it is released', async () => {
    const { dir, sidecar } = await startSidecar();
    const sim = simulator(dir, { width: 320, height: 640 });
    await waitFor('the phone', () => Promise.resolve(sidecar.stats().producerConnected ? true : undefined));
    const { pipeline } = sidecar;
    pipeline.sendInput(1, touch(TouchAction.Down, 0, 0.1, 0.1));
    pipeline.sendInput(2, touch(TouchAction.Down, 0, 0.9, 0.9));
    pipeline.sendInput(1, key(KeyAction.Down, 59)); // shift
    pipeline.sendInput(1, touch(TouchAction.Move, 0, 0.2, 0.2));
    pipeline.releaseInput(1);
    expect(() => {
      pipeline.sendInput(1, touch(TouchAction.Move, 0, 0.3, 0.3));
    }).toThrow('that finger is not down');
    pipeline.sendInput(2, touch(TouchAction.Up, 0, 0.8, 0.8));
    expect(() => {
      pipeline.sendInput(2, key(KeyAction.Up, 59));
    }).toThrow('that key is not down');
    await waitFor('seven inputs', () => Promise.resolve(inputs(sim).length >= 7 ? true : undefined));
    expect(inputs(sim).map((e) => [e.kind, e.action, e.kind === 'touch' ? e.pointerId : e.keycode])).toEqual([
      ['touch', TouchAction.Down, 0],
      ['touch', TouchAction.Down, 1],
      ['key', KeyAction.Down, 59],
      ['touch', TouchAction.Move, 0],
      // Viewer 1 let go: its finger is cancelled where it last was, its key goes up.
      ['touch', TouchAction.Cancel, 0],
      ['key', KeyAction.Up, 59],
      ['touch', TouchAction.Up, 1],
    ]);
    expect(inputs(sim)[4]).toMatchObject({
      x: expect.closeTo(0.2, 5) as unknown,
      y: expect.closeTo(0.2, 5) as unknown,
    });
    expect(sidecar.stats().input.released).toBe(2);
  });

  it('loses no press or release while the phone is not reading input: Moves merge, the rest waits in order', async () => {
    const { dir, sidecar } = await startSidecar();
    const sim = simulator(dir, { width: 320, height: 640 });
    await waitFor('the phone', () => Promise.resolve(sidecar.stats().producerConnected ? true : undefined));
    // Paused too: while it publishes frames, the C library reads the socket and drops its oldest Moves to make
    // room (by design), which races with the burst below; a phone that neither reads input nor publishes
    // leaves everything in the socket, so the sidecar must hold it.
    sim.command('pause');
    sim.command('hold-input');
    await waitFor('input held', () =>
      Promise.resolve(sim.events.some((e) => e.event === 'input-held') ? true : undefined),
    );
    const { pipeline } = sidecar;
    const moves = 5000;
    pipeline.sendInput(1, touch(TouchAction.Down, 0, 0.5, 0));
    for (let i = 1; i <= moves; i++) pipeline.sendInput(1, touch(TouchAction.Move, 0, 0.5, i / moves));
    pipeline.sendInput(1, touch(TouchAction.Up, 0, 0.5, 1));
    pipeline.sendInput(1, key(KeyAction.Down, 4));
    pipeline.sendInput(1, key(KeyAction.Up, 4));
    const held = sidecar.stats().input;
    expect(held.deferred).toBeGreaterThan(0);
    expect(held.merged).toBeGreaterThan(0);
    expect(held.waiting).toBeGreaterThan(0);
    sim.command('take-input');
    sim.command('resume');
    await waitFor('the key-up at the phone', () =>
      Promise.resolve(inputs(sim).some((e) => e.kind === 'key' && e.action === KeyAction.Up) ? true : undefined),
    );
    const seen = inputs(sim);
    expect(seen.map((e) => [e.kind, e.action]).filter(([, action]) => action !== TouchAction.Move)).toEqual([
      ['touch', TouchAction.Down],
      ['touch', TouchAction.Up],
      ['key', KeyAction.Down],
      ['key', KeyAction.Up],
    ]);
    // The finger's path is whole in the one way that matters: in order, ending where it was lifted.
    const path = seen.filter((e) => e.kind === 'touch').map((e) => Number(e.y));
    for (let i = 1; i < path.length; i++) expect(path[i]).toBeGreaterThanOrEqual(path[i - 1] ?? 0);
    expect(path.at(-2)).toBe(1);
    expect(sidecar.stats().input.waiting).toBe(0);
  });

  it('refuses what is not an input message, with a named error', async () => {
    const { dir, sidecar } = await startSidecar();
    simulator(dir, { width: 320, height: 640 });
    await waitFor('the phone', () => Promise.resolve(sidecar.stats().producerConnected ? true : undefined));
    let failure: unknown;
    try {
      sidecar.pipeline.sendInput(1, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(NativeError);
    expect(failure).toMatchObject({ name: 'InputError', message: 'input message is not a valid control Message' });
    const goodbye = message((b) => [Body.Goodbye, Goodbye.createGoodbye(b, b.createString('no'))]);
    expect(() => {
      sidecar.pipeline.sendInput(1, goodbye);
    }).toThrow(/only touch, key, text and scroll/);
  });
});
