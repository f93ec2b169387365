// Rules for cloudphone.io resources that a CRD schema cannot express: sizes compared as quantities (a stream's
// recording), and rules that look at other objects of the same namespace: a stream's selector does not overlap another's, a pool's stream exists and would select the
// pool's phones, a claim's pool exists. Secrets are not looked at here: the webhook answers anyone who may create
// a stream, and must not tell them what a Secret holds (the reconciler's ResolvedRefs condition checks them).

import type { CloudPhoneClaim, CloudPhonePool, CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import { selectorMatches, selectorsOverlap } from './label-selector.ts';
import { recordingProblems } from './recording-volume.ts';

/** What the rules may look up, in the namespace of the object under review. */
export interface ValidationLookups {
  streams(): CloudPhoneStream[];
  pools(): CloudPhonePool[];
}

export interface Refusal {
  field: string;
  message: string;
}

export function validateStream(stream: CloudPhoneStream, lookups: ValidationLookups): Refusal[] {
  const refusals: Refusal[] = recordingProblems(stream).map(([field, message]) => ({ field, message }));
  const name = stream.metadata?.name;
  for (const other of lookups.streams()) {
    if (other.metadata?.name === name || other.metadata?.deletionTimestamp) continue;
    if (selectorsOverlap(stream.spec.selector, other.spec.selector)) {
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
