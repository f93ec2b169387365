// Renders the sidecar's config file from a stream, the pod's overrides and the mount paths the injector
// chose for Secrets. The result is validated against schemas/json/sidecar-config.json.

import type { CloudPhoneStream, SidecarConfig } from '../../../generated/ts/api-types.ts';
import type { SchemaValidator } from '../../../schemas/runtime/validator.ts';
import { API_VERSION, CONTROL_SOCKET, SHARED_MOUNT_PATH } from '../labels.ts';
import type { InjectionSettings } from './injection-settings.ts';
import type { RecordingVolume } from './recording-volume.ts';
import type { SecretMounts } from './secret-mounts.ts';

/** The per-pod overrides a cloudphone.io/overrides annotation may carry. */
export interface PodOverrides {
  video?: Record<string, unknown>;
  input?: Record<string, unknown>;
}
const OVERRIDABLE = new Set(['video', 'input']);

export class OverrideError extends Error {
  override name = 'OverrideError';
}

/** Parses the annotation's JSON; refuses anything but an object of video and input settings. */
export function parseOverrides(annotation: string | undefined): PodOverrides {
  if (annotation === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(annotation);
  } catch {
    throw new OverrideError('is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new OverrideError('must be a JSON object such as {"video":{"fps":60}}');
  }
  for (const [key, value] of Object.entries(parsed)) {
    if (!OVERRIDABLE.has(key)) throw new OverrideError(`${key}: cannot be overridden per pod (only video and input)`);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new OverrideError(`${key}: must be an object`);
    }
  }
  return parsed as PodOverrides;
}

/** Objects merge key by key; anything else is replaced. */
function merge(base: unknown, override: unknown): unknown {
  if (
    base === null ||
    override === null ||
    typeof base !== 'object' ||
    typeof override !== 'object' ||
    Array.isArray(base) ||
    Array.isArray(override)
  ) {
    return override === undefined ? base : override;
  }
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(override)) out[key] = merge(out[key], value);
  return out;
}

export function renderSidecarConfig(
  stream: CloudPhoneStream,
  overrides: PodOverrides,
  secrets: SecretMounts,
  settings: InjectionSettings,
  validator: SchemaValidator,
  phoneUids: number[],
  recording: RecordingVolume | undefined,
): SidecarConfig {
  const spec = stream.spec;
  const config: Record<string, unknown> = {
    apiVersion: API_VERSION,
    kind: 'SidecarConfig',
    stream: {
      namespace: stream.metadata?.namespace ?? '',
      name: stream.metadata?.name ?? '',
      generation: stream.metadata?.generation ?? 0,
    },
    shared: { dir: SHARED_MOUNT_PATH, socket: CONTROL_SOCKET, phoneUids },
    video: merge(spec.video ?? {}, overrides.video),
    input: merge(spec.input ?? {}, overrides.input),
    metrics: { port: settings.metricsPort },
  };
  if (spec.srt) {
    const { passphraseSecretRef: _passphrase, ...srt } = spec.srt;
    config.srt = { ...srt, ...(secrets.srtPassphrase ? { passphraseFile: secrets.srtPassphrase } : {}) };
  }
  if (spec.rtmp && secrets.rtmpStreamKey) {
    config.rtmp = { url: spec.rtmp.url, streamKeyFile: secrets.rtmpStreamKey };
  }
  if (recording) config.recording = recording.config;
  if (spec.webrtc) {
    const webrtc: Record<string, unknown> = {};
    const whep = spec.webrtc.whep;
    if (whep?.enabled !== false && whep && secrets.whepTokens) {
      webrtc.whep = {
        port: whep.port,
        maxViewers: whep.maxViewers,
        viewTokenFile: secrets.whepTokens.view,
        controlTokenFile: secrets.whepTokens.control,
        ...(secrets.whepTls ? { tlsCertFile: secrets.whepTls.cert, tlsKeyFile: secrets.whepTls.key } : {}),
      };
    }
    if (spec.webrtc.whip) {
      webrtc.whip = {
        url: spec.webrtc.whip.url,
        ...(secrets.whipToken ? { tokenFile: secrets.whipToken } : {}),
      };
    }
    if (spec.webrtc.iceServers) {
      webrtc.iceServers = spec.webrtc.iceServers.map((server, i) => ({
        urls: server.urls,
        ...(server.username !== undefined ? { username: server.username } : {}),
        ...(secrets.turnCredentials[i] ? { credentialFile: secrets.turnCredentials[i] } : {}),
        ...(secrets.turnRestSecrets[i] ? { restAuthSecretFile: secrets.turnRestSecrets[i] } : {}),
        ...(server.credentialTtlSeconds !== undefined ? { credentialTtlSeconds: server.credentialTtlSeconds } : {}),
      }));
    }
    if (spec.webrtc.udpPort !== undefined) webrtc.udpPort = spec.webrtc.udpPort;
    if (spec.webrtc.iceTcp !== undefined) webrtc.iceTcp = spec.webrtc.iceTcp;
    config.webrtc = webrtc;
  }
  if (settings.report && secrets.reportToken && secrets.reportCaFile) {
    config.report = {
      url: settings.report.url,
      tokenFile: secrets.reportToken,
      caFile: secrets.reportCaFile,
      intervalSeconds: settings.report.intervalSeconds,
    };
  }
  return validator.parse('SidecarConfig', config);
}
