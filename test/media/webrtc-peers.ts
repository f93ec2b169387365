// Real WebRTC peers for the media tests: werift (an independent TypeScript WebRTC stack) as a WHEP viewer,
// its H.264 reassembled from RTP and decoded by the ffmpeg CLI, stamps read back by cloudphone-stamp-reader.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { Builder, ByteBuffer } from 'flatbuffers';
import { H264RtpPayload, RTCPeerConnection, RTCRtpCodecParameters, type RTCDataChannel, type RtpPacket } from 'werift';
import { Body, Message } from '../../generated/ts/fbs/viewer_generated.ts';
import { Key, KeyAction, Touch, TouchAction } from '../../generated/ts/fbs/input_generated.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { waitFor } from '../cluster/wait-for.ts';
import { loadSidecarConfig } from '../../sidecar/src/config.ts';
import { Sidecar } from '../../sidecar/src/sidecar.ts';
import { readMetric, readStamps, sidecarConfig, Simulator, stopChild, tempDir, type Stamp } from './media-peers.ts';

export const VIEWER_TOKEN = 'view-token-0123456789abcdef';
export const CONTROL_TOKEN = 'control-token-0123456789abcdef';

export interface WhepPhone {
  /** http://127.0.0.1:port of the WHEP endpoint and the player page. */
  base: string;
  sidecar: Sidecar;
  simulator: Simulator;
  /** The folder of the token files. */
  tokens: string;
  /** A sample of its /metrics, named with its labels (`name{reason="role"}`); 0 when absent. */
  metric(name: string): Promise<number>;
  /** Stops what was started, in reverse order. */
  stop(): Promise<void>;
}

export interface WhepPhoneOptions {
  width: number;
  height: number;
  fps?: number;
  /** More whep settings; {tokens} stands for the folder the token and credential files are in. */
  whep?: Record<string, unknown>;
  /** More webrtc settings; {tokens} as for whep. */
  webrtc?: Record<string, unknown>;
  /** More files for that folder (name -> content), written before the sidecar starts. */
  files?: Record<string, string>;
  /** The sidecar config's input section. */
  input?: Record<string, unknown>;
  /** Serve WHEP (default true). */
  serveWhep?: boolean;
  whipBackoff?: { initialMs: number; maxMs: number };
  bitrate?: { targetKbps: number; minKbps: number; maxKbps: number };
  /** video.keyframeIntervalSeconds (the config's default, 2, when unset). */
  keyframeIntervalSeconds?: number;
}

/**
 * The simulator and an in-process sidecar serving WHEP on a free loopback port, with the view and control
 * tokens (and a TURN credential) in files, as a Secret volume would hold them.
 */
export async function startWhepPhone(options: WhepPhoneOptions): Promise<WhepPhone> {
  const shared = tempDir('cloudphone-shared-');
  const tokens = join(shared.path, 'tokens');
  mkdirSync(tokens);
  writeFileSync(join(tokens, 'view'), `${VIEWER_TOKEN}\n`);
  writeFileSync(join(tokens, 'control'), CONTROL_TOKEN);
  writeFileSync(join(tokens, 'turn'), 'turn-secret');
  for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(join(tokens, name), content);
  const inTokens = (settings: Record<string, unknown> | undefined): Record<string, unknown> =>
    JSON.parse(JSON.stringify(settings ?? {}).replaceAll('{tokens}', tokens)) as Record<string, unknown>;
  const whep = {
    viewTokenFile: join(tokens, 'view'),
    controlTokenFile: join(tokens, 'control'),
    ...inTokens(options.whep),
  };
  const config = sidecarConfig({
    sharedDir: shared.path,
    video: {
      fps: options.fps ?? 30,
      bitrate: options.bitrate ?? { targetKbps: 1500, minKbps: 300, maxKbps: 3000 },
      ...(options.keyframeIntervalSeconds === undefined
        ? {}
        : { keyframeIntervalSeconds: options.keyframeIntervalSeconds }),
    },
    webrtc: {
      ...(options.serveWhep === false ? {} : { whep }),
      ...inTokens(options.webrtc),
    },
    input: options.input,
  });
  const settings = loadSidecarConfig(JSON.stringify(config), { namespace: 'test', pod: 'phone-0' });
  const sidecar = new Sidecar(settings, pino({ level: 'silent' }), {
    metricsHost: '127.0.0.1',
    metricsPort: 0,
    viewerHost: '127.0.0.1',
    viewerPort: 0,
    whipBackoff: options.whipBackoff,
  });
  await sidecar.start();
  const simulator = new Simulator({
    dir: shared.path,
    width: options.width,
    height: options.height,
    fps: options.fps ?? 30,
  });
  const stop = async (): Promise<void> => {
    await simulator.stop();
    await sidecar.stop();
    shared.remove();
  };
  try {
    await waitFor('the phone to connect', () => Promise.resolve(sidecar.ready() ? true : undefined), 15_000);
  } catch (error) {
    await stop();
    throw error;
  }
  const metric = async (name: string): Promise<number> => (await readMetric(sidecar.metricsPort, name)) ?? 0;
  const scheme = 'tlsCertFile' in whep ? 'https' : 'http';
  return { base: `${scheme}://127.0.0.1:${String(sidecar.viewerPort)}`, sidecar, simulator, tokens, metric, stop };
}

export async function whepRequest(
  base: string,
  method: string,
  path: string,
  options: { token?: string; type?: string; body?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  if (options.type) headers['Content-Type'] = options.type;
  return fetch(`${base}${path}`, { method, headers, body: options.body });
}

/** The H.264 the viewer received, decoded by ffmpeg to grey frames, stamps read back. */
class StampDecoder {
  readonly stamps: Stamp[] = [];
  readonly #ffmpeg: ChildProcess;
  readonly #reader: ChildProcess;

  constructor(width: number, height: number) {
    this.#ffmpeg = spawn(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-flags', 'low_delay', '-probesize', '32768']
        .concat(['-analyzeduration', '0', '-f', 'h264', '-i', '-'])
        .concat(['-fps_mode', 'passthrough', '-vf', `scale=${String(width)}:${String(height)}`])
        .concat(['-f', 'rawvideo', '-pix_fmt', 'gray', '-']),
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    this.#ffmpeg.stdin?.on('error', () => undefined);
    this.#reader = readStamps(this.#ffmpeg, width, height, this.stamps);
  }

  write(annexB: Buffer): void {
    this.#ffmpeg.stdin?.write(annexB);
  }

  /** Ends the input, so ffmpeg decodes what it still holds (its parser keeps the last picture until then). */
  async finish(): Promise<void> {
    const exited = (child: ChildProcess): Promise<unknown> =>
      child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit');
    this.#ffmpeg.stdin?.end();
    await Promise.race([
      Promise.all([exited(this.#ffmpeg), exited(this.#reader)]),
      new Promise((r) => setTimeout(r, 5000)),
    ]);
    await this.stop();
  }

  async stop(): Promise<void> {
    this.#ffmpeg.stdin?.end();
    await stopChild(this.#ffmpeg);
    await stopChild(this.#reader);
  }
}

/** Annex-B of one access unit's packets, in sequence order. */
function annexB(packets: RtpPacket[]): Buffer {
  const parts: Buffer[] = [];
  let fragment: Buffer | undefined;
  for (const packet of packets) {
    const payload = H264RtpPayload.deSerialize(packet.payload, fragment);
    fragment = payload.fragment;
    // werift types payload as always set, but leaves it unset until a fragmented NAL unit is whole.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    if (payload.payload && payload.payload.length > 0) parts.push(payload.payload);
  }
  return Buffer.concat(parts);
}

const SPS = 7;
// Packets held while waiting for a missing one (a NACK answer); past this the gap is given up on.
const REORDER_LIMIT = 600;

/**
 * A receiver's jitter buffer, reduced to what a test needs: packets by sequence number, an access unit handed
 * on once every packet up to its marker is here (so a retransmitted packet still counts), and after a gap that
 * never fills, a fresh start at the next access unit that carries an SPS (a keyframe).
 */
class AccessUnitBuffer {
  readonly #packets = new Map<number, RtpPacket>();
  #next: number | undefined;
  gapsGivenUp = 0;

  readonly #emit: (unit: Buffer, rtpTimestamp: number) => void;

  constructor(emit: (unit: Buffer, rtpTimestamp: number) => void) {
    this.#emit = emit;
  }

  push(packet: RtpPacket): void {
    this.#packets.set(packet.header.sequenceNumber, packet);
    this.#drain();
  }

  #drain(): void {
    for (;;) {
      this.#next ??= this.#keyframeStart();
      if (this.#next === undefined) return;
      const unit: RtpPacket[] = [];
      let seq = this.#next;
      let packet = this.#packets.get(seq);
      while (packet) {
        unit.push(packet);
        if (packet.header.marker) break;
        seq = (seq + 1) & 0xffff;
        packet = this.#packets.get(seq);
      }
      if (!packet?.header.marker) {
        if (this.#packets.size > REORDER_LIMIT) {
          this.gapsGivenUp++;
          this.#packets.clear();
          this.#next = undefined;
        }
        return;
      }
      for (const p of unit) this.#packets.delete(p.header.sequenceNumber);
      this.#next = (seq + 1) & 0xffff;
      this.#emit(annexB(unit), packet.header.timestamp);
    }
  }

  /** The first packet of the earliest buffered access unit that carries an SPS. */
  #keyframeStart(): number | undefined {
    let best: RtpPacket | undefined;
    for (const packet of this.#packets.values())
      if (((packet.payload[0] ?? 0) & 0x1f) === SPS && (!best || packet.header.timestamp < best.header.timestamp))
        best = packet;
    if (!best) return undefined;
    let start = best.header.sequenceNumber;
    for (;;) {
      const previous = this.#packets.get((start - 1) & 0xffff);
      if (previous?.header.timestamp !== best.header.timestamp) return start;
      start = (start - 1) & 0xffff;
    }
  }
}

/** ICE for a werift viewer: the servers a WHEP Link header named, and whether to use relays only. */
export interface WeriftIce {
  iceServers: { urls: string; username?: string; credential?: string }[];
  iceTransportPolicy?: 'all' | 'relay';
}

/** A werift PeerConnection that takes H.264 as a browser offers it (constrained baseline, level 3.1). */
export function h264Receiver(ice?: WeriftIce): RTCPeerConnection {
  return new RTCPeerConnection({
    ...ice,
    codecs: {
      video: [
        new RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90000,
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
          parameters: 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1',
        }),
      ],
    },
  });
}

/** A touch as the player sends it: a FlatBuffers cloudphone.viewer Message. */
export function touchMessage(action: TouchAction, x: number, y: number, pointer = 0): Buffer {
  const b = new Builder(64);
  const body = Touch.createTouch(b, action, pointer, x, y, 1);
  b.finish(Message.createMessage(b, Body.cloudphone_input_Touch, body), 'CPVW');
  return Buffer.from(b.asUint8Array());
}

export interface WeriftViewerOptions {
  base: string;
  token: string;
  /** Decode to this size and read stamps (the simulator's picture size). */
  width: number;
  height: number;
  dataChannel?: boolean;
  /** Also open the player's unordered "cloudphone-stats" channel. */
  statsChannel?: boolean;
  ice?: WeriftIce;
}

/** werift as a WHEP viewer: receives the stream, decodes it, and can send input on the data channel. */
export class WeriftViewer {
  readonly pc: RTCPeerConnection;
  readonly channel: RTCDataChannel | undefined;
  readonly statsChannel: RTCDataChannel | undefined;
  /** The body type of every message the sidecar sent, by channel. */
  readonly received: { input: Body[]; stats: Body[] } = { input: [], stats: [] };
  readonly decoder: StampDecoder;
  /** The RTP timestamps of the access units received whole, in order. */
  readonly rtpTimestamps: number[] = [];
  sessionUrl = '';
  readonly units: AccessUnitBuffer;
  #mediaSsrc: number | undefined;

  private constructor(options: WeriftViewerOptions) {
    this.pc = h264Receiver(options.ice);
    this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.channel = options.dataChannel === false ? undefined : this.pc.createDataChannel('cloudphone');
    this.statsChannel = options.statsChannel
      ? this.pc.createDataChannel('cloudphone-stats', { ordered: false, maxRetransmits: 0 })
      : undefined;
    for (const [channel, into] of [
      [this.channel, this.received.input],
      [this.statsChannel, this.received.stats],
    ] as const)
      channel?.onMessage.subscribe((data) => {
        if (typeof data !== 'string') into.push(Message.getRootAsMessage(new ByteBuffer(data)).bodyType());
      });
    this.decoder = new StampDecoder(options.width, options.height);
    this.units = new AccessUnitBuffer((unit, rtpTimestamp) => {
      this.rtpTimestamps.push(rtpTimestamp);
      this.decoder.write(unit);
    });
    this.pc.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((packet) => {
        this.#mediaSsrc = packet.header.ssrc;
        this.units.push(packet);
      });
    });
  }

  static async connect(options: WeriftViewerOptions): Promise<WeriftViewer> {
    const viewer = new WeriftViewer(options);
    await viewer.pc.setLocalDescription(await viewer.pc.createOffer());
    if (viewer.pc.iceGatheringState !== 'complete')
      await viewer.pc.iceGatheringStateChange.watch((state) => state === 'complete');
    const response = await whepRequest(options.base, 'POST', '/whep', {
      token: options.token,
      type: 'application/sdp',
      body: viewer.pc.localDescription?.sdp,
    });
    if (response.status !== 201) throw new Error(`WHEP POST: ${String(response.status)} ${await response.text()}`);
    viewer.sessionUrl = response.headers.get('Location') ?? '';
    await viewer.pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    return viewer;
  }

  /** Sends a touch as the player would. */
  sendTouch(action: TouchAction, x: number, y: number, pointer = 0): void {
    this.send(touchMessage(action, x, y, pointer));
  }

  /** Sends a key press or release (an Android key code). */
  sendKey(action: KeyAction, keycode: number): void {
    const b = new Builder(64);
    const body = Key.createKey(b, action, keycode, 0, 0);
    b.finish(Message.createMessage(b, Body.cloudphone_input_Key, body), 'CPVW');
    this.send(Buffer.from(b.asUint8Array()));
  }

  /** Sends an RTCP PLI for the video, as a browser whose decoder lost the picture does. */
  async sendPictureLoss(): Promise<void> {
    const receiver = this.pc.getTransceivers()[0]?.receiver;
    if (!receiver || this.#mediaSsrc === undefined) throw new Error('no video received yet');
    await receiver.sendRtcpPLI(this.#mediaSsrc);
  }

  send(bytes: Buffer): void {
    if (!this.channel) throw new Error('this viewer has no data channel');
    this.channel.send(bytes);
  }

  async close(): Promise<void> {
    await this.pc.close();
    await this.decoder.stop();
  }
}

export { Body, KeyAction, TouchAction };
