// Capture-to-display latency over WebRTC, as a person sees it: the simulator stamps each frame with its capture
// time, the sidecar encodes and sends it over WHEP, Debian's Chromium plays it in the player page, and a probe
// in the page reads the stamp back from every frame the browser presents (requestVideoFrameCallback) with the
// time it expected the frame on screen. Capture (CLOCK_MONOTONIC) and display (the browser's epoch clock)
// are put on one clock here, on the same machine.
//
// Also: the time from opening the player page to the first frame on screen (page load, WHEP, ICE, DTLS, the
// keyframe asked for on join), over several joins, with the steps it took; and the sidecar's own view of the
// same latency (the render reports the page sends, on its /metrics).
//
// Side by side, a peer: the same encode pushed by the sidecar with WHIP to mediamtx (built from its Go module)
// and played in the same Chromium from mediamtx's own WHEP reader page, measured the same way.
//
// And input: a drag in the player page (Chromium's own pointer events, through the player's data channel) while
// the phone streams 1080x2400@30, from the moment the page saw each pointermove to the moment the phone read the
// Move from its socket (the simulator takes input as it comes and prints when). Beside it, the same drag on a
// still screen (nothing encoded): the floor, so what encoding adds is plain. Then what that still phone costs
// with the viewer watching: the sidecar's CPU, the bytes both ways, and the frames encoded (none, when a still
// screen is free).
//
//   npm run bench:webrtc [-- --seconds 20 --joins 5 --input-seconds 10 --idle-seconds 20]
// Results: bench/results/webrtc.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import {
  joinSteps,
  launchChromium,
  openPage,
  openPlayer,
  pagePoint,
  shownFrames,
  takeMovesSentAt,
  transportBytes,
} from '../test/media/chromium-player.ts';
import { metricSamples } from '../test/media/media-peers.ts';
import { MEDIAMTX_VERSION, MediaServer } from '../test/media/media-server.ts';
import { CONTROL_TOKEN, startWhepPhone, type WhepPhone } from '../test/media/webrtc-peers.ts';
import { percentile, round } from './figures.ts';

const WIDTH = 720;
const HEIGHT = 1280;
const FPS = 30;

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

/** Browser epoch milliseconds minus CLOCK_MONOTONIC milliseconds, read here at one instant. */
function epochMinusMonotonicMs(): number {
  return performance.timeOrigin + performance.now() - Number(process.hrtime.bigint()) / 1e6;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

interface Measured {
  capture_to_display_p50_ms: number;
  capture_to_display_p99_ms: number;
  first_frame_ms: number;
  first_frame_max_ms: number;
  first_frame_phases_median_ms: Record<string, number>;
  frames_shown: number;
  frames_missed: number;
}

/**
 * Joins a page `joins` times (first frame and its steps), then watches one for `seconds` (capture to display).
 * open makes a new page that plays the phone, with the stamp probe in it.
 */
async function measure(
  open: () => Promise<Page>,
  joins: number,
  seconds: number,
  whileWatched?: () => Promise<void>,
): Promise<Measured> {
  const firstFrames: number[] = [];
  const phases: Record<string, number[]> = { page: [], whep: [], connect: [], picture: [] };
  for (let i = 0; i < joins; i++) {
    const openedAt = performance.timeOrigin + performance.now();
    const page = await open();
    let first: number | undefined;
    while (first === undefined) {
      first = (await shownFrames(page))[0]?.shownAtMs;
      if (first === undefined) await sleep(10);
    }
    firstFrames.push(first - openedAt);
    // On the page's clock: loading the page (and, for ours, the OPTIONS round trip); the offer to the
    // answer; ICE and DTLS; from connected until the first picture is on screen.
    const steps = await joinSteps(page);
    const at = (name: string): number => steps[name] ?? NaN;
    phases.page?.push(at('created'));
    phases.whep?.push(at('set-remote') - at('created'));
    phases.connect?.push(at('connection-connected') - at('set-remote'));
    phases.picture?.push(at('first-frame') - at('connection-connected'));
    await page.close();
  }

  const page = await open();
  await sleep(3000); // warm-up: the bitrate settles, the clock offset is measured
  const skip = (await shownFrames(page)).length;
  await sleep(seconds * 1000);
  const offsetMs = epochMinusMonotonicMs();
  const frames = (await shownFrames(page)).slice(skip);
  await whileWatched?.();
  await page.close();
  const latencies = frames.map((f) => f.shownAtMs - (f.captureNs / 1e6 + offsetMs));
  const numbers = frames.map((f) => f.frame);
  return {
    capture_to_display_p50_ms: round(percentile(latencies, 50)),
    capture_to_display_p99_ms: round(percentile(latencies, 99)),
    first_frame_ms: round(percentile(firstFrames, 50)),
    first_frame_max_ms: round(Math.max(...firstFrames)),
    first_frame_phases_median_ms: Object.fromEntries(
      Object.entries(phases).map(([name, values]) => [name, round(percentile(values, 50))]),
    ),
    frames_shown: frames.length,
    frames_missed: numbers.length > 1 ? (numbers.at(-1) ?? 0) - (numbers[0] ?? 0) + 1 - numbers.length : 0,
  };
}

const INPUT_WIDTH = 1080;
const INPUT_HEIGHT = 2400;

interface InputLatency {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  events: number;
}

/** Drags a finger down the phone for `seconds` (a Move every 20 ms) and times each Move to the phone. */
async function drag(page: Page, phone: WhepPhone, seconds: number): Promise<InputLatency> {
  const before = phone.simulator.events.length;
  await takeMovesSentAt(page);
  const from = await pagePoint(page, 0.5, 0.05);
  const to = await pagePoint(page, 0.5, 0.95);
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  const moves = seconds * 50;
  for (let i = 1; i <= moves; i++) {
    await page.mouse.move(from.x, from.y + ((to.y - from.y) * i) / moves);
    await sleep(20);
  }
  await page.mouse.up();
  const arrived = (): { atNs: number; action: number }[] =>
    phone.simulator.events
      .slice(before)
      .filter((e) => e.event === 'input' && e.kind === 'touch')
      .map((e) => ({ atNs: Number(e.atNs), action: Number(e.action) }));
  while (!arrived().some((e) => e.action === 1)) await sleep(20);
  const offsetMs = epochMinusMonotonicMs();
  const sent = await takeMovesSentAt(page);
  const moved = arrived().filter((e) => e.action === 2);
  if (moved.length !== sent.length)
    throw new Error(`the page sent ${String(sent.length)} Moves and the phone read ${String(moved.length)}`);
  const latencies = moved.map((e, i) => e.atNs / 1e6 + offsetMs - (sent[i] ?? NaN));
  return {
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    max_ms: round(Math.max(...latencies)),
    events: latencies.length,
  };
}

interface IdleCost {
  seconds: number;
  /** CPU of this process (the sidecar; the Playwright client beside it is idle meanwhile), % of one core. */
  cpu_percent_of_core: number;
  /** Everything over the viewer's PeerConnection (RTP, RTCP, SCTP, STUN), as Chromium counts it. */
  to_viewer_kbps: number;
  from_viewer_kbps: number;
  frames_encoded: number;
  keyframes_encoded: number;
}

/** What a still phone with one viewer costs: the sidecar's CPU and the bytes both ways, over `seconds`. */
async function idleCost(page: Page, phone: WhepPhone, seconds: number): Promise<IdleCost> {
  const bytesBefore = await transportBytes(page);
  const encodedBefore = await phone.metric('cloudphone_frames_encoded_total');
  const keyframesBefore = await phone.metric('cloudphone_keyframes_total');
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  await sleep(seconds * 1000);
  const cpu = process.cpuUsage(cpuBefore);
  const elapsedMs = performance.now() - startedAt;
  const bytesAfter = await transportBytes(page);
  const kbps = (before = 0, after = 0): number => round(((after - before) * 8) / elapsedMs);
  return {
    seconds,
    cpu_percent_of_core: round(((cpu.user + cpu.system) / 1000 / elapsedMs) * 100),
    to_viewer_kbps: kbps(bytesBefore?.received, bytesAfter?.received),
    from_viewer_kbps: kbps(bytesBefore?.sent, bytesAfter?.sent),
    frames_encoded: (await phone.metric('cloudphone_frames_encoded_total')) - encodedBefore,
    keyframes_encoded: (await phone.metric('cloudphone_keyframes_total')) - keyframesBefore,
  };
}

/**
 * Data channel to phone: a drag while the phone streams 1080x2400@30, and the same on a still screen; then
 * what the still screen costs with the viewer watching.
 */
async function inputLatency(
  browser: Browser,
  seconds: number,
  idleSeconds: number,
): Promise<{ streaming: InputLatency; still: InputLatency; idle: IdleCost }> {
  const phone = await startWhepPhone({
    width: INPUT_WIDTH,
    height: INPUT_HEIGHT,
    fps: FPS,
    bitrate: { targetKbps: 6000, minKbps: 2000, maxKbps: 8000 },
  });
  try {
    const page = await openPlayer(browser, phone.base, CONTROL_TOKEN);
    while ((await shownFrames(page)).length === 0) await sleep(20);
    await sleep(2000); // the bitrate and the decoder settle
    const streaming = await drag(page, phone, seconds);
    phone.simulator.command('pause');
    while (!phone.simulator.events.some((e) => e.event === 'paused')) await sleep(20);
    await sleep(500);
    const still = await drag(page, phone, seconds);
    await sleep(1000);
    const idle = await idleCost(page, phone, idleSeconds);
    await page.close();
    return { streaming, still, idle };
  } finally {
    await phone.stop();
  }
}

function describeInput(name: string, m: InputLatency): string {
  return `  ${name}: p50 ${String(m.p50_ms)} ms, p99 ${String(m.p99_ms)} ms, worst ${String(m.max_ms)} ms (${String(m.events)} Moves)`;
}

function describe(name: string, m: Measured, joins: number): string {
  const steps = m.first_frame_phases_median_ms;
  return (
    `${name}:\n` +
    `  capture to display p50 ${String(m.capture_to_display_p50_ms)} ms, p99 ${String(m.capture_to_display_p99_ms)} ms\n` +
    `  first frame after opening the page: median ${String(m.first_frame_ms)} ms, worst ${String(m.first_frame_max_ms)} ms of ${String(joins)}\n` +
    `  its steps (medians): page ${String(steps.page)} ms, offer to answer ${String(steps.whep)} ms, ` +
    `ICE and DTLS ${String(steps.connect)} ms, connected to picture ${String(steps.picture)} ms\n` +
    `  frames shown ${String(m.frames_shown)}, missed ${String(m.frames_missed)}`
  );
}

async function main(): Promise<void> {
  const seconds = option('seconds', 20);
  const joins = option('joins', 5);
  // The peer: the same encode pushed with WHIP to mediamtx and played from its own WHEP reader page.
  const server = await MediaServer.start();
  const phone = await startWhepPhone({
    width: WIDTH,
    height: HEIGHT,
    fps: FPS,
    bitrate: { targetKbps: 4000, minKbps: 1000, maxKbps: 6000 },
    files: { whip: server.publisherToken },
    webrtc: { whip: { url: server.whipUrl('{namespace}-{pod}'), tokenFile: '{tokens}/whip' } },
  });
  let stopped = false;
  const stopFirstPhone = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await phone.stop();
    await server.stop();
  };
  const browser = await launchChromium();
  try {
    // The sidecar's own measure of the watched viewer, read while it is still connected (a viewer's series
    // goes when it leaves).
    const total = async (name: string): Promise<number> =>
      (await metricSamples(phone.sidecar.metricsPort, name)).reduce((sum, sample) => sum + sample.value, 0);
    let reportedSum = 0;
    let reportedCount = 0;
    const direct = await measure(
      () => openPlayer(browser, phone.base, CONTROL_TOKEN),
      joins,
      seconds,
      async () => {
        reportedSum = await total('cloudphone_webrtc_capture_to_display_seconds_sum');
        reportedCount = await total('cloudphone_webrtc_capture_to_display_seconds_count');
      },
    );
    const readerPage = `http://127.0.0.1:${String(server.webrtcPort)}/test-phone-0/?controls=false&muted=true&autoplay=true`;
    const peer = await measure(() => openPage(browser, readerPage), joins, seconds);
    // This phone and its WHIP push end here: the idle figures below are of the input phone alone.
    await stopFirstPhone();
    const input = await inputLatency(browser, option('input-seconds', 10), option('idle-seconds', 20));

    const result = {
      width: WIDTH,
      height: HEIGHT,
      fps: FPS,
      ...direct,
      sidecar_reported_mean_ms: reportedCount > 0 ? round((reportedSum / reportedCount) * 1000) : null,
      window_seconds: seconds,
      joins,
      peer: {
        name: `mediamtx ${MEDIAMTX_VERSION}: the sidecar's WHIP push, played from its WHEP reader page`,
        ...peer,
      },
      data_channel_to_phone: {
        width: INPUT_WIDTH,
        height: INPUT_HEIGHT,
        fps: FPS,
        streaming: input.streaming,
        still_screen: input.still,
      },
      idle_phone_one_viewer: { width: INPUT_WIDTH, height: INPUT_HEIGHT, ...input.idle },
    };
    console.log(
      `WebRTC, ${String(WIDTH)}x${String(HEIGHT)}@${String(FPS)}, ${String(seconds)} s windows, Chromium ` +
        `(targets: p50 < 35 ms, p99 < 60 ms, first frame < 300 ms)\n` +
        `${describe("the sidecar's player (WHEP from the sidecar)", direct, joins)}\n` +
        `  the sidecar's own mean from render reports: ${String(result.sidecar_reported_mean_ms)} ms\n` +
        describe(result.peer.name, peer, joins) +
        `\nInput, data channel to phone (Chromium's pointermove to the phone's read), ${String(INPUT_WIDTH)}x${String(INPUT_HEIGHT)}@${String(FPS)}:\n` +
        `${describeInput('while the phone streams', input.streaming)}\n${describeInput('on a still screen (nothing encoded)', input.still)}\n` +
        `A still phone, ${String(INPUT_WIDTH)}x${String(INPUT_HEIGHT)}, one viewer, ${String(input.idle.seconds)} s (goals: under 1 % of a core, under 20 kbit/s):\n` +
        `  the sidecar's CPU ${String(input.idle.cpu_percent_of_core)} % of a core; to the viewer ${String(input.idle.to_viewer_kbps)} kbit/s, ` +
        `from it ${String(input.idle.from_viewer_kbps)} kbit/s; frames encoded ${String(input.idle.frames_encoded)} (keyframes ${String(input.idle.keyframes_encoded)})`,
    );
    const dir = new URL('results/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    writeFileSync(new URL('webrtc.json', dir), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await browser.close();
    await stopFirstPhone();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
