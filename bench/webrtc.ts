// Glass-to-glass latency over WebRTC, as a person sees it: the simulator stamps each frame with its capture
// time, the sidecar encodes and sends it over WHEP, Debian's Chromium plays it in the player page, and a probe
// in the page reads the stamp back from every frame the browser presents (requestVideoFrameCallback) with the
// time it expected the frame on screen. Capture (CLOCK_MONOTONIC) and display (the browser's epoch clock)
// are put on one clock here, on the same machine.
//
// Also: the time from opening the player page to the first frame on screen (page load, WHEP, ICE, DTLS, the
// keyframe asked for on join), over several joins; and the sidecar's own view of the same latency (the
// render reports the page sends, on its /metrics).
//
//   npm run bench:webrtc [-- --seconds 20 --joins 5]
// Results: bench/results/webrtc.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import { launchChromium, openPlayer, shownFrames } from '../test/media/chromium-player.ts';
import { metricSamples } from '../test/media/media-peers.ts';
import { CONTROL_TOKEN, startWhepPhone } from '../test/media/webrtc-peers.ts';
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

async function main(): Promise<void> {
  const seconds = option('seconds', 20);
  const joins = option('joins', 5);
  const phone = await startWhepPhone({
    width: WIDTH,
    height: HEIGHT,
    fps: FPS,
    bitrate: { targetKbps: 4000, minKbps: 1000, maxKbps: 6000 },
  });
  const browser = await launchChromium();
  try {
    const firstFrames: number[] = [];
    for (let i = 0; i < joins; i++) {
      const openedAt = performance.timeOrigin + performance.now();
      const page = await openPlayer(browser, phone.base, CONTROL_TOKEN);
      let first: number | undefined;
      while (first === undefined) {
        first = (await shownFrames(page))[0]?.shownAtMs;
        if (first === undefined) await sleep(10);
      }
      firstFrames.push(first - openedAt);
      await page.close();
    }

    const page = await openPlayer(browser, phone.base, CONTROL_TOKEN);
    await sleep(3000); // warm-up: the bitrate settles, the clock offset is measured
    const skip = (await shownFrames(page)).length;
    await sleep(seconds * 1000);
    const offsetMs = epochMinusMonotonicMs();
    const frames = (await shownFrames(page)).slice(skip);
    const latencies = frames.map((f) => f.shownAtMs - (f.captureNs / 1e6 + offsetMs));
    const numbers = frames.map((f) => f.frame);
    const missed = numbers.length > 1 ? (numbers.at(-1) ?? 0) - (numbers[0] ?? 0) + 1 - numbers.length : 0;
    // Over every viewer that joined: the histogram has a label set per viewer session.
    const total = async (name: string): Promise<number> =>
      (await metricSamples(phone.sidecar.metricsPort, name)).reduce((sum, sample) => sum + sample.value, 0);
    const reportedSum = await total('cloudphone_webrtc_glass_to_glass_seconds_sum');
    const reportedCount = await total('cloudphone_webrtc_glass_to_glass_seconds_count');
    await page.close();

    const result = {
      width: WIDTH,
      height: HEIGHT,
      fps: FPS,
      g2g_p50_ms: round(percentile(latencies, 50)),
      g2g_p99_ms: round(percentile(latencies, 99)),
      first_frame_ms: round(percentile(firstFrames, 50)),
      first_frame_max_ms: round(Math.max(...firstFrames)),
      frames_shown: frames.length,
      frames_missed: missed,
      sidecar_reported_mean_ms: reportedCount > 0 ? round((reportedSum / reportedCount) * 1000) : null,
      window_seconds: seconds,
      joins,
    };
    console.log(
      `WebRTC glass-to-glass, ${String(WIDTH)}x${String(HEIGHT)}@${String(FPS)}, ${String(seconds)} s, Chromium:\n` +
        `  p50 ${String(result.g2g_p50_ms)} ms, p99 ${String(result.g2g_p99_ms)} ms (targets < 35 ms, < 60 ms)\n` +
        `  first frame after opening the page: median ${String(result.first_frame_ms)} ms, worst ${String(result.first_frame_max_ms)} ms of ${String(joins)} (target < 300 ms)\n` +
        `  frames shown ${String(frames.length)}, missed ${String(missed)}; the sidecar's own mean from render reports: ${String(result.sidecar_reported_mean_ms)} ms`,
    );
    const dir = new URL('results/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    writeFileSync(new URL('webrtc.json', dir), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await browser.close();
    await phone.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
