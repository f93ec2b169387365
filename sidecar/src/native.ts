// The only module that touches the native addon (native/build/cloudphone.node). It turns the addon's loose
// objects into typed ones and its named errors into NativeError, so nothing else depends on its shape.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const ADDON_PATH = fileURLToPath(new URL('../../native/build/cloudphone.node', import.meta.url));

export interface SrtOptions {
  listener: boolean;
  host: string;
  port: number;
  latencyMs: number;
  passphrase?: string;
  keyLength: 16 | 24 | 32;
  streamId?: string;
  /** Listener mode: most receivers at once, each with its own connection; one more is refused. */
  maxReceivers?: number;
}

/** The RTMP push: url holds the stream key, which the addon replaces in anything it reports. Secret. */
export interface RtmpOptions {
  url: string;
  key: string;
}

/** Recording into a directory as fragmented MP4 segments (native/src/sidecar/recording_sink.h). */
export interface RecordingOptions {
  directory: string;
  segmentSeconds: number;
  /** Most the segments may hold together; the oldest go first. */
  maxBytes: number;
  /** Segments that ended longer ago are removed; 0: no age limit. */
  maxAgeSeconds: number;
}

export interface PipelineOptions {
  sharedDir: string;
  socketName: string;
  maxFps: number;
  bitrateKbps: number;
  keyframeIntervalSeconds: number;
  intraRefresh: boolean;
  preset: 'ultrafast' | 'superfast';
  /** auto picks hardware when this build has it and the device is present; see encoderReason in stats. */
  encoder: 'auto' | 'software' | 'vaapi' | 'nvenc';
  /** Longest side of the encoded picture; a larger screen is scaled down keeping its aspect. 0: no limit. */
  maxSize?: number;
  /** Users whose processes may connect to the control socket; absent or empty: the sidecar's own uid only. */
  phoneUids?: number[];
  srt?: SrtOptions;
  rtmp?: RtmpOptions;
  recording?: RecordingOptions;
}

/** What the phone publishes: pixels in shared memory, or H.264 it encoded itself (passed through). */
export type PixelFormat = 'RGBA8888' | 'RGBX8888' | 'BGRA8888' | 'NV12' | 'H264';
// The addon reports an encoded surface with the fourcc 'H264' (native/src/sidecar/pipeline.h).
const PIXEL_FORMATS: Record<number, PixelFormat> = {
  1: 'RGBA8888',
  2: 'RGBX8888',
  3: 'BGRA8888',
  4: 'NV12',
  0x48323634: 'H264',
};

/**
 * What the native pipeline tells JavaScript, each kind at most a few a second (native/src/sidecar/event_gate.h):
 * suppressed says how many of this kind were held back before this one (absent when none).
 */
export type PipelineEvent = (
  | { type: 'producer-connected'; producer: string }
  | { type: 'producer-disconnected'; producer: string; reason: string }
  | {
      type: 'surface';
      generation: number;
      width: number;
      height: number;
      format: PixelFormat;
      /** How the phone's screen is turned, Android's Surface.ROTATION_* (0 to 3); the picture is upright. */
      rotation: number;
    }
  /** The phone's clipboard: checked UTF-8, at most 32768 bytes. Sensitive: never logged. */
  | { type: 'clipboard'; text: string }
  | { type: 'error'; name: string; reason: string }
  | { type: 'srt-connected' }
  | { type: 'srt-disconnected'; reason: string }
  | { type: 'srt-error'; reason: string }
  /** The RTMP push is publishing; then disconnected (why, and how long it had published if under 10 s). */
  | { type: 'rtmp-connected' }
  | { type: 'rtmp-disconnected'; reason: string }
  /** A connection or publish attempt failed (said once until the reason changes). */
  | { type: 'rtmp-error'; reason: string }
  /** A recording segment is finished: name is its file, in the recording directory. */
  | { type: 'recording-segment'; name: string }
  /** A segment could not be finished (cut back or renamed) and is gone. */
  | { type: 'recording-lost'; reason: string }
  /** Recording stopped on a failed write (the volume full, or not writable), said again when the reason changes;
   * it resumes by itself. */
  | { type: 'recording-stopped'; reason: string }
  | { type: 'recording-resumed' }
  /** At start: what became of the segments an earlier run left unfinished. */
  | { type: 'recording-adopted'; reason: string }
) & { suppressed?: number };

export interface SrtStats {
  connected: boolean;
  rttMs: number;
  bandwidthMbps: number;
  sendRateMbps: number;
  packetsSent: number;
  packetsLost: number;
  packetsRetransmitted: number;
  packetsDropped: number;
  sendBufferMs: number;
  connects: number;
  /** Receivers connected now; rttMs and sendBufferMs are the worst of them, the counters their sum. */
  receivers: number;
  /** Receivers refused because maxReceivers were connected. */
  refused: number;
  /** SRT sockets the sink has created: one for a listener's whole life, one per connection attempt as a caller. */
  socketsCreated: number;
  accessUnitsSent: number;
  accessUnitsDropped: number;
}

export interface RtmpStats {
  publishing: boolean;
  /** Connections that began publishing. */
  sessions: number;
  /** Attempts that failed, and sessions the server or network ended within 10 s (a wrong stream key ends so). */
  failedSessions: number;
  accessUnitsSent: number;
  /** Encoded frames dropped for RTMP: while the network fell behind, until the next keyframe. */
  accessUnitsDropped: number;
  /** FLV bytes handed to the RTMP protocol. */
  bytesSent: number;
}

export interface RecordingStats {
  /** Writing, or waiting for a keyframe to; false while stopped by a failure. */
  recording: boolean;
  segments: number;
  /** Removed by retention (size or age). */
  segmentsRemoved: number;
  accessUnitsWritten: number;
  /** Encoded frames not recorded: the disk fell behind, recording was stopped, or a segment awaited a keyframe. */
  accessUnitsDropped: number;
  bytesWritten: number;
  /** What the directory's segments hold, the one being written included. */
  bytesStored: number;
  /** Times recording stopped on a failed write. */
  failures: number;
}

/** One encoded picture: H.264 Annex-B, one access unit (SPS/PPS before each keyframe). */
export interface AccessUnit {
  data: Buffer;
  /** 90 kHz presentation timestamp, from the capture clock; restarts after the last one with each phone. */
  pts90k: number;
  /** The phone's CLOCK_MONOTONIC capture time in nanoseconds; 0 for a repeated still frame, or when the phone's
   * time could not be true (native/src/sidecar/presentation_clock.h). */
  captureNs: number;
  keyframe: boolean;
}

/** One data-channel message from a WebRTC viewer, after the native Verifier and bounds checks. */
export type ViewerMessage =
  | { kind: 'invalid'; reason: string }
  | { kind: 'keyframe-request' }
  | { kind: 'pong'; id: number; sentUs: number; viewerTimeUs: number }
  | { kind: 'render-report'; rtpTimestamp: number; renderedAtUs: number }
  | {
      kind: 'stats';
      framesDecoded: number;
      framesDropped: number;
      packetsLost: number;
      fps: number;
      jitterMs: number;
      rttMs: number;
      bitrateKbps: number;
    }
  /**
   * control: the event re-encoded as the cloudphone.control Message the phone reads (for sendInput);
   * release: a finger lifted or cancelled, or a key let go (never refused for rate: nothing may stay down);
   * rotate: a request to turn the phone's screen (the phone makes a new surface for it: rate-limited apart).
   */
  | { kind: 'input'; control: Buffer; release: boolean; rotate: boolean };

export interface PipelineStats {
  framesPublished: number;
  /** Events the native side held back from JavaScript (over the rate of their kind). */
  eventsSuppressed: number;
  /** libsrt's log lines not written (over a few a second; native/src/sidecar/srt_log.h). */
  srtLogLinesSuppressed: number;
  framesEncoded: number;
  framesStale: number;
  framesTorn: number;
  keyframes: number;
  bytesEncoded: number;
  encodeSecondsTotal: number;
  convertSecondsTotal: number;
  malformedMessages: number;
  producerErrors: number;
  producerConnects: number;
  /** Capture times a phone gave that could not be true (future, negative, over 10 s old): the read time was used. */
  captureTimesUnbelieved: number;
  /** Control socket connections refused: the connecting process's uid was not one of phoneUids. */
  connectionsRefused: number;
  /** Clipboard texts from the phone that passed the checks (each went to the control viewers). */
  clipboardUpdates: number;
  lastCaptureToEncodedMs: number;
  bitrateKbps: number;
  maxFps: number;
  producerConnected: boolean;
  width: number;
  height: number;
  generation: number;
  /** How the phone's screen is turned (Android's Surface.ROTATION_*). */
  rotation: number;
  /** The encoder start() picked ("x264"; empty before start) and why. */
  encoder: string;
  encoderReason: string;
  /** Pictures JavaScript was too slow to take (8 waiting); the queue then resumes at a keyframe. */
  accessUnitsDroppedForJs: number;
  /** Input to the phone: sent; Moves and scrolls merged while the phone was slow; sends its full socket
   * refused (tried again later); Cancels and key-ups made for viewers that left holding them; waiting now. */
  input: { sent: number; merged: number; deferred: number; released: number; waiting: number };
  srt: SrtStats;
  rtmp: RtmpStats;
  recording: RecordingStats;
}

/** A failure reported by the native core: name is ConfigError, ProducerError, EncoderError, SrtError or InputError. */
export class NativeError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

interface AddonPipeline {
  start(): void;
  stop(): void;
  requestKeyframe(): void;
  setBitrate(kbps: number): void;
  setMaxFps(fps: number): void;
  sendInput(viewer: number, message: Uint8Array): void;
  releaseInput(viewer: number): void;
  stats(): PipelineStats;
  onAccessUnit(listener: (unit: AccessUnit) => void): void;
  parameterSets(): Buffer;
}

interface Addon {
  Pipeline: new (options: PipelineOptions, onEvent: (event: Record<string, unknown>) => void) => AddonPipeline;
  readViewerMessage(bytes: Uint8Array): ViewerMessage;
  protocolVersion: number;
}

let addon: Addon | undefined;

function loadAddon(): Addon {
  addon ??= createRequire(import.meta.url)(ADDON_PATH) as Addon;
  return addon;
}

/** Calls into the addon, turning its named errors into NativeError. */
function callNative<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    if (error instanceof Error && error.name !== 'Error' && error.name !== 'TypeError') {
      throw new NativeError(error.name, error.message);
    }
    throw error;
  }
}

function toEvent(raw: Record<string, unknown>): PipelineEvent | undefined {
  const event = eventOf(raw);
  if (event && typeof raw.suppressed === 'number' && raw.suppressed > 0) event.suppressed = raw.suppressed;
  return event;
}

function eventOf(raw: Record<string, unknown>): PipelineEvent | undefined {
  const text = (key: string): string => (typeof raw[key] === 'string' ? raw[key] : '');
  const count = (key: string): number => (typeof raw[key] === 'number' ? raw[key] : 0);
  switch (raw.type) {
    case 'producer-connected':
      return { type: 'producer-connected', producer: text('producer') };
    case 'producer-disconnected':
      return { type: 'producer-disconnected', producer: text('producer'), reason: text('reason') };
    case 'surface': {
      const format = PIXEL_FORMATS[count('format')];
      if (!format)
        return { type: 'error', name: 'ProducerError', reason: `unknown pixel format ${String(raw.format)}` };
      return {
        type: 'surface',
        generation: count('generation'),
        width: count('width'),
        height: count('height'),
        format,
        rotation: count('rotation'),
      };
    }
    case 'clipboard':
      return { type: 'clipboard', text: text('text') };
    case 'error':
      return { type: 'error', name: text('name'), reason: text('reason') };
    case 'srt-connected':
      return { type: 'srt-connected' };
    case 'srt-disconnected':
      return { type: 'srt-disconnected', reason: text('reason') };
    case 'srt-error':
      return { type: 'srt-error', reason: text('reason') };
    case 'rtmp-connected':
      return { type: 'rtmp-connected' };
    case 'rtmp-disconnected':
      return { type: 'rtmp-disconnected', reason: text('reason') };
    case 'rtmp-error':
      return { type: 'rtmp-error', reason: text('reason') };
    case 'recording-segment':
      return { type: 'recording-segment', name: text('name') };
    case 'recording-lost':
      return { type: 'recording-lost', reason: text('reason') };
    case 'recording-stopped':
      return { type: 'recording-stopped', reason: text('reason') };
    case 'recording-resumed':
      return { type: 'recording-resumed' };
    case 'recording-adopted':
      return { type: 'recording-adopted', reason: text('reason') };
    default:
      return undefined;
  }
}

/**
 * Reads one untrusted message a viewer sent: verified by the FlatBuffers Verifier in C++ (the JavaScript
 * runtime has none) and bounds-checked field by field; never throws for bad bytes, it says why instead.
 */
export function readViewerMessage(bytes: Uint8Array): ViewerMessage {
  return loadAddon().readViewerMessage(bytes);
}

/** The native media pipeline: control socket, framebuffer, conversion, encoder and SRT, on native threads. */
export class NativePipeline {
  readonly #pipeline: AddonPipeline;

  constructor(options: PipelineOptions, onEvent: (event: PipelineEvent) => void) {
    const { Pipeline } = loadAddon();
    this.#pipeline = callNative(
      () =>
        new Pipeline(options, (raw) => {
          const event = toEvent(raw);
          if (event) onEvent(event);
        }),
    );
  }

  start(): void {
    callNative(() => {
      this.#pipeline.start();
    });
  }

  /** Stops the native threads and closes the socket; waits at most about a second (an SRT connect in flight). */
  stop(): void {
    this.#pipeline.stop();
  }

  requestKeyframe(): void {
    this.#pipeline.requestKeyframe();
  }

  setBitrate(kbps: number): void {
    callNative(() => {
      this.#pipeline.setBitrate(kbps);
    });
  }

  setMaxFps(fps: number): void {
    callNative(() => {
      this.#pipeline.setMaxFps(fps);
    });
  }

  /**
   * Sends one verified cloudphone.control Message with an input body from a viewer (a positive integer, its
   * own for the pipeline's life) to the phone, at once and from this thread; throws InputError when refused.
   */
  sendInput(viewer: number, message: Uint8Array): void {
    callNative(() => {
      this.#pipeline.sendInput(viewer, message);
    });
  }

  /** The viewer left or lost control: every finger and key it holds down goes up on the phone. */
  releaseInput(viewer: number): void {
    callNative(() => {
      this.#pipeline.releaseInput(viewer);
    });
  }

  stats(): PipelineStats {
    return this.#pipeline.stats();
  }

  /**
   * Every encoded picture, on the JavaScript thread, through a bounded queue (8): a listener that falls
   * behind loses pictures up to the next keyframe, never delays the other sinks. Set once, before start().
   */
  onAccessUnit(listener: (unit: AccessUnit) => void): void {
    callNative(() => {
      this.#pipeline.onAccessUnit(listener);
    });
  }

  /** SPS and PPS of the current encoder in Annex-B, empty before the first surface. */
  parameterSets(): Buffer {
    return this.#pipeline.parameterSets();
  }
}
