import { describe, expect, it } from 'vitest';
import type { CloudPhoneClaim, CloudPhonePool, CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import {
  validateClaim,
  validatePool,
  validateStream,
  type ValidationLookups,
} from '../../../operator/src/webhook/resource-validator.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function lookups(
  secrets: Record<string, Record<string, string>>,
  streams: CloudPhoneStream[] = [],
  pools: CloudPhonePool[] = [],
): ValidationLookups {
  return {
    secretData: (name) => Promise.resolve(secrets[name]),
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
const tokens = { tokens: { view: b64('v'), control: b64('c') } };

describe('validateStream', () => {
  it('accepts a stream whose Secrets exist with their keys', async () => {
    expect(await validateStream(stream('s'), lookups(tokens))).toEqual([]);
  });

  it('names the field of a missing Secret, and of a Secret without the keys it needs', async () => {
    expect(await validateStream(stream('s'), lookups({}))).toEqual([
      { field: 'spec.webrtc.whep.authSecretRef', message: 'Secret tokens does not exist in this namespace' },
    ]);
    expect(await validateStream(stream('s'), lookups({ tokens: { view: b64('v') } }))).toEqual([
      { field: 'spec.webrtc.whep.authSecretRef', message: 'Secret tokens has no key "control"' },
    ]);
  });

  it('checks the SRT passphrase length libsrt accepts', async () => {
    const srt = stream('s', { srt: { url: 'srt://a:1', passphraseSecretRef: { name: 'srt', key: 'p' } } });
    expect(await validateStream(srt, lookups({ ...tokens, srt: { p: b64('0123456789') } }))).toEqual([]);
    const short = await validateStream(srt, lookups({ ...tokens, srt: { p: b64('short') } }));
    expect(short[0]?.field).toBe('spec.srt.passphraseSecretRef');
    expect(short[0]?.message).toContain('10 to 79 characters, it has 5');
  });

  it('checks the WHEP TLS Secret has a certificate and a key', async () => {
    const withTls = stream('s', {
      webrtc: { whep: { enabled: true, authSecretRef: { name: 'tokens' }, tlsSecretRef: { name: 'tls' } } },
    });
    expect(
      await validateStream(withTls, lookups({ ...tokens, tls: { 'tls.crt': b64('c'), 'tls.key': b64('k') } })),
    ).toEqual([]);
    expect(await validateStream(withTls, lookups({ ...tokens, tls: { 'tls.crt': b64('c') } }))).toEqual([
      { field: 'spec.webrtc.whep.tlsSecretRef', message: 'Secret tls has no key "tls.key"' },
    ]);
  });

  it('checks every ICE server credential Secret', async () => {
    const withTurn = stream('s', {
      webrtc: {
        whep: { enabled: true, authSecretRef: { name: 'tokens' } },
        iceServers: [{ urls: ['stun:a'] }, { urls: ['turn:b'], credentialSecretRef: { name: 'turn', key: 'cred' } }],
      },
    });
    expect((await validateStream(withTurn, lookups(tokens)))[0]?.field).toBe(
      'spec.webrtc.iceServers[1].credentialSecretRef',
    );
  });

  it('refuses a selector that overlaps another stream, but not its own previous version', async () => {
    const other = stream('other', { selector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] } });
    expect(await validateStream(stream('s'), lookups(tokens, [other]))).toEqual([
      {
        field: 'spec.selector',
        message: 'overlaps the selector of CloudPhoneStream other: a pod can carry only one sidecar',
      },
    ]);
    expect(await validateStream(stream('s'), lookups(tokens, [stream('s')]))).toEqual([]);
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
    expect(validatePool(pool({ app: 'phone' }), lookups({}, [stream('s')]))).toEqual([]);
    expect(validatePool(pool({ app: 'phone' }), lookups({}))).toEqual([
      { field: 'spec.streamRef.name', message: 'CloudPhoneStream s does not exist in this namespace' },
    ]);
    expect(validatePool(pool({ app: 'web' }, 'phone'), lookups({}, [stream('s')])).map((r) => r.field)).toEqual([
      'spec.template.spec.containers',
      'spec.template.metadata.labels',
    ]);
  });

  it('requires the claim pool to exist', () => {
    const claim: CloudPhoneClaim = { metadata: { name: 'c' }, spec: { poolRef: { name: 'p' } } };
    expect(validateClaim(claim, lookups({}, [], [pool({})]))).toEqual([]);
    expect(validateClaim(claim, lookups({}))[0]?.field).toBe('spec.poolRef.name');
  });
});
