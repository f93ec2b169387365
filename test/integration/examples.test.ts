// The examples against the real apiserver: each file's Kubernetes objects, put in a test namespace, pass a
// server-side dry run (the CRDs' schemas and CEL rules, and the core API's own validation of the StatefulSet).
// Namespaces are left out (the test namespace stands in) and so are cert-manager's kinds (no cert-manager here).

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { installCrds, kubectl, repoRoot, useTestNamespace } from '../cluster/test-cluster.ts';

const EXAMPLES = join(repoRoot, 'examples');
const namespace = useTestNamespace('examples');

beforeAll(() => {
  installCrds();
});

describe('examples/ on the apiserver', () => {
  it.each(readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')))('%s passes a server-side dry run', (file) => {
    const docs = parseAllDocuments(readFileSync(join(EXAMPLES, file), 'utf8'))
      .map((d) => d.toJS() as { apiVersion: string; kind: string; metadata: { namespace?: string } })
      .filter((d) => d.kind !== 'Namespace' && !d.apiVersion.startsWith('cert-manager.io/'));
    for (const doc of docs) doc.metadata.namespace = namespace();
    const path = join(tmpdir(), `example-${namespace()}-${file}`);
    writeFileSync(path, docs.map((d) => stringify(d)).join('---\n'));
    const output = kubectl('apply', '--dry-run=server', '-f', path);
    expect(output.trim().split('\n')).toHaveLength(docs.length);
    expect(output).toContain('(server dry run)');
  });
});
