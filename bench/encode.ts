// Benchmark of the encode-and-push path (not a test: it prints figures and saves them).
//
//   npm run bench [-- --seconds 20 --soak-minutes 5]
//
// Three pipelines take the same simulated phone frames (native/build/cloudphone-simulator: the same painter,
// the same stamp) and push H.264 in MPEG-TS over SRT with the same latency setting (20 ms on loopback) to the
// same receiver (the ffmpeg CLI decoding, cloudphone-stamp-reader reading the stamps back):
//   cloudphone  the sidecar process, reading the phone's shared framebuffer;
//   gstreamer   gst-launch-1.0: rawvideoparse ! videoconvert ! x264enc tune=zerolatency ! mpegtsmux ! srtsink;
//   ffmpeg      the ffmpeg CLI: rawvideo -> libx264 -tune zerolatency -> mpegts over srt.
// The peers read the same frames from a pipe (cloudphone-simulator --raw), the way such tools are fed. All
// three use x264 ultrafast + zerolatency at the same bitrate and keyframe interval.
// For each, at each size: producer-to-decoded latency p50/p99 from the stamps, CPU time of the encoding
// process per frame, and frames the receiver never got whole. The limit row adds up the stages no pipeline
// can avoid, measured alone on the same frames: libyuv + x264 (cloudphone-encode-limit), the SRT latency
// setting, and the decode (ffmpeg -benchmark on the same stream).
// Then a soak: the sidecar at 1920x1080@60 for --soak-minutes, counting dropped frames.
// Results: bench/results/encode.json and bench/results/encode-soak.json.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  FrameExactReceiver,
  NATIVE_BUILD,
  SidecarProcess,
  Simulator,
  cpuSeconds,
  freeTcpPort,
  freeUdpPort,
  sidecarConfig,
  stopChild,
  tempDir,
  type Stamp,
} from '../test/media/media-peers.ts';
import { waitFor } from '../test/cluster/wait-for.ts';
import { percentile, round } from './figures.ts';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    'warmup-seconds': { type: 'string', default: '3' },
    'soak-minutes': { type: 'string', default: '5' },
    only: { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const WARMUP_SECONDS = Number(values['warmup-seconds']);
const SOAK_MINUTES = Number(values['soak-minutes']);
const SRT_LATENCY_MS = 20;

interface Size {
  width: number;
  height: number;
  fps: number;
  kbps: number;
}
const SOAK_SIZE: Size = { width: 1920, height: 1080, fps: 60, kbps: 8000 };
const SIZES: Size[] = [
  { width: 720, height: 1280, fps: 30, kbps: 4000 },
  { width: 1080, height: 2400, fps: 30, kbps: 8000 },
  SOAK_SIZE,
];
type Pipeline = 'cloudphone' | 'gstreamer' | 'ffmpeg';
const PIPELINES: Pipeline[] = ['cloudphone', 'gstreamer', 'ffmpeg'];

export interface Result {
  pipeline: Pipeline | 'limit';
  width: number;
  height: number;
  fps: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  /** The part of the p50 that is not the SRT latency setting (which every pipeline spends in full). */
  beyond_srt_p50_ms: number;
  cpu_ms_per_frame: number;
  dropped: number;
  frames: number;
  /**
   * Frames the receiver decoded per second. A peer fed from a pipe never drops a frame: when it falls behind,
   * the simulator waits on the pipe, and fewer frames are made. This says so. (None for the limit row, whose
   * stages are timed alone, not at a frame rate.)
   */
  fps_out?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What one pipeline's encoder looks like to the benchmark: a process whose CPU time is counted. */
interface Encoder {
  pid: number;
  stop: () => Promise<void>;
}

/** The simulator's frames on a pipe into a peer's stdin (no JavaScript in between). */
function rawPipeline(size: Size, command: string, args: string[]): Encoder {
  const simulator = spawn(
    join(NATIVE_BUILD, 'cloudphone-simulator'),
    ['--raw', '--width', String(size.width), '--height', String(size.height), '--fps', String(size.fps)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const peer = spawn(command, args, { stdio: [simulator.stdout, 'ignore', 'inherit'] });
  return {
    pid: peer.pid ?? 0,
    stop: async () => {
      await stopChild(peer);
      await stopChild(simulator);
    },
  };
}

async function startEncoder(pipeline: Pipeline, size: Size, port: number, work: string): Promise<Encoder> {
  const { width, height, fps, kbps } = size;
  const srtUrl = `srt://127.0.0.1:${String(port)}`;
  switch (pipeline) {
    case 'cloudphone': {
      const shared = join(work, `shared-${String(port)}`);
      mkdirSync(shared);
      const sidecar = new SidecarProcess({
        config: sidecarConfig({
          sharedDir: shared,
          srtUrl,
          video: { fps, keyframeIntervalSeconds: 2, bitrate: { targetKbps: kbps, minKbps: kbps, maxKbps: kbps } },
          srt: { latencyMs: SRT_LATENCY_MS },
        }),
        configFile: join(work, `sidecar-${String(port)}.json`),
        metricsPort: await freeTcpPort(),
      });
      const simulator = new Simulator({ dir: shared, width, height, fps, format: 'rgba' });
      return {
        pid: sidecar.pid,
        stop: async () => {
          await simulator.stop();
          await sidecar.stop();
        },
      };
    }
    case 'gstreamer':
      return rawPipeline(size, 'gst-launch-1.0', [
        '-q',
        'fdsrc',
        'fd=0',
        `blocksize=${String(width * height * 4)}`,
        '!',
        'rawvideoparse',
        `width=${String(width)}`,
        `height=${String(height)}`,
        'format=rgba',
        `framerate=${String(fps)}/1`,
        '!',
        // RGBA to I420 on every core (its default is one thread).
        'videoconvert',
        'n-threads=0',
        '!',
        'x264enc',
        'tune=zerolatency',
        'speed-preset=ultrafast',
        // Constant bitrate with the sidecar's VBV: maxrate = bitrate, a quarter second of buffer (default 600 ms).
        'pass=cbr',
        `bitrate=${String(kbps)}`,
        'vbv-buf-capacity=250',
        `key-int-max=${String(2 * fps)}`,
        // zerolatency's sliced threads, said again: the element's own property would otherwise have the last word.
        'sliced-threads=true',
        '!',
        // Each frame out as soon as it is muxed (0: all packets at hand, not waiting to fill 7), a PCR every 20 ms
        // as the sidecar writes them, and no aggregation latency. (It writes video PES lengths of its own accord.)
        'mpegtsmux',
        'alignment=0',
        'pcr-interval=1800',
        'latency=0',
        '!',
        'srtsink',
        `uri=${srtUrl}?mode=caller&latency=${String(SRT_LATENCY_MS)}`,
        'wait-for-connection=false',
        // A live sink that renders on arrival, not at the buffer's clock time.
        'sync=false',
      ]);
    case 'ffmpeg':
      return rawPipeline(size, 'ffmpeg', [
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'rawvideo',
        '-pix_fmt',
        'rgba',
        '-s',
        `${String(width)}x${String(height)}`,
        '-r',
        String(fps),
        '-i',
        '-',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-tune',
        'zerolatency',
        '-b:v',
        `${String(kbps)}k`,
        '-maxrate',
        `${String(kbps)}k`,
        '-bufsize',
        `${String(kbps / 4)}k`,
        '-g',
        String(2 * fps),
        // The muxer as the sidecar sets its own: no mux delay or preload (by default 0.7 s and 0.5 s of
        // timestamps held back), each packet flushed to SRT when written, a PCR every 20 ms, and the video PES
        // length written, so the receiver knows a frame is whole on its last byte, not at the next frame.
        '-muxdelay',
        '0',
        '-muxpreload',
        '0',
        '-flush_packets',
        '1',
        '-pcr_period',
        '20',
        '-omit_video_pes_length',
        '0',
        '-f',
        'mpegts',
        `${srtUrl}?mode=caller&latency=${String(SRT_LATENCY_MS * 1000)}&pkt_size=1316`,
      ]);
  }
}

/** Latency, loss and CPU over a window of stamps (all stamps after the warm-up). */
function summarize(
  stamps: Stamp[],
  cpuMs: number,
  seconds: number,
): Omit<Result, 'pipeline' | 'width' | 'height' | 'fps'> {
  const whole = stamps.filter((s) => s.frame !== null);
  const numbers = whole.map((s) => s.frame ?? 0);
  const first = Math.min(...numbers);
  const last = Math.max(...numbers);
  const distinct = new Set(numbers).size;
  const latencies = whole.map((s) => s.latencyMs ?? NaN).filter((n) => Number.isFinite(n));
  return {
    latency_p50_ms: round(percentile(latencies, 50)),
    latency_p99_ms: round(percentile(latencies, 99)),
    beyond_srt_p50_ms: round(percentile(latencies, 50) - SRT_LATENCY_MS),
    cpu_ms_per_frame: round(cpuMs / Math.max(1, stamps.length)),
    dropped: numbers.length ? last - first + 1 - distinct : 0,
    frames: stamps.length,
    fps_out: round(distinct / seconds),
  };
}

async function measure(pipeline: Pipeline, size: Size, seconds: number, work: string): Promise<Result> {
  const port = await freeUdpPort();
  const receiver = new FrameExactReceiver({ port, latencyMs: SRT_LATENCY_MS });
  const encoder = await startEncoder(pipeline, size, port, work);
  try {
    await waitFor(
      `${pipeline}: first decoded frame`,
      () => Promise.resolve(receiver.stamps.length > 0 || undefined),
      30_000,
    );
    await sleep(WARMUP_SECONDS * 1000);
    const from = receiver.stamps.length;
    const cpuFrom = cpuSeconds(encoder.pid);
    await sleep(seconds * 1000);
    const cpuMs = (cpuSeconds(encoder.pid) - cpuFrom) * 1000;
    const stamps = receiver.stamps.slice(from);
    return { pipeline, width: size.width, height: size.height, fps: size.fps, ...summarize(stamps, cpuMs, seconds) };
  } finally {
    await encoder.stop();
    await receiver.stop();
  }
}

/** The limit row: libyuv + x264 alone, the SRT latency setting, and ffmpeg's decode of the same stream. */
function limit(size: Size, work: string): Result {
  const frames = size.fps * 10;
  const clip = join(work, `limit-${String(size.width)}x${String(size.height)}.h264`);
  const encode = JSON.parse(
    execFileSync(
      join(NATIVE_BUILD, 'cloudphone-encode-limit'),
      ['--width', String(size.width), '--height', String(size.height), '--fps', String(size.fps)].concat([
        '--bitrate',
        String(size.kbps),
        '--frames',
        String(frames),
        '--out',
        clip,
      ]),
      { encoding: 'utf8' },
    ),
  ) as { encode_p50_ms: number; encode_p99_ms: number; cpu_ms_per_frame: number };
  // -benchmark prints the decoder's wall time; low_delay as at the receiver (no frame threading).
  const decode = spawnSync(
    'ffmpeg',
    ['-hide_banner', '-nostats', '-flags', 'low_delay', '-benchmark', '-f', 'h264', '-i', clip, '-f', 'null', '-'],
    { encoding: 'utf8' },
  );
  const rtime = Number(/rtime=([\d.]+)s/.exec(`${decode.stdout}${decode.stderr}`)?.[1] ?? NaN);
  const decodeMs = (rtime * 1000) / frames;
  return {
    pipeline: 'limit',
    width: size.width,
    height: size.height,
    fps: size.fps,
    latency_p50_ms: round(encode.encode_p50_ms + SRT_LATENCY_MS + decodeMs),
    latency_p99_ms: round(encode.encode_p99_ms + SRT_LATENCY_MS + decodeMs),
    beyond_srt_p50_ms: round(encode.encode_p50_ms + decodeMs),
    cpu_ms_per_frame: round(encode.cpu_ms_per_frame),
    dropped: 0,
    frames,
  };
}

function printTable(results: Result[]): void {
  console.log(
    'pipeline     size         fps  latency p50  beyond SRT  latency p99  CPU ms/frame  dropped  frames  fps out',
  );
  for (const r of results) {
    console.log(
      [
        r.pipeline.padEnd(12),
        `${String(r.width)}x${String(r.height)}`.padEnd(12),
        String(r.fps).padStart(3),
        `${r.latency_p50_ms.toFixed(1)} ms`.padStart(12),
        `${r.beyond_srt_p50_ms.toFixed(1)} ms`.padStart(11),
        `${r.latency_p99_ms.toFixed(1)} ms`.padStart(12),
        r.cpu_ms_per_frame.toFixed(2).padStart(13),
        String(r.dropped).padStart(8),
        String(r.frames).padStart(7),
        (r.fps_out?.toFixed(1) ?? '–').padStart(8),
      ].join(' '),
    );
  }
}

/**
 * Our row against the limit and the best peer at one size, with the goals beside each ratio: p50 at most 0.8x
 * the best peer's, CPU per frame at most 0.6x the thriftiest peer's, p50 at most 1.05x the limit.
 */
function goals(results: Result[], size: Size): string {
  const rows = results.filter((r) => r.width === size.width && r.height === size.height && r.fps === size.fps);
  const ours = rows.find((r) => r.pipeline === 'cloudphone');
  const floor = rows.find((r) => r.pipeline === 'limit');
  const peers = rows.filter((r) => r.pipeline === 'gstreamer' || r.pipeline === 'ffmpeg');
  const label = `${String(size.width)}x${String(size.height)}@${String(size.fps)}`;
  if (!ours || !floor || peers.length === 0) return `${label}: not every pipeline ran`;
  const fastest = peers.reduce((a, b) => (b.latency_p50_ms < a.latency_p50_ms ? b : a));
  const thriftiest = peers.reduce((a, b) => (b.cpu_ms_per_frame < a.cpu_ms_per_frame ? b : a));
  const ratio = (value: number, goal: number, what: string): string =>
    `${value.toFixed(2)}x ${what} (goal <= ${goal.toFixed(2)}x${value <= goal ? '' : ', MISSED'})`;
  return `${label}: p50 ${[
    ratio(ours.latency_p50_ms / fastest.latency_p50_ms, 0.8, `${fastest.pipeline}'s`),
    ratio(ours.latency_p50_ms / floor.latency_p50_ms, 1.05, 'the limit'),
  ].join(', ')}; CPU ${ratio(ours.cpu_ms_per_frame / thriftiest.cpu_ms_per_frame, 0.6, `${thriftiest.pipeline}'s`)}`;
}

async function main(): Promise<void> {
  const work = tempDir('cloudphone-bench-');
  const resultsDir = join(root, 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  try {
    const results: Result[] = [];
    const pipelines = values.only ? PIPELINES.filter((p) => p === values.only) : PIPELINES;
    for (const size of SIZES) {
      results.push(limit(size, work.path));
      for (const pipeline of pipelines) {
        const result = await measure(pipeline, size, SECONDS, work.path);
        results.push(result);
        printTable([result]);
      }
    }
    console.log();
    printTable(results);
    for (const size of SIZES) console.log(goals(results, size));
    if (!values.only) writeFileSync(join(resultsDir, 'encode.json'), `${JSON.stringify(results, null, 2)}\n`);

    if (SOAK_MINUTES > 0) {
      console.log(`\nsoak: cloudphone at 1920x1080@60 for ${String(SOAK_MINUTES)} minutes`);
      const soak = await measure('cloudphone', SOAK_SIZE, SOAK_MINUTES * 60, work.path);
      printTable([soak]);
      writeFileSync(
        join(resultsDir, 'encode-soak.json'),
        `${JSON.stringify({ ...soak, minutes: SOAK_MINUTES }, null, 2)}\n`,
      );
    }
  } finally {
    work.remove();
  }
}

await main();
// The receivers' and simulators' pipes can keep the event loop alive a moment after they are killed.
process.exit(0);
