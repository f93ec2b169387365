import { describe, expect, it } from 'vitest';
import type { CloudPhoneClaim, CloudPhonePool, CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import {
  validateClaim,
  validatePool,
  validateStream,
  type ValidationLookups,
} from '../../../operator/src/webhook/resource-validator.ts';

function lookups(streams: CloudPhoneStream[] = [], pools: CloudPhonePool[] = []): ValidationLookups {
  return {
    streams: () => streams,
    pools: () => pools,
  };
}

const stream = (name: string, spec: Partial<CloudPhoneStream['spec']> = {}): CloudPhoneStream => ({
  metadata: { name, namespace: 'n' },
  spec: {
    selector: { matchLabels: { app: 'phone' } },
    phoneContainer: 'android',
    webrtc: { whep: { enabled: true, authSecretRef: { name: 'tokens' } } },
    ...spec,
  },
});

describe('validateStream', () => {
  it('accepts a stream without looking at any Secret: the reconciler checks them', () => {
    // There is no Secret lookup to give: a stream naming Secrets that do not exist is admitted.
    expect(validateStream(stream('s'), lookups())).toEqual([]);
  });

  it('refuses a selector that overlaps another stream, but not its own previous version', () => {
    const other = stream('other', { selector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] } });
    expect(validateStream(stream('s'), lookups([other]))).toEqual([
      {
        field: 'spec.selector',
        message: 'overlaps the selector of CloudPhoneStream other: a pod can carry only one sidecar',
      },
    ]);
    expect(validateStream(stream('s'), lookups([stream('s')]))).toEqual([]);
  });

  it("refuses a recording retention too small to hold segments, or larger than its emptyDir's sizeLimit", () => {
    const recording = (maxSize: string, sizeLimit?: string): Partial<CloudPhoneStream['spec']> => ({
      recording: {
        volume: { emptyDir: sizeLimit === undefined ? {} : { sizeLimit } },
        retention: { maxSize },
      },
    });
    expect(validateStream(stream('s', recording('16Mi', '16Mi')), lookups())).toEqual([]);
    expect(validateStream(stream('s', recording('10Gi')), lookups())).toEqual([]);
    expect(validateStream(stream('s', recording('10M')), lookups())).toEqual([
      { field: 'spec.recording.retention.maxSize', message: 'must be at least 16Mi: less holds too few segments' },
    ]);
    expect(validateStream(stream('s', recording('2Gi', '1Gi')), lookups())).toEqual([
      {
        field: 'spec.recording.volume.emptyDir.sizeLimit',
        message:
          'is smaller than retention.maxSize (2Gi): the volume would fill (or the kubelet evict the pod) before retention makes room',
      },
    ]);
    // Quantities are compared as sizes, not as text.
    expect(validateStream(stream('s', recording('1000Mi', '1G')), lookups())).toHaveLength(1);
    expect(validateStream(stream('s', recording('900Mi', '1G')), lookups())).toEqual([]);
  });
});

describe('validatePool and validateClaim', () => {
  const pool = (labels: Record<string, string>, container = 'android'): CloudPhonePool => ({
    metadata: { name: 'p', namespace: 'n' },
    spec: {
      streamRef: { name: 's' },
      template: { metadata: { labels }, spec: { containers: [{ name: container }] } },
    },
  });

  it('requires the pool stream to exist and to select the pool template', () => {
    expect(validatePool(pool({ app: 'phone' }), lookups([stream('s')]))).toEqual([]);
    expect(validatePool(pool({ app: 'phone' }), lookups())).toEqual([
      { field: 'spec.streamRef.name', message: 'CloudPhoneStream s does not exist in this namespace' },
    ]);
    expect(validatePool(pool({ app: 'web' }, 'phone'), lookups([stream('s')])).map((r) => r.field)).toEqual([
      'spec.template.spec.containers',
      'spec.template.metadata.labels',
    ]);
  });

  it('requires the claim pool to exist', () => {
    const claim: CloudPhoneClaim = { metadata: { name: 'c' }, spec: { poolRef: { name: 'p' } } };
    expect(validateClaim(claim, lookups([], [pool({})]))).toEqual([]);
    expect(validateClaim(claim, lookups())[0]?.field).toBe('spec.poolRef.name');
  });
});
