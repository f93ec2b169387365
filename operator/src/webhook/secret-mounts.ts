// The Secret volumes the sidecar needs, and where their keys appear as files. Secret values never enter the
// pod spec or the config: only the files' paths do.

import type { V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import { REPORT_TOKEN_AUDIENCE } from '../labels.ts';

const SECRETS_DIR = '/var/run/secrets/cloudphone';

export interface SecretMounts {
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
  srtPassphrase?: string;
  rtmpStreamKey?: string;
  whepTokens?: { view: string; control: string };
  whepTls?: { cert: string; key: string };
  whipToken?: string;
  turnCredentials: (string | undefined)[];
  /** Per ICE server: the TURN REST shared secret's file, when it uses one. */
  turnRestSecrets: (string | undefined)[];
  reportToken?: string;
  /** The CA bundle the sidecar trusts for its reports (a ConfigMap's file, kept current by the kubelet). */
  reportCaFile?: string;
}

/** reportCaConfigMap: the ConfigMap holding the CA bundle for reports; undefined: the sidecar does not report. */
export function secretMounts(stream: CloudPhoneStream, reportCaConfigMap: string | undefined): SecretMounts {
  const out: SecretMounts = { volumes: [], mounts: [], turnCredentials: [], turnRestSecrets: [] };
  const add = (name: string, secretName: string, items: { key: string; path: string }[]): string => {
    const dir = `${SECRETS_DIR}/${name.replace(/^cloudphone-/, '')}`;
    out.volumes.push({ name, secret: { secretName, items, defaultMode: 0o444 } });
    out.mounts.push({ name, mountPath: dir, readOnly: true });
    return dir;
  };
  const spec = stream.spec;
  if (spec.srt?.passphraseSecretRef) {
    const ref = spec.srt.passphraseSecretRef;
    out.srtPassphrase = `${add('cloudphone-srt-passphrase', ref.name, [{ key: ref.key, path: 'passphrase' }])}/passphrase`;
  }
  if (spec.rtmp) {
    const ref = spec.rtmp.streamKeySecretRef;
    out.rtmpStreamKey = `${add('cloudphone-rtmp-stream-key', ref.name, [{ key: ref.key, path: 'stream-key' }])}/stream-key`;
  }
  const whep = spec.webrtc?.whep;
  if (whep && whep.enabled !== false && whep.authSecretRef) {
    const dir = add('cloudphone-whep-tokens', whep.authSecretRef.name, [
      { key: 'view', path: 'view' },
      { key: 'control', path: 'control' },
    ]);
    out.whepTokens = { view: `${dir}/view`, control: `${dir}/control` };
    if (whep.tlsSecretRef) {
      const tls = add('cloudphone-whep-tls', whep.tlsSecretRef.name, [
        { key: 'tls.crt', path: 'tls.crt' },
        { key: 'tls.key', path: 'tls.key' },
      ]);
      out.whepTls = { cert: `${tls}/tls.crt`, key: `${tls}/tls.key` };
    }
  }
  const whipRef = spec.webrtc?.whip?.tokenSecretRef;
  if (whipRef)
    out.whipToken = `${add('cloudphone-whip-token', whipRef.name, [{ key: whipRef.key, path: 'token' }])}/token`;
  (spec.webrtc?.iceServers ?? []).forEach((server, i) => {
    const ref = server.credentialSecretRef;
    const rest = server.restAuthSecretRef;
    // The schema allows one or the other per server, so one volume name per server is enough.
    out.turnCredentials.push(
      ref
        ? `${add(`cloudphone-turn-${String(i)}`, ref.name, [{ key: ref.key, path: 'credential' }])}/credential`
        : undefined,
    );
    out.turnRestSecrets.push(
      rest
        ? `${add(`cloudphone-turn-${String(i)}`, rest.name, [{ key: rest.key, path: 'rest-secret' }])}/rest-secret`
        : undefined,
    );
  });
  if (reportCaConfigMap !== undefined) {
    const name = 'cloudphone-report-token';
    const dir = `${SECRETS_DIR}/report`;
    out.volumes.push({
      name,
      projected: {
        defaultMode: 0o444,
        sources: [{ serviceAccountToken: { audience: REPORT_TOKEN_AUDIENCE, expirationSeconds: 3600, path: 'token' } }],
      },
    });
    out.mounts.push({ name, mountPath: dir, readOnly: true });
    out.reportToken = `${dir}/token`;
    // Optional: the pod starts even if the leader has not published it yet; the kubelet fills it in when it is.
    out.volumes.push({
      name: 'cloudphone-operator-ca',
      configMap: { name: reportCaConfigMap, items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true },
    });
    out.mounts.push({ name: 'cloudphone-operator-ca', mountPath: `${SECRETS_DIR}/operator-ca`, readOnly: true });
    out.reportCaFile = `${SECRETS_DIR}/operator-ca/ca.crt`;
  }
  return out;
}
