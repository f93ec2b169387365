import { describe, expect, it } from 'vitest';
import type { CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import {
  resolveSecretRefs,
  type SecretLookup,
  type SecretReader,
} from '../../../operator/src/controller/secret-references.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Reads from a map of Secrets, counting reads; a name in `forbidden` answers as RBAC would without a binding. */
function reader(secrets: Record<string, Record<string, string>>, forbidden = false): SecretReader & { reads: number } {
  const read = (name: string): Promise<SecretLookup> => {
    read.reads++;
    if (forbidden) return Promise.resolve({ forbidden: true });
    const data = secrets[name];
    return Promise.resolve(data ? { found: true, data } : { found: false });
  };
  read.reads = 0;
  return read;
}

const stream = (spec: Partial<CloudPhoneStream['spec']> = {}): CloudPhoneStream => ({
  metadata: { name: 's', namespace: 'n' },
  spec: {
    selector: { matchLabels: { app: 'phone' } },
    phoneContainer: 'android',
    webrtc: { whep: { enabled: true, authSecretRef: { name: 'tokens' } } },
    ...spec,
  },
});
const tokens = { tokens: { view: b64('v'), control: b64('c') } };

describe('resolveSecretRefs', () => {
  it('is True when every Secret exists with its keys, and when the stream names none', async () => {
    expect(await resolveSecretRefs(stream(), reader(tokens))).toMatchObject({ status: 'True', reason: 'ResolvedRefs' });
    const none = stream({ webrtc: { whep: { enabled: false } } });
    expect(await resolveSecretRefs(none, reader({}))).toMatchObject({ status: 'True', reason: 'NoSecretRefs' });
  });

  it('names the field of a missing Secret, and of a Secret without the keys it needs', async () => {
    expect(await resolveSecretRefs(stream(), reader({}))).toEqual({
      status: 'False',
      reason: 'SecretNotFound',
      message: 'spec.webrtc.whep.authSecretRef: Secret tokens does not exist',
    });
    expect(await resolveSecretRefs(stream(), reader({ tokens: { view: b64('v') } }))).toEqual({
      status: 'False',
      reason: 'SecretKeyMissing',
      message: 'spec.webrtc.whep.authSecretRef: Secret tokens has no key "control"',
    });
  });

  it('checks the SRT passphrase length libsrt accepts, without telling the length', async () => {
    const srt = stream({ srt: { url: 'srt://a:1', passphraseSecretRef: { name: 'srt', key: 'p' } } });
    expect((await resolveSecretRefs(srt, reader({ ...tokens, srt: { p: b64('0123456789') } }))).status).toBe('True');
    const short = await resolveSecretRefs(srt, reader({ ...tokens, srt: { p: b64('short') } }));
    expect(short).toMatchObject({ status: 'False', reason: 'InvalidSecret' });
    expect(short.message).toContain('must be 10 to 79 characters');
    expect(short.message).not.toMatch(/\b5\b|short/);
  });

  it('checks that the RTMP stream key can end a URL, without quoting it', async () => {
    const rtmp = stream({ rtmp: { url: 'rtmp://live.example/app', streamKeySecretRef: { name: 'live', key: 'k' } } });
    // A Secret made from a file with `kubectl create secret --from-file` keeps its newline: the sidecar drops it.
    const good = await resolveSecretRefs(rtmp, reader({ ...tokens, live: { k: b64('live_1234_abcDEF-x?bw=1\n') } }));
    expect(good.status).toBe('True');
    for (const bad of ['', 'two words', 'tab\there', 'ключ', 'x'.repeat(513)]) {
      const verdict = await resolveSecretRefs(rtmp, reader({ ...tokens, live: { k: b64(bad) } }));
      expect(verdict).toMatchObject({ status: 'False', reason: 'InvalidSecret' });
      expect(verdict.message).toBe(
        'spec.rtmp.streamKeySecretRef: the RTMP stream key in key "k" must be 1 to 512 printable ASCII characters without spaces',
      );
    }
  });

  it('checks the WHEP TLS Secret and every ICE server credential, reading each Secret once', async () => {
    const full = stream({
      webrtc: {
        whep: { enabled: true, authSecretRef: { name: 'tokens' }, tlsSecretRef: { name: 'tokens' } },
        iceServers: [{ urls: ['stun:a'] }, { urls: ['turn:b'], credentialSecretRef: { name: 'turn', key: 'cred' } }],
      },
    });
    const read = reader(tokens);
    const verdict = await resolveSecretRefs(full, read);
    expect(verdict.message).toBe(
      'spec.webrtc.whep.tlsSecretRef: Secret tokens has no key "tls.crt" or "tls.key"; ' +
        'spec.webrtc.iceServers[1].credentialSecretRef: Secret turn does not exist',
    );
    expect(read.reads).toBe(2);
  });

  it('is Unknown, saying how to allow it, where the operator may not read Secrets', async () => {
    const verdict = await resolveSecretRefs(stream(), reader(tokens, true));
    expect(verdict).toMatchObject({ status: 'Unknown', reason: 'SecretsNotReadable' });
    expect(verdict.message).toContain('rbac.secretNamespaces');
  });
});
