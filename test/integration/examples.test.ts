// The examples against the real apiserver and the operator's validating webhook: each file's Kubernetes
// objects, each file in a namespace of its own (they are alternatives: their streams select the same phones)
// with the Secrets its header tells you to create, are accepted (the CRDs'
// schemas and CEL rules, the webhook's cross-object checks such as a pool's labels matching its
// stream, and the core API's own validation of the StatefulSet). Namespaces are left out (the test namespace
// stands in) and so are cert-manager's kinds (no cert-manager here).

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { OperatorProcess } from '../cluster/operator-process.ts';
import { randomBytes } from 'node:crypto';
import { installCrds, kubeConfig, kubectl, repoRoot, waitFor } from '../cluster/test-cluster.ts';

const EXAMPLES = join(repoRoot, 'examples');

let operator: OperatorProcess | undefined;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  installCrds();
  operator = await new OperatorProcess('examples-operator', inject('kubeconfig')).started();
  await waitFor('the operator to lead', () => Promise.resolve(operator?.isLeaderInLogs() ? true : undefined));
});

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
  await operator?.stop();
});

/** The Secrets (name -> keys) the resources name, as the header of each example tells you to create them. */
function secretsNamed(node: unknown, found = new Map<string, Set<string>>()): Map<string, Set<string>> {
  if (Array.isArray(node)) for (const item of node) secretsNamed(item, found);
  else if (node && typeof node === 'object')
    for (const [field, value] of Object.entries(node)) {
      if (field.endsWith('SecretRef') && value && typeof value === 'object') {
        const ref = value as { name: string; key?: string };
        const keys = found.get(ref.name) ?? new Set<string>();
        if (field === 'authSecretRef') ['view', 'control'].forEach((k) => keys.add(k));
        else if (field === 'tlsSecretRef') ['tls.crt', 'tls.key'].forEach((k) => keys.add(k));
        else if (ref.key) keys.add(ref.key);
        found.set(ref.name, keys);
      } else secretsNamed(value, found);
    }
  return found;
}

describe('examples/ on the apiserver', () => {
  it.each(readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')))('%s is accepted', async (file) => {
    const docs = parseAllDocuments(readFileSync(join(EXAMPLES, file), 'utf8'))
      .map((d) => d.toJS() as { apiVersion: string; kind: string; metadata: { namespace?: string } })
      .filter((d) => d.kind !== 'Namespace' && !d.apiVersion.startsWith('cert-manager.io/'));
    const namespaceName = `example-${randomBytes(3).toString('hex')}`;
    const namespace = (): string => namespaceName;
    await kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: namespaceName } } });
    cleanups.push(() => kubeConfig().makeApiClient(CoreV1Api).deleteNamespace({ name: namespaceName }));
    for (const doc of docs) doc.metadata.namespace = namespace();
    for (const [name, keys] of secretsNamed(docs)) {
      const stringData = Object.fromEntries([...keys].map((key) => [key, `example-${key}-0123456789`]));
      await kubeConfig()
        .makeApiClient(CoreV1Api)
        .createNamespacedSecret({ namespace: namespace(), body: { metadata: { name }, stringData } });
    }
    const path = join(tmpdir(), `example-${namespace()}-${file}`);
    writeFileSync(path, docs.map((d) => stringify(d)).join('---\n'));
    // Applied for real: the webhook checks that a pool's stream and a claim's pool exist, which a dry run of
    // objects made in the same apply cannot show. It reads from the operator's cache, a moment behind.
    const output = await waitFor(`${file} applied`, () => Promise.resolve(kubectl('apply', '-f', path)), 30_000);
    expect(output.trim().split('\n')).toHaveLength(docs.length);
  });
});
