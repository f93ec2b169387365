// Reads the sidecar's config (rendered by the operator's webhook into CLOUDPHONE_SIDECAR_CONFIG, or a file
// for local runs), validates it against schemas/json/sidecar-config.json with its defaults applied, reads
// the secret files it names, and turns it into the pipeline's options. Secrets never go into the config
// itself, and never into errors or logs.

import { readFileSync } from 'node:fs';
import type { SidecarConfig } from '../../generated/ts/api-types.ts';
import { SRT_PASSPHRASE_LENGTH } from '../../schemas/runtime/secret-values.ts';
import { SchemaValidator } from '../../schemas/runtime/validator.ts';
import type { PipelineOptions, RecordingOptions, RtmpOptions, SrtOptions } from './native.ts';
import { rtmpTarget } from './pipeline/rtmp-url.ts';
import { parseSrtUrl } from './pipeline/srt-url.ts';
import type { IceSettings } from './webrtc/ice-config.ts';
import type { ViewerRole } from './webrtc/viewer-tokens.ts';

export class SidecarConfigError extends Error {
  override name = 'SidecarConfigError';
}

export interface PodIdentity {
  namespace: string;
  pod: string;
}

export interface WhepSettings {
  port: number;
  tokenFiles: Record<ViewerRole, string>;
  maxViewers: number;
  /** HTTPS from these files; absent: plain HTTP (TLS at an ingress). */
  tls?: { certFile: string; keyFile: string };
}

export interface WhipSettings {
  /** The endpoint, placeholders expanded. */
  url: string;
  /** Read on every attempt, so a rotated Secret is picked up. */
  tokenFile?: string;
}

export interface WebRtcSettings {
  whep?: WhepSettings;
  whip?: WhipSettings;
  ice: IceSettings;
  /** Asked for, but this build's libdatachannel (libjuice) has no ICE-TCP: the sidecar says so at start. */
  iceTcpRequested: boolean;
}

export interface InputSettings {
  enabled: boolean;
  maxEventsPerSecond: number;
  backend: 'socket' | 'uinput';
}

export interface SidecarSettings {
  config: SidecarConfig;
  /** The pod this sidecar runs in (its reports name it). */
  identity: PodIdentity;
  input: InputSettings;
  pipeline: PipelineOptions;
  bitrate: { minKbps: number; targetKbps: number; maxKbps: number };
  metricsPort: number;
  webrtc?: WebRtcSettings;
}

let validator: SchemaValidator | undefined;

/** Replaces {namespace}, {pod} and {stream} as the config's url and streamId fields document. */
export function expandPlaceholders(template: string, identity: PodIdentity, stream: string): string {
  return template
    .replaceAll('{namespace}', identity.namespace)
    .replaceAll('{pod}', identity.pod)
    .replaceAll('{stream}', stream);
}

function readSecretFile(path: string, what: string): string {
  try {
    // Secret volumes end values with whatever the Secret held; a trailing newline is never meant.
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new SidecarConfigError(
      `cannot read the ${what} file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

function srtOptions(config: SidecarConfig, identity: PodIdentity): SrtOptions | undefined {
  const srt = config.srt;
  if (!srt) return undefined;
  const latencyMs = srt.latencyMs ?? 120;
  const keyLength = srt.keyLength ?? 16;
  const passphrase = srt.passphraseFile ? readSecretFile(srt.passphraseFile, 'SRT passphrase') : undefined;
  const { min, max } = SRT_PASSPHRASE_LENGTH;
  if (passphrase !== undefined && (passphrase.length < min || passphrase.length > max)) {
    throw new SidecarConfigError(`the SRT passphrase must be ${String(min)} to ${String(max)} characters`);
  }
  const streamId = srt.streamId ? expandPlaceholders(srt.streamId, identity, config.stream.name) : undefined;
  if (srt.mode === 'listener') {
    // The schema demands the passphrase here (and the addon refuses a listener without one); maxReceivers, when
    // unset, is the addon's default.
    const { maxReceivers } = srt;
    return { listener: true, host: '', port: srt.port ?? 0, latencyMs, passphrase, keyLength, streamId, maxReceivers };
  }
  const target = parseSrtUrl(expandPlaceholders(srt.url ?? '', identity, config.stream.name));
  return {
    listener: false,
    host: target.host,
    port: target.port,
    latencyMs: target.latencyMs ?? latencyMs,
    passphrase,
    keyLength,
    streamId: streamId ?? target.streamId,
  };
}

function rtmpOptions(config: SidecarConfig, identity: PodIdentity): RtmpOptions | undefined {
  const rtmp = config.rtmp;
  if (!rtmp) return undefined;
  const key = readSecretFile(rtmp.streamKeyFile, 'RTMP stream key');
  try {
    return rtmpTarget(expandPlaceholders(rtmp.url, identity, config.stream.name), key);
  } catch (error) {
    throw new SidecarConfigError((error as Error).message);
  }
}

function recordingOptions(config: SidecarConfig): RecordingOptions | undefined {
  const recording = config.recording;
  if (!recording) return undefined;
  return {
    directory: recording.directory,
    segmentSeconds: recording.segmentSeconds ?? 60,
    maxBytes: recording.maxBytes,
    maxAgeSeconds: recording.maxAgeSeconds ?? 0,
  };
}

function webrtcSettings(config: SidecarConfig, identity: PodIdentity): WebRtcSettings | undefined {
  const webrtc = config.webrtc;
  if (!webrtc) return undefined;
  const servers = (webrtc.iceServers ?? []).map((server) => ({
    urls: server.urls,
    username: server.username,
    credential: server.credentialFile ? readSecretFile(server.credentialFile, 'TURN credential') : undefined,
    restSecret: server.restAuthSecretFile
      ? readSecretFile(server.restAuthSecretFile, 'TURN REST shared secret')
      : undefined,
    credentialTtlSeconds: server.credentialTtlSeconds,
  }));
  const whep = webrtc.whep;
  const whip = webrtc.whip;
  return {
    whip: whip && {
      url: expandPlaceholders(whip.url, identity, config.stream.name),
      tokenFile: whip.tokenFile,
    },
    whep: whep && {
      port: whep.port ?? 8443,
      tokenFiles: { view: whep.viewTokenFile, control: whep.controlTokenFile },
      maxViewers: whep.maxViewers ?? 8,
      tls:
        whep.tlsCertFile !== undefined && whep.tlsKeyFile !== undefined
          ? { certFile: whep.tlsCertFile, keyFile: whep.tlsKeyFile }
          : undefined,
    },
    ice: { servers, udpPort: webrtc.udpPort },
    iceTcpRequested: webrtc.iceTcp ?? false,
  };
}

export function loadSidecarConfig(text: string, identity: PodIdentity): SidecarSettings {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new SidecarConfigError('the sidecar config is not valid JSON');
  }
  validator ??= new SchemaValidator();
  const config = validator.parse('SidecarConfig', document);
  if (config.report && config.report.caFile === undefined && config.report.ca === undefined)
    throw new SidecarConfigError("report needs caFile or ca: the CAs that sign the operator's certificate");
  const video = config.video;
  const bitrate = {
    minKbps: video.bitrate?.minKbps ?? 500,
    targetKbps: video.bitrate?.targetKbps ?? 4000,
    maxKbps: video.bitrate?.maxKbps ?? 8000,
  };
  const pipeline: PipelineOptions = {
    sharedDir: config.shared?.dir ?? '/run/cloudphone',
    socketName: config.shared?.socket ?? 'control.sock',
    maxFps: video.fps ?? 30,
    bitrateKbps: bitrate.targetKbps,
    keyframeIntervalSeconds: video.keyframeIntervalSeconds ?? 2,
    intraRefresh: video.intraRefresh ?? false,
    preset: 'ultrafast',
    encoder: video.encoder ?? 'auto',
    maxSize: video.maxSize ?? 2560,
    ...(config.shared?.phoneUids ? { phoneUids: config.shared.phoneUids } : {}),
    srt: srtOptions(config, identity),
    rtmp: rtmpOptions(config, identity),
    recording: recordingOptions(config),
  };
  const input: InputSettings = {
    enabled: config.input?.enabled ?? true,
    maxEventsPerSecond: config.input?.maxEventsPerSecond ?? 1500,
    backend: config.input?.backend ?? 'socket',
  };
  return {
    config,
    identity,
    input,
    pipeline,
    bitrate,
    metricsPort: config.metrics?.port ?? 9090,
    webrtc: webrtcSettings(config, identity),
  };
}
