// A lost CA is rolled over, not dropped: the bundle holds both CAs before any replica serves the new one, and the
// old one leaves it only after every replica has switched. Two CertificateManagers (two replicas) share one Secret
// store, a fake of the apiserver's Secrets (what is under test is the timing, driven with fake timers; the real
// apiserver path is test/integration/operator.test.ts).

import { X509Certificate } from 'node:crypto';
import { ApiException, type CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CertificateManager, type TlsMaterial } from '../../../operator/src/webhook/certificate-manager.ts';

const ROLLOVER_MS = 60_000;

/** One namespace's Secrets, with create's conflict and replace's resourceVersion check. */
function secretStore(): { core: CoreV1Api; delete: () => void } {
  let stored: V1Secret | undefined;
  let version = 0;
  const core = {
    readNamespacedSecret: () =>
      stored ? Promise.resolve(structuredClone(stored)) : Promise.reject(new ApiException(404, 'nf', {}, {})),
    createNamespacedSecret: ({ body }: { body: V1Secret }) => {
      if (stored) return Promise.reject(new ApiException(409, 'exists', {}, {}));
      stored = { ...body, metadata: { ...body.metadata, resourceVersion: String(++version) } };
      return Promise.resolve(structuredClone(stored));
    },
    replaceNamespacedSecret: ({ body }: { body: V1Secret }) => {
      if (body.metadata?.resourceVersion !== stored?.metadata?.resourceVersion)
        return Promise.reject(new ApiException(409, 'conflict', {}, {}));
      stored = { ...body, metadata: { ...body.metadata, resourceVersion: String(++version) } };
      return Promise.resolve(structuredClone(stored));
    },
  };
  return {
    core: core as unknown as CoreV1Api,
    delete: () => {
      stored = undefined;
    },
  };
}

function replica(core: CoreV1Api) {
  const served: TlsMaterial[] = [];
  const bundles: string[] = [];
  const manager = new CertificateManager({
    core,
    namespace: 'ops',
    secretName: 'tls',
    identity: { dnsNames: ['op.ops.svc'], ipAddresses: [] },
    log: pino({ level: 'silent' }),
    rolloverMs: ROLLOVER_MS,
    onChange: (m) => served.push(m),
    onBundleChange: (b) => bundles.push(b),
  });
  return { manager, served, bundles };
}

const certificates = (bundle: string): number => bundle.split('-----BEGIN CERTIFICATE-----').length - 1;
const issuedBy = (material: TlsMaterial | undefined, caPem: string): boolean =>
  material !== undefined && new X509Certificate(material.certPem).checkIssued(new X509Certificate(caPem));

describe('rolling the CA over', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('trusts both CAs before serving the new one, and drops the old only after every replica switched', async () => {
    const store = secretStore();
    const leader = replica(store.core);
    const follower = replica(store.core);
    await leader.manager.sync(true);
    await follower.manager.sync(false);
    const oldCa = leader.manager.bundlePem;
    expect(certificates(oldCa)).toBe(1);

    store.delete();
    await leader.manager.sync(true); // makes the new CA
    await follower.manager.sync(false);
    for (const r of [leader, follower]) {
      // Both CAs trusted at once, the old certificate still served.
      expect(certificates(r.manager.bundlePem)).toBe(2);
      expect(r.manager.bundlePem).toContain(oldCa.trim());
      expect(issuedBy(r.manager.material, oldCa)).toBe(true);
    }
    const newCa = leader.manager.bundlePem.replace(oldCa.trim(), '').trim();

    vi.setSystemTime(Date.now() + ROLLOVER_MS + 1);
    for (const r of [leader, follower]) {
      await r.manager.sync(r === leader);
      expect(issuedBy(r.manager.material, newCa)).toBe(true); // switched
      expect(certificates(r.manager.bundlePem)).toBe(2); // the old CA still trusted: a replica may lag
    }

    vi.setSystemTime(Date.now() + ROLLOVER_MS);
    for (const r of [leader, follower]) {
      await r.manager.sync(r === leader);
      expect(r.manager.bundlePem.trim()).toBe(newCa);
    }
    // Each replica announced every step: old certificate, new certificate; one CA, two, one.
    expect(leader.served).toHaveLength(2);
    expect(leader.bundles.map(certificates)).toEqual([1, 2, 1]);
  });

  it('serves the new certificate at once in a replica that never served the old CA', async () => {
    const store = secretStore();
    const leader = replica(store.core);
    await leader.manager.sync(true);
    store.delete();
    await leader.manager.sync(true);
    const fresh = replica(store.core); // started during the rollover
    await fresh.manager.sync(false);
    const newCa = leader.manager.bundlePem.split(/(?<=-----END CERTIFICATE-----\n)/)[0] ?? '';
    expect(issuedBy(fresh.manager.material, newCa)).toBe(true);
    expect(certificates(fresh.manager.bundlePem)).toBe(2);
  });
});
