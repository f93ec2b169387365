// Rules for cloudphone.io resources that a CRD schema cannot express, because they look at other objects:
// the Secrets a stream names exist with the keys it needs, a stream's selector does not overlap another's,
// a pool's stream exists and would select the pool's phones, a claim's pool exists.

import type { CloudPhoneClaim, CloudPhonePool, CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import { selectorMatches, selectorsOverlap } from './label-selector.ts';

/** What the rules may look up, in the namespace of the object under review. */
export interface ValidationLookups {
  /** The Secret's data (values base64-encoded, as the API gives them), or undefined when it does not exist. */
  secretData(name: string): Promise<Record<string, string> | undefined>;
  streams(): CloudPhoneStream[];
  pools(): CloudPhonePool[];
}

export interface Refusal {
  field: string;
  message: string;
}

const SRT_PASSPHRASE = { min: 10, max: 79 };

async function requireKeys(
  lookups: ValidationLookups,
  field: string,
  secretName: string,
  keys: string[],
  refusals: Refusal[],
): Promise<Record<string, string> | undefined> {
  const data = await lookups.secretData(secretName);
  if (!data) {
    refusals.push({ field, message: `Secret ${secretName} does not exist in this namespace` });
    return undefined;
  }
  const missing = keys.filter((k) => !(k in data));
  if (missing.length > 0) {
    refusals.push({ field, message: `Secret ${secretName} has no key ${missing.map((k) => `"${k}"`).join(' or ')}` });
    return undefined;
  }
  return data;
}

export async function validateStream(stream: CloudPhoneStream, lookups: ValidationLookups): Promise<Refusal[]> {
  const refusals: Refusal[] = [];
  const spec = stream.spec;
  const whepRef = spec.webrtc?.whep?.authSecretRef;
  if (whepRef && spec.webrtc?.whep?.enabled !== false) {
    await requireKeys(lookups, 'spec.webrtc.whep.authSecretRef', whepRef.name, ['view', 'control'], refusals);
    const tlsRef = spec.webrtc?.whep?.tlsSecretRef;
    if (tlsRef)
      await requireKeys(lookups, 'spec.webrtc.whep.tlsSecretRef', tlsRef.name, ['tls.crt', 'tls.key'], refusals);
  }
  const srtRef = spec.srt?.passphraseSecretRef;
  if (srtRef) {
    const data = await requireKeys(lookups, 'spec.srt.passphraseSecretRef', srtRef.name, [srtRef.key], refusals);
    const length = data?.[srtRef.key] === undefined ? undefined : Buffer.from(data[srtRef.key] ?? '', 'base64').length;
    if (length !== undefined && (length < SRT_PASSPHRASE.min || length > SRT_PASSPHRASE.max)) {
      refusals.push({
        field: 'spec.srt.passphraseSecretRef',
        message: `the SRT passphrase in Secret ${srtRef.name} must be ${String(SRT_PASSPHRASE.min)} to ${String(SRT_PASSPHRASE.max)} characters, it has ${String(length)}`,
      });
    }
  }
  const whipRef = spec.webrtc?.whip?.tokenSecretRef;
  if (whipRef) await requireKeys(lookups, 'spec.webrtc.whip.tokenSecretRef', whipRef.name, [whipRef.key], refusals);
  for (const [i, server] of (spec.webrtc?.iceServers ?? []).entries()) {
    const ref = server.credentialSecretRef;
    if (ref) {
      await requireKeys(
        lookups,
        `spec.webrtc.iceServers[${String(i)}].credentialSecretRef`,
        ref.name,
        [ref.key],
        refusals,
      );
    }
  }
  const name = stream.metadata?.name;
  for (const other of lookups.streams()) {
    if (other.metadata?.name === name || other.metadata?.deletionTimestamp) continue;
    if (selectorsOverlap(spec.selector, other.spec.selector)) {
      refusals.push({
        field: 'spec.selector',
        message: `overlaps the selector of CloudPhoneStream ${other.metadata?.name ?? ''}: a pod can carry only one sidecar`,
      });
    }
  }
  return refusals;
}

export function validatePool(pool: CloudPhonePool, lookups: ValidationLookups): Refusal[] {
  const streamName = pool.spec.streamRef.name;
  const stream = lookups.streams().find((s) => s.metadata?.name === streamName);
  if (!stream) {
    return [
      { field: 'spec.streamRef.name', message: `CloudPhoneStream ${streamName} does not exist in this namespace` },
    ];
  }
  const refusals: Refusal[] = [];
  if (!pool.spec.template.spec.containers.some((c) => c.name === stream.spec.phoneContainer)) {
    refusals.push({
      field: 'spec.template.spec.containers',
      message: `has no container named "${stream.spec.phoneContainer}", the phoneContainer of CloudPhoneStream ${streamName}`,
    });
  }
  if (!selectorMatches(stream.spec.selector, pool.spec.template.metadata?.labels)) {
    refusals.push({
      field: 'spec.template.metadata.labels',
      message: `do not match the selector of CloudPhoneStream ${streamName}, so its phones would not be streamed`,
    });
  }
  return refusals;
}

export function validateClaim(claim: CloudPhoneClaim, lookups: ValidationLookups): Refusal[] {
  const poolName = claim.spec.poolRef.name;
  return lookups.pools().some((p) => p.metadata?.name === poolName)
    ? []
    : [{ field: 'spec.poolRef.name', message: `CloudPhonePool ${poolName} does not exist in this namespace` }];
}
