// Real peers for the data path: the reference producer (native/build/cloudphone-simulator), a deliberately
// broken one, the sidecar as its own process (as it runs in a pod), the benchmark's frame-exact SRT receiver,
// and an SRT receiver made of the ffmpeg CLI (Debian's, linked against libsrt) decoding to
// grey frames that cloudphone-stamp-reader turns back into frame numbers and capture times.

import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PipelineOptions } from '../../sidecar/src/native.ts';

export const NATIVE_BUILD = fileURLToPath(new URL('../../native/build/', import.meta.url));

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    remove: () => {
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** Options for a NativePipeline of its own in sharedDir: 30 fps, 1 Mbit/s, x264 ultrafast, no output unless given. */
export function pipelineOptions(sharedDir: string, overrides: Partial<PipelineOptions> = {}): PipelineOptions {
  return {
    sharedDir,
    socketName: 'control.sock',
    maxFps: 30,
    bitrateKbps: 1000,
    keyframeIntervalSeconds: 2,
    intraRefresh: false,
    preset: 'ultrafast',
    encoder: 'software',
    ...overrides,
  };
}

/** A UDP port nobody uses right now (SRT runs over UDP). */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  socket.close();
  return port;
}

/** A TCP port nobody uses right now. */
export async function freeTcpPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  return port;
}

/** Process CPU time (user + system, all threads) in seconds, from /proc. */
export function cpuSeconds(pid: number): number {
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100; // USER_HZ on Linux
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/**
 * A SidecarConfig for the data-path tests and benchmarks: the phone in sharedDir, SRT in caller mode to
 * srtUrl with 20 ms latency, and the given video settings.
 */
export function sidecarConfig(options: {
  sharedDir: string;
  /** SRT caller to this URL; absent: no SRT. */
  srtUrl?: string;
  video: Record<string, unknown>;
  srt?: Record<string, unknown>;
  webrtc?: Record<string, unknown>;
  rtmp?: Record<string, unknown>;
  recording?: Record<string, unknown>;
  input?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    apiVersion: 'cloudphone.io/v1alpha1',
    kind: 'SidecarConfig',
    logLevel: 'warn',
    stream: { namespace: 'test', name: 'phone', generation: 1 },
    shared: { dir: options.sharedDir },
    video: options.video,
    ...(options.srtUrl ? { srt: { mode: 'caller', url: options.srtUrl, latencyMs: 20, ...options.srt } } : {}),
    ...(options.webrtc ? { webrtc: options.webrtc } : {}),
    ...(options.rtmp ? { rtmp: options.rtmp } : {}),
    ...(options.recording ? { recording: options.recording } : {}),
    ...(options.input ? { input: options.input } : {}),
  };
}

/** Every sample of a metric on a sidecar's /metrics (name, then labels or nothing); empty while it is not serving. */
export async function metricSamples(port: number, name: string): Promise<{ labels: string; value: number }[]> {
  let text: string;
  try {
    text = await (await fetch(`http://127.0.0.1:${String(port)}/metrics`)).text();
  } catch {
    return [];
  }
  const samples: { labels: string; value: number }[] = [];
  for (const line of text.split('\n')) {
    const sample = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (sample?.[1] === name && sample[3] !== undefined)
      samples.push({ labels: sample[2] ?? '', value: Number(sample[3]) });
  }
  return samples;
}

/** One sample, named with its labels as /metrics writes them (`name{reason="role"}`); undefined if absent. */
export async function readMetric(port: number, nameWithLabels: string): Promise<number | undefined> {
  const name = /^\w+/.exec(nameWithLabels)?.[0] ?? '';
  const labels = nameWithLabels.slice(name.length);
  return (await metricSamples(port, name)).find((sample) => sample.labels === labels)?.value;
}

/**
 * cloudphone-stamp-reader on a decoder's output (width x height grey frames on its stdout), pushing each
 * frame's stamp to stamps as it is read.
 */
export function readStamps(decoder: ChildProcess, width: number, height: number, stamps: Stamp[]): ChildProcess {
  const reader = spawn(
    join(NATIVE_BUILD, 'cloudphone-stamp-reader'),
    ['--width', String(width), '--height', String(height)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  reader.stdin.on('error', () => undefined);
  decoder.stdout?.pipe(reader.stdin);
  lines(reader, (line) => stamps.push(JSON.parse(line) as Stamp));
  return reader;
}

/** Decodes a recorded file with the ffmpeg CLI and reads every picture's stamp back, in order. */
export async function fileStamps(file: string, width: number, height: number): Promise<Stamp[]> {
  const stamps: Stamp[] = [];
  const ffmpeg = spawn(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-i', file, '-fps_mode', 'passthrough'].concat([
      '-vf',
      `scale=${String(width)}:${String(height)}`,
      '-f',
      'rawvideo',
      '-pix_fmt',
      'gray',
      '-',
    ]),
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const reader = readStamps(ffmpeg, width, height, stamps);
  await once(reader, 'close'); // after its output has been read to the end
  return stamps;
}

/** ffmpeg as an RTMP server: it waits for one publisher at url, and writes what it gets as the output args say. */
export function rtmpListener(url: string, output: string[]): ChildProcess {
  return spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-listen', '1', '-i', url, ...output], {
    stdio: 'ignore',
  });
}

/** The sidecar's own entry point (sidecar/src/main.ts) in a child process, with its config in a file. */
export class SidecarProcess {
  readonly #child: ChildProcess;
  readonly #metricsPort: number;

  constructor(options: {
    config: Record<string, unknown>;
    configFile: string;
    metricsPort: number;
    env?: NodeJS.ProcessEnv;
  }) {
    this.#metricsPort = options.metricsPort;
    writeFileSync(options.configFile, JSON.stringify({ ...options.config, metrics: { port: options.metricsPort } }));
    const main = fileURLToPath(new URL('../../sidecar/src/main.ts', import.meta.url));
    this.#child = spawn(process.execPath, [main, '--config', options.configFile], {
      env: { ...process.env, LOG_LEVEL: 'warn', ...options.env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  /** One sample from /metrics, or undefined while the sidecar is not serving yet. */
  async metric(name: string): Promise<number | undefined> {
    return readMetric(this.#metricsPort, name);
  }

  async stop(): Promise<void> {
    await stopChild(this.#child);
  }
}

function lines(child: ChildProcess, onLine: (line: string) => void): void {
  if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
}

/** SIGTERM (or the signal given), then SIGKILL after 3 s; resolves once the child has exited. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

export interface SimulatorEvent {
  event: string;
  [key: string]: unknown;
}

export class Simulator {
  readonly events: SimulatorEvent[] = [];
  readonly #child: ChildProcess;

  constructor(options: {
    dir: string;
    width: number;
    height: number;
    format?: string;
    fps?: number;
    memory?: 'file' | 'memfd';
    /** Publish this many frames, then close. */
    frames?: number;
    /** Run as this user (and group), as a phone container does beside the sidecar's own user. */
    uid?: number;
  }) {
    const simulator = join(NATIVE_BUILD, 'cloudphone-simulator');
    const asUser =
      options.uid === undefined
        ? []
        : ['--reuid', String(options.uid), '--regid', String(options.uid), '--clear-groups', simulator];
    this.#child = spawn(
      asUser.length ? 'setpriv' : simulator,
      [
        ...asUser,
        '--dir',
        options.dir,
        '--width',
        String(options.width),
        '--height',
        String(options.height),
        '--format',
        options.format ?? 'rgba',
        '--fps',
        String(options.fps ?? 30),
        '--memory',
        options.memory ?? 'file',
        ...(options.frames ? ['--frames', String(options.frames)] : []),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    lines(this.#child, (line) => this.events.push(JSON.parse(line) as SimulatorEvent));
  }

  command(text: string): void {
    this.#child.stdin?.write(`${text}\n`);
  }

  async stop(): Promise<void> {
    await stopChild(this.#child);
  }
}

/**
 * A phone with its own encoder (as with Android's MediaCodec): the simulator's frames through the ffmpeg
 * CLI's libx264 into cloudphone-simulator --h264, which submits each access unit to the sidecar.
 */
export class EncodedPhone {
  readonly events: SimulatorEvent[] = [];
  readonly #frames: ChildProcess;
  readonly #encoder: ChildProcess;
  readonly #phone: ChildProcess;

  constructor(options: {
    dir: string;
    width: number;
    height: number;
    fps?: number;
    kbps?: number;
    /** The encoder's pixel format: 4:2:0 as MediaCodec makes it, unless a test wants another. */
    pixelFormat?: string;
    /** More x264 parameters (name=value:...), after the ones every test phone uses. */
    x264Params?: string;
    /** The surface the phone announces, when a test makes it differ from what it encodes. */
    announce?: { width: number; height: number };
  }) {
    const sizeArgs = ({ width, height }: { width: number; height: number }): string[] => [
      '--width',
      String(width),
      '--height',
      String(height),
    ];
    const size = sizeArgs(options);
    const fps = String(options.fps ?? 30);
    this.#frames = spawn(join(NATIVE_BUILD, 'cloudphone-simulator'), ['--raw', ...size, '--fps', fps], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.#encoder = spawn(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgba']
        .concat(['-s', `${String(options.width)}x${String(options.height)}`, '-r', fps, '-i', '-'])
        .concat(['-c:v', 'libx264', '-pix_fmt', options.pixelFormat ?? 'yuv420p', '-preset', 'ultrafast'])
        .concat(['-tune', 'zerolatency'])
        .concat([
          '-x264-params',
          ['aud=1:keyint=30', ...(options.x264Params ? [options.x264Params] : [])].join(':'),
          '-b:v',
          `${String(options.kbps ?? 4000)}k`,
          '-f',
          'h264',
          '-',
        ]),
      { stdio: [this.#frames.stdout, 'pipe', 'inherit'] },
    );
    this.#phone = spawn(
      join(NATIVE_BUILD, 'cloudphone-simulator'),
      ['--h264', '--dir', options.dir, ...sizeArgs(options.announce ?? options)],
      {
        stdio: [this.#encoder.stdout, 'pipe', 'inherit'],
      },
    );
    lines(this.#phone, (line) => this.events.push(JSON.parse(line) as SimulatorEvent));
  }

  /** Ends the stream at its source, so the phone sends what it has, reports, and closes. */
  async stop(): Promise<void> {
    await stopChild(this.#frames);
    const timer = setTimeout(() => {
      this.#encoder.kill('SIGKILL');
      this.#phone.kill('SIGKILL');
    }, 5000);
    if (this.#phone.exitCode === null && this.#phone.signalCode === null) await once(this.#phone, 'exit');
    clearTimeout(timer);
    await stopChild(this.#encoder);
  }
}

/** Runs the broken producer in one mode until it exits. */
export async function runHostileProducer(dir: string, mode: string): Promise<number | null> {
  const child = spawn(join(NATIVE_BUILD, 'cloudphone-hostile-producer'), ['--dir', dir, '--mode', mode], {
    stdio: 'inherit',
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

export interface Stamp {
  index: number;
  frame: number | null;
  captureNs?: number;
  latencyMs?: number;
}

/**
 * ffmpeg as the SRT listener, decoding what arrives and scaling it to width x height grey frames for the
 * stamp reader; the sizes ffmpeg decoded (before scaling) are read from its showinfo filter.
 */
export class SrtReceiver {
  readonly stamps: Stamp[] = [];
  readonly decodedSizes: string[] = [];
  /** ffmpeg's last 200 lines on stderr: why a connection was refused, for one. */
  readonly log: string[] = [];
  readonly #ffmpeg: ChildProcess;
  readonly #reader: ChildProcess;

  /** Listens on 127.0.0.1:port; with `connectTo`, calls that host's listener instead (a phone pod's sidecar). */
  constructor(options: {
    port: number;
    width: number;
    height: number;
    latencyMs?: number;
    passphrase?: string;
    connectTo?: string;
  }) {
    const query = new URLSearchParams({
      mode: options.connectTo ? 'caller' : 'listener',
      latency: String((options.latencyMs ?? 20) * 1000),
    });
    if (options.passphrase) {
      query.set('passphrase', options.passphrase);
      query.set('pbkeylen', '16');
    }
    this.#ffmpeg = spawn(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'info',
        '-nostats',
        '-fflags',
        'nobuffer',
        '-flags',
        'low_delay',
        '-probesize',
        '32768',
        '-analyzeduration',
        '0',
        '-f',
        'mpegts',
        '-i',
        `srt://${options.connectTo ?? '127.0.0.1'}:${String(options.port)}?${query.toString()}`,
        '-fps_mode',
        'passthrough',
        '-vf',
        `showinfo,scale=${String(options.width)}:${String(options.height)}`,
        '-f',
        'rawvideo',
        '-pix_fmt',
        'gray',
        '-',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#reader = readStamps(this.#ffmpeg, options.width, options.height, this.stamps);
    if (this.#ffmpeg.stderr) {
      createInterface({ input: this.#ffmpeg.stderr }).on('line', (line) => {
        this.log.push(line);
        if (this.log.length > 200) this.log.shift();
        const size = /\bs:(\d+x\d+)\b/.exec(line);
        if (size?.[1] && this.decodedSizes.at(-1) !== size[1]) this.decodedSizes.push(size[1]);
      });
    }
  }

  /** Frame numbers read so far, in arrival order; null for a frame whose stamp did not read back. */
  frames(): (number | null)[] {
    return this.stamps.map((s) => s.frame);
  }

  async stop(): Promise<void> {
    await stopChild(this.#ffmpeg);
    await stopChild(this.#reader);
  }
}

/**
 * cloudphone-srt-receiver (native/bench/srt_receiver.c): libsrt, each video PES straight into libavcodec's
 * H.264 decoder, stamps read from the decoded pictures. Unlike the ffmpeg CLI it holds nothing back: a frame
 * is decoded as soon as its PES is whole.
 */
export class FrameExactReceiver {
  readonly stamps: Stamp[] = [];
  readonly #child: ChildProcess;

  constructor(options: { port: number; latencyMs?: number }) {
    this.#child = spawn(
      join(NATIVE_BUILD, 'cloudphone-srt-receiver'),
      ['--port', String(options.port), '--latency', String(options.latencyMs ?? 20)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    lines(this.#child, (line) => this.stamps.push(JSON.parse(line) as Stamp));
  }

  frames(): (number | null)[] {
    return this.stamps.map((s) => s.frame);
  }

  async stop(): Promise<void> {
    await stopChild(this.#child);
  }
}
