// mediamtx (built from its Go module by test/cluster/build-tools.sh) as the media server a sidecar pushes to
// with WHIP or RTMP: loopback only, WebRTC, RTSP (TCP) and RTMP on free ports, everything else off. One user may
// publish over WHIP, with the bearer token `cloudphone:<password>` (mediamtx reads user:pass from a Bearer
// header). Over RTMP anyone may publish to one path, rtmpPublishPath, as a live service takes a stream key as
// the last part of the path: any other path is refused. Anyone may read. What it received is read back over RTSP
// by ffmpeg and the stamps decoded.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor, waitUntil } from '../cluster/wait-for.ts';
import { freeTcpPort, freeUdpPort, readStamps, stopChild, tempDir, type Stamp } from './media-peers.ts';

/** A path as mediamtx's API lists it (the fields the tests read). */
export interface ServerPath {
  name: string;
  ready: boolean;
  source: { type: string; id: string } | null;
  tracks: string[];
  bytesReceived: number;
}

const MEDIAMTX = fileURLToPath(new URL('../../.cache/bin/mediamtx', import.meta.url));

/** The version test/cluster/build-tools.sh builds, as pinned in versions.env. */
export const MEDIAMTX_VERSION =
  /^MEDIAMTX_VERSION=(\S+)$/m.exec(readFileSync(new URL('../cluster/versions.env', import.meta.url), 'utf8'))?.[1] ??
  'unknown';

export class MediaServer {
  readonly publisherPassword: string;
  readonly webrtcPort: number;
  readonly rtspPort: number;
  readonly apiPort: number;
  readonly rtmpPort: number;
  readonly rtmpsPort: number;
  readonly #rtmpPublishPath: string;
  readonly #rtmpsCertificate: { certFile: string; keyFile: string } | undefined;
  readonly #udpPort: number;
  /** The address every port listens on: loopback, or the real node's bridge for phones in pods. */
  readonly host: string;
  readonly #dir: { path: string; remove: () => void };
  readonly log: string[] = [];
  #child: ChildProcess | undefined;

  private constructor(
    ports: { webrtc: number; rtsp: number; api: number; udp: number; rtmp: number; rtmps: number },
    password: string,
    host: string,
    rtmpPublishPath: string,
    rtmpsCertificate: { certFile: string; keyFile: string } | undefined,
  ) {
    this.host = host;
    this.rtmpPort = ports.rtmp;
    this.rtmpsPort = ports.rtmps;
    this.#rtmpPublishPath = rtmpPublishPath;
    this.#rtmpsCertificate = rtmpsCertificate;
    this.webrtcPort = ports.webrtc;
    this.rtspPort = ports.rtsp;
    this.apiPort = ports.api;
    this.#udpPort = ports.udp;
    this.publisherPassword = password;
    this.#dir = tempDir('cloudphone-mediamtx-');
  }

  static async start(
    password = 'whip-secret-0123456789',
    host = '127.0.0.1',
    rtmpPublishPath = 'live/rtmp-stream-key-0123',
    /** Also RTMPS, with this certificate (PEM files). */
    rtmpsCertificate?: { certFile: string; keyFile: string },
  ): Promise<MediaServer> {
    const server = new MediaServer(
      {
        webrtc: await freeTcpPort(),
        rtsp: await freeTcpPort(),
        api: await freeTcpPort(),
        udp: await freeUdpPort(),
        rtmp: await freeTcpPort(),
        rtmps: await freeTcpPort(),
      },
      password,
      host,
      rtmpPublishPath,
      rtmpsCertificate,
    );
    await server.startProcess();
    return server;
  }

  /** The WHIP endpoint of a path. */
  whipUrl(path: string): string {
    return `http://${this.host}:${String(this.webrtcPort)}/${path}/whip`;
  }

  /** The RTMP ingest URL of an application (the part before the stream key). */
  rtmpUrl(application: string): string {
    return `rtmp://${this.host}:${String(this.rtmpPort)}/${application}`;
  }

  /** The RTMPS ingest URL of an application (started with a certificate). */
  rtmpsUrl(application: string): string {
    return `rtmps://${this.host}:${String(this.rtmpsPort)}/${application}`;
  }

  /** The token a publisher presents. */
  get publisherToken(): string {
    return `cloudphone:${this.publisherPassword}`;
  }

  /** (Re)starts the process with the same ports and config; resolves when its WebRTC port answers. */
  async startProcess(): Promise<void> {
    const config = join(this.#dir.path, 'mediamtx.yml');
    writeFileSync(
      config,
      [
        'logLevel: info',
        'logDestinations: [stdout]',
        'api: yes',
        `apiAddress: 127.0.0.1:${String(this.apiPort)}`,
        'metrics: no',
        'playback: no',
        'rtmp: yes',
        `rtmpAddress: ${this.host}:${String(this.rtmpPort)}`,
        ...(this.#rtmpsCertificate
          ? [
              'rtmpEncryption: "optional"',
              `rtmpsAddress: ${this.host}:${String(this.rtmpsPort)}`,
              `rtmpServerCert: ${this.#rtmpsCertificate.certFile}`,
              `rtmpServerKey: ${this.#rtmpsCertificate.keyFile}`,
            ]
          : ['rtmpEncryption: "no"']),
        'hls: no',
        'srt: no',
        'rtsp: yes',
        'rtspTransports: [tcp]',
        `rtspAddress: ${this.host}:${String(this.rtspPort)}`,
        'webrtc: yes',
        `webrtcAddress: ${this.host}:${String(this.webrtcPort)}`,
        `webrtcLocalUDPAddress: ${this.host}:${String(this.#udpPort)}`,
        'webrtcIPsFromInterfaces: no',
        `webrtcAdditionalHosts: [${this.host}]`,
        'authMethod: internal',
        'authInternalUsers:',
        '- user: cloudphone',
        `  pass: ${this.publisherPassword}`,
        '  permissions: [{action: publish}]',
        '- user: any',
        `  permissions: [{action: read}, {action: api}, {action: publish, path: ${JSON.stringify(this.#rtmpPublishPath)}}]`,
        'paths:',
        '  all_others:',
        '',
      ].join('\n'),
    );
    const child = spawn(MEDIAMTX, [config], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const keep = (chunk: Buffer): void => {
      this.log.push(...chunk.toString().split('\n').filter(Boolean));
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`mediamtx exited: ${this.log.slice(-5).join(' | ')}`);
      try {
        await fetch(`http://${this.host}:${String(this.webrtcPort)}/`);
        return;
      } catch {
        if (Date.now() > deadline) throw new Error('mediamtx did not start listening in 10 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** What the server's API says about a path: undefined when it has none by that name. */
  async path(name: string): Promise<ServerPath | undefined> {
    const response = await fetch(`http://127.0.0.1:${String(this.apiPort)}/v3/paths/list`);
    const list = (await response.json()) as { items: ServerPath[] };
    return list.items.find((item) => item.name === name);
  }

  /**
   * Waits for a path to be ready, then reads it back over RTSP until count frames have decoded: their frame
   * numbers (null: unreadable).
   */
  async readBack(path: string, count: number, width: number, height: number): Promise<(number | null)[]> {
    await waitFor(`${path} to be ready on the server`, async () => ((await this.path(path))?.ready ? true : undefined));
    const reader = new RtspReader(`rtsp://${this.host}:${String(this.rtspPort)}/${path}`, width, height);
    try {
      await waitUntil(
        `${String(count)} frames read back from the media server`,
        () => reader.stamps.length >= count,
        30_000,
      );
    } finally {
      await reader.stop();
    }
    return reader.stamps.map((stamp) => stamp.frame);
  }

  /** Ends the process as an operator's restart or a crash would (SIGKILL: no goodbye to its peers). */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child) await stopChild(child, 'SIGKILL');
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child) await stopChild(child);
    this.#dir.remove();
  }
}

/** ffmpeg reading a path back from the media server over RTSP, decoded to grey frames, stamps read back. */
export class RtspReader {
  readonly stamps: Stamp[] = [];
  readonly #ffmpeg: ChildProcess;
  readonly #reader: ChildProcess;

  constructor(url: string, width: number, height: number) {
    this.#ffmpeg = spawn(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-fflags', 'nobuffer', '-flags', 'low_delay']
        .concat(['-i', url, '-fps_mode', 'passthrough', '-vf', `scale=${String(width)}:${String(height)}`])
        .concat(['-f', 'rawvideo', '-pix_fmt', 'gray', '-']),
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    this.#reader = readStamps(this.#ffmpeg, width, height, this.stamps);
  }

  async stop(): Promise<void> {
    await stopChild(this.#ffmpeg);
    await stopChild(this.#reader);
  }
}
