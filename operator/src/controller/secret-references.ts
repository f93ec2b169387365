// Whether the Secrets a stream names exist with the keys it needs: the stream's ResolvedRefs condition (the name
// Gateway API gives the same question). The reconciler asks, not the admission webhook: a stream may be applied
// before its Secrets (as GitOps tools do), and the webhook, which answers anyone who may create a stream, must not
// tell what a Secret holds. The condition never says more than Kubernetes says of a pod's missing Secret: whether
// it exists and which key is missing, never a value nor its length.

import type { CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import { RTMP_STREAM_KEY, SRT_PASSPHRASE_LENGTH as SRT_PASSPHRASE } from '../../../schemas/runtime/secret-values.ts';
import { Reason, type Verdict } from './conditions.ts';

/** Reads a Secret's data in the stream's namespace (values base64-encoded, as the API gives them). */
export type SecretReader = (name: string) => Promise<SecretLookup>;
export type SecretLookup =
  | { found: true; data: Record<string, string> }
  | { found: false }
  /** The operator may not read Secrets in this namespace (no RoleBinding there). */
  | { forbidden: true };

interface SecretRef {
  field: string;
  name: string;
  keys: string[];
  /** A check of the value (decoded), returning what is wrong, if anything. */
  check?: (value: string) => string | undefined;
}

/** The Secrets a stream's spec names, with the keys each must hold. */
export function secretRefs(stream: CloudPhoneStream): SecretRef[] {
  const spec = stream.spec;
  const refs: SecretRef[] = [];
  const whep = spec.webrtc?.whep;
  if (whep?.authSecretRef && whep.enabled !== false) {
    refs.push({ field: 'spec.webrtc.whep.authSecretRef', name: whep.authSecretRef.name, keys: ['view', 'control'] });
    if (whep.tlsSecretRef)
      refs.push({ field: 'spec.webrtc.whep.tlsSecretRef', name: whep.tlsSecretRef.name, keys: ['tls.crt', 'tls.key'] });
  }
  const srt = spec.srt?.passphraseSecretRef;
  if (srt) {
    refs.push({
      field: 'spec.srt.passphraseSecretRef',
      name: srt.name,
      keys: [srt.key],
      // SRT refuses a passphrase outside these lengths; the sidecar would fail to connect.
      check: (value) =>
        value.length < SRT_PASSPHRASE.min || value.length > SRT_PASSPHRASE.max
          ? `the SRT passphrase in key "${srt.key}" must be ${String(SRT_PASSPHRASE.min)} to ${String(SRT_PASSPHRASE.max)} characters`
          : undefined,
    });
  }
  const rtmp = spec.rtmp?.streamKeySecretRef;
  if (rtmp) {
    refs.push({
      field: 'spec.rtmp.streamKeySecretRef',
      name: rtmp.name,
      keys: [rtmp.key],
      check: (value) =>
        RTMP_STREAM_KEY.test(value.replace(/\r?\n$/, ''))
          ? undefined
          : `the RTMP stream key in key "${rtmp.key}" must be 1 to 512 printable ASCII characters without spaces`,
    });
  }
  const whip = spec.webrtc?.whip?.tokenSecretRef;
  if (whip) refs.push({ field: 'spec.webrtc.whip.tokenSecretRef', name: whip.name, keys: [whip.key] });
  for (const [i, server] of (spec.webrtc?.iceServers ?? []).entries()) {
    const ref = server.credentialSecretRef;
    if (ref)
      refs.push({ field: `spec.webrtc.iceServers[${String(i)}].credentialSecretRef`, name: ref.name, keys: [ref.key] });
    const rest = server.restAuthSecretRef;
    if (rest)
      refs.push({ field: `spec.webrtc.iceServers[${String(i)}].restAuthSecretRef`, name: rest.name, keys: [rest.key] });
  }
  return refs;
}

/** Looks up every Secret the stream names (each once) and says what is wrong, first problem per reference. */
export async function resolveSecretRefs(stream: CloudPhoneStream, read: SecretReader): Promise<Verdict> {
  const refs = secretRefs(stream);
  if (refs.length === 0) return { status: 'True', reason: Reason.NoSecretRefs, message: 'the stream names no Secret' };
  const lookups = new Map<string, Promise<SecretLookup>>();
  const problems: { reason: string; message: string }[] = [];
  for (const ref of refs) {
    let lookup = lookups.get(ref.name);
    if (!lookup) lookups.set(ref.name, (lookup = read(ref.name)));
    const secret = await lookup;
    if ('forbidden' in secret) {
      return {
        status: 'Unknown',
        reason: Reason.SecretsNotReadable,
        message:
          'the operator may not read Secrets in this namespace, so it cannot check them (list the namespace in ' +
          "the chart's rbac.secretNamespaces, or bind its secret-reader ClusterRole here); a missing Secret shows " +
          'on the pods as a FailedMount Event',
      };
    }
    if (!secret.found) {
      problems.push({ reason: Reason.SecretNotFound, message: `${ref.field}: Secret ${ref.name} does not exist` });
      continue;
    }
    const missing = ref.keys.filter((k) => !(k in secret.data));
    if (missing.length > 0) {
      problems.push({
        reason: Reason.SecretKeyMissing,
        message: `${ref.field}: Secret ${ref.name} has no key ${missing.map((k) => `"${k}"`).join(' or ')}`,
      });
      continue;
    }
    const key = ref.keys[0] ?? '';
    const wrong = ref.check?.(Buffer.from(secret.data[key] ?? '', 'base64').toString('utf8'));
    if (wrong) problems.push({ reason: Reason.InvalidSecret, message: `${ref.field}: ${wrong}` });
  }
  const first = problems[0];
  if (!first)
    return {
      status: 'True',
      reason: Reason.ResolvedRefs,
      message: `${String(lookups.size)} Secret${lookups.size === 1 ? '' : 's'} found with the keys the stream needs`,
    };
  return { status: 'False', reason: first.reason, message: problems.map((p) => p.message).join('; ') };
}
