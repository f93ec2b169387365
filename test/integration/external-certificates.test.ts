// --certificates=external, as the chart's cert-manager mode runs the operator: the certificate Secret is
// cert-manager's. The operator waits for it (instead of making its own), serves what it holds, follows a
// renewal without a restart, and never writes the Secret (nor, in this mode, any caBundle). It runs with
// exactly the RBAC the chart renders in that mode (impersonating its ServiceAccount), which has no write on
// Secrets or webhook configurations: if the operator tried, it would be refused.

import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { createCa, issueServingCert, type KeyPairPem } from '../../operator/src/webhook/certificates.ts';
import { OperatorProcess } from '../cluster/operator-process.ts';
import {
  impersonatingKubeconfig,
  kubeConfig,
  kubectl,
  repoRoot,
  useTestNamespace,
  waitFor,
} from '../cluster/test-cluster.ts';

const namespace = useTestNamespace('external-certs');
const SECRET = 'cloudphone-operator-tls';
const IDENTITY = { dnsNames: ['cloudphone-operator.cloudphone-system.svc', 'localhost'], ipAddresses: ['127.0.0.1'] };

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.end();
    });
    socket.on('error', reject);
  });
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** The Secret as cert-manager writes it for a CA-issued certificate. */
function secretBody(ca: KeyPairPem, serving: KeyPairPem): V1Secret {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return {
    metadata: { name: SECRET, annotations: { 'cert-manager.io/certificate-name': 'cloudphone-operator-serving' } },
    type: 'kubernetes.io/tls',
    data: { 'ca.crt': b64(ca.certPem), 'tls.crt': b64(serving.certPem), 'tls.key': b64(serving.keyPem) },
  };
}

const suffix = randomBytes(3).toString('hex');
let clusterScoped: string[] = [];

/**
 * The chart's ServiceAccount and RBAC in cert-manager mode, applied to the test namespace; the cluster-wide
 * objects get a unique name, so they cannot collide with a release of the chart another test installs.
 */
function applyChartRbac(): void {
  const rendered = execFileSync(
    join(repoRoot, '.cache/bin/helm'),
    ['template', 'cloudphone', join(repoRoot, 'charts/cloudphone-operator'), '--namespace', namespace()].concat([
      '--kube-version',
      '1.36.3',
      '--set',
      'certificates.mode=cert-manager',
      '--set',
      'crds.install=false',
    ]),
    { encoding: 'utf8' },
  );
  const kinds = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];
  const docs = parseAllDocuments(rendered)
    .map((d) => d.toJS() as { kind: string; metadata: { name: string }; roleRef?: { name: string } } | null)
    .filter((d) => d !== null && kinds.includes(d.kind));
  for (const doc of docs) {
    if (!doc) continue;
    if (doc.kind.startsWith('Cluster')) {
      doc.metadata.name = `${doc.metadata.name}-external-${suffix}`;
      clusterScoped.push(`${doc.kind.toLowerCase()}/${doc.metadata.name}`);
    }
    if (doc.kind === 'ClusterRoleBinding' && doc.roleRef) doc.roleRef.name = `${doc.roleRef.name}-external-${suffix}`;
  }
  const file = join(tmpdir(), `external-rbac-${suffix}.yaml`);
  writeFileSync(file, docs.map((d) => stringify(d)).join('---\n'));
  kubectl('apply', '-f', file);
}

describe('the operator with external certificates (cert-manager mode)', () => {
  let operator: OperatorProcess | undefined;

  beforeAll(() => {
    applyChartRbac();
  });

  afterAll(async () => {
    await operator?.stop();
    for (const object of clusterScoped) kubectl('delete', object, '--ignore-not-found');
    clusterScoped = [];
  });

  it('waits for the Secret, serves it, follows its renewal, and never writes it', async () => {
    const core = kubeConfig().makeApiClient(CoreV1Api);
    operator = new OperatorProcess(
      'external-a',
      impersonatingKubeconfig(namespace(), 'cloudphone-operator'),
      ['--certificates', 'external', '--namespace', namespace(), '--listen-host', '127.0.0.1'],
      false,
    );
    const running = operator;
    await waitFor('the operator to wait for the Secret', () =>
      Promise.resolve(running.logs.find((l) => l.msg === 'waiting for the certificate Secret (external certificates)')),
    );
    expect(running.logs.some((l) => l.msg === 'operator started')).toBe(false);
    // Alive while it waits (liveness must not kill it), but not ready: nothing to serve yet.
    const healthPort = await running.healthServer();
    const probe = (path: string) => fetch(`http://127.0.0.1:${String(healthPort)}${path}`).then((r) => r.status);
    expect(await probe('/healthz')).toBe(200);
    expect(await probe('/readyz')).toBe(503);
    // It made no Secret of its own.
    await expect(core.readNamespacedSecret({ name: SECRET, namespace: namespace() })).rejects.toThrow();

    const ca = await createCa('cert-manager test CA', 1);
    const first = await issueServingCert(ca, IDENTITY, 1);
    await core.createNamespacedSecret({ namespace: namespace(), body: secretBody(ca, first) });
    await running.started();
    expect(await servedFingerprint(running.httpsPort)).toBe(fingerprint(first.certPem));
    expect(await probe('/readyz')).toBe(200);

    // cert-manager renews: the operator serves the new certificate, same process.
    const renewed = await issueServingCert(ca, IDENTITY, 1);
    const written = await core.replaceNamespacedSecret({
      name: SECRET,
      namespace: namespace(),
      body: secretBody(ca, renewed),
    });
    await waitFor('the renewed certificate to be served', async () =>
      (await servedFingerprint(running.httpsPort)) === fingerprint(renewed.certPem) ? true : undefined,
    );
    expect(running.logs.filter((l) => l.msg === 'operator started')).toHaveLength(1);
    await waitFor('it to lead', () => Promise.resolve(running.isLeaderInLogs() ? true : undefined));
    // Two check intervals later, the Secret is still exactly what "cert-manager" wrote.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const now = await core.readNamespacedSecret({ name: SECRET, namespace: namespace() });
    expect(now.metadata?.resourceVersion).toBe(written.metadata?.resourceVersion);
    expect(running.logs.some((l) => /created webhook certificates|renewed the serving certificate/.test(l.msg))).toBe(
      false,
    );
  });
});
