// The examples a user applies first: every cloudphone.io resource in examples/ is valid as the apiserver judges
// it (the same schemas and CEL rules), and each file is whole: every Secret a stream names is created by the
// file's own instructions (a `kubectl create secret` line or a Certificate), every pool's stream and every
// claim's pool is in the file. (test/integration/examples.test.ts applies them to the real apiserver.)

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { SchemaValidator, type SchemaName } from '../../schemas/runtime/validator.ts';

const EXAMPLES = join(import.meta.dirname, '../../examples');
const files = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const validator = new SchemaValidator();

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
}

function documents(file: string): { text: string; docs: Doc[] } {
  const text = readFileSync(join(EXAMPLES, file), 'utf8');
  return { text, docs: parseAllDocuments(text).map((d) => d.toJS() as Doc) };
}

/** Every {name} of a Secret reference (…SecretRef: {name}) in a resource. */
function secretRefs(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) secretRefs(item, found);
  else if (node && typeof node === 'object')
    for (const [key, value] of Object.entries(node)) {
      if (key.endsWith('SecretRef') && value && typeof value === 'object' && 'name' in value)
        found.push(String((value as { name: unknown }).name));
      else secretRefs(value, found);
    }
  return found;
}

describe('examples/', () => {
  it('has the five starting points', () => {
    expect(files).toEqual([
      'pool-with-claims.yaml',
      'quickstart.yaml',
      'simulated-phones.yaml',
      'srt-ingest.yaml',
      'whep-turn.yaml',
    ]);
  });

  it.each(files)('%s: every cloudphone.io resource is valid', (file) => {
    const ours = documents(file).docs.filter((d) => d.apiVersion === 'cloudphone.io/v1alpha1');
    expect(ours.length).toBeGreaterThan(0);
    for (const doc of ours)
      expect([doc.metadata.name, validator.check(doc.kind as SchemaName, doc)]).toEqual([doc.metadata.name, []]);
  });

  it.each(files)('%s: names only Secrets, streams and pools it makes or tells you to make', (file) => {
    const { text, docs } = documents(file);
    const secretsMade = new Set([
      ...[...text.matchAll(/create secret generic ([\w.-]+)/g)].map((m) => m[1]),
      ...docs.filter((d) => d.kind === 'Certificate').map((d) => String(d.spec?.secretName)),
      ...docs.filter((d) => d.kind === 'Secret').map((d) => d.metadata.name),
    ]);
    for (const doc of docs) for (const name of secretRefs(doc.spec)) expect(secretsMade).toContain(name);
    const named = (kind: string): string[] => docs.filter((d) => d.kind === kind).map((d) => d.metadata.name);
    for (const pool of docs.filter((d) => d.kind === 'CloudPhonePool'))
      expect(named('CloudPhoneStream')).toContain((pool.spec?.streamRef as { name: string }).name);
    for (const claim of docs.filter((d) => d.kind === 'CloudPhoneClaim'))
      expect(named('CloudPhonePool')).toContain((claim.spec?.poolRef as { name: string }).name);
  });
});
