// client-node 2.0 opens a new TLS connection for every API call; pooledKubeConfig reuses them, gives every call a
// deadline, and fences the leader's calls. Checked against a real HTTPS server that counts the connections and
// requests it accepts, and can be told to never answer (a hung apiserver connection).

import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pooledKubeConfig } from '../../../operator/src/kube/kube-config.ts';
import { LeadershipFence, NotLeaderError } from '../../../operator/src/kube/leadership-fence.ts';
import { createCa, issueServingCert } from '../../../operator/src/webhook/certificates.ts';

describe('pooledKubeConfig', () => {
  let server: Server;
  let connections = 0;
  let requests = 0;
  let hang = false;
  let load: (kc: KubeConfig) => void;

  beforeAll(async () => {
    const ca = await createCa('test-ca', 1);
    const serving = await issueServingCert(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }, 1);
    server = createServer({ cert: serving.certPem, key: serving.keyPem }, (_req, res) => {
      requests++;
      if (hang) return; // never answers, never closes
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }));
    });
    server.on('secureConnection', () => connections++);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    load = (kc) => {
      kc.loadFromOptions({
        clusters: [
          {
            name: 'c',
            server: `https://127.0.0.1:${String(port)}`,
            caData: Buffer.from(ca.certPem).toString('base64'),
          },
        ],
        users: [{ name: 'u', token: 'not-a-secret' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
    };
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  async function connectionsFor(kc: KubeConfig, calls: number): Promise<number> {
    const before = connections;
    const core = kc.makeApiClient(CoreV1Api);
    for (let i = 0; i < calls; i++) await core.readNamespace({ name: 'default' });
    return connections - before;
  }

  // undici may open a second connection while the first is being returned to its pool; never one per call.
  it('makes many API calls over one or two connections', async () => {
    expect(await connectionsFor(pooledKubeConfig(load), 20)).toBeLessThanOrEqual(2);
  });

  it('is needed: a plain KubeConfig of this client-node opens a connection per call', async () => {
    const plain = new KubeConfig();
    load(plain);
    expect(await connectionsFor(plain, 5)).toBe(5);
  });

  it('gives up on a call the apiserver never answers after the request timeout', async () => {
    hang = true;
    try {
      const core = pooledKubeConfig(load, { requestTimeoutMs: 300 }).makeApiClient(CoreV1Api);
      const started = performance.now();
      const error = await core.readNamespace({ name: 'default' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((error as Error | undefined)?.name).toBe('TimeoutError');
      expect(performance.now() - started).toBeLessThan(10_000); // not undici's 300 s
    } finally {
      hang = false;
    }
  });

  it('refuses a fenced call outside a leadership term without sending it', async () => {
    const fence = new LeadershipFence();
    const core = pooledKubeConfig(load, { fence }).makeApiClient(CoreV1Api);
    const before = requests;
    await expect(core.readNamespace({ name: 'default' })).rejects.toBeInstanceOf(NotLeaderError);
    expect(requests).toBe(before);
    fence.begin();
    await expect(core.readNamespace({ name: 'default' })).resolves.toMatchObject({ metadata: { name: 'default' } });
    expect(requests).toBe(before + 1);
  });

  it('aborts the fenced calls in flight when the term ends', async () => {
    const fence = new LeadershipFence();
    fence.begin();
    const core = pooledKubeConfig(load, { fence, requestTimeoutMs: 60_000 }).makeApiClient(CoreV1Api);
    hang = true;
    try {
      const before = requests;
      const call = core.readNamespace({ name: 'default' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      while (requests === before) await new Promise((resolve) => setTimeout(resolve, 10));
      fence.end();
      expect(await call).toBeInstanceOf(NotLeaderError);
    } finally {
      hang = false;
    }
  });
});
