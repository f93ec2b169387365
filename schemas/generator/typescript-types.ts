// TypeScript types for every JSON Schema document, made by json-schema-to-typescript.
//
// All documents are compiled together so that shared definitions (LabelSelector, Condition, ...) become one
// named type each instead of one copy per resource.

import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { compile, type JSONSchema } from 'json-schema-to-typescript';
import type { SchemaRegistry } from './schema-registry.ts';

const SCHEMA_BASE = 'https://cloudphone.io/schemas/';

export async function typescriptTypes(registry: SchemaRegistry, schemaDir: string, banner: string): Promise<string> {
  const properties: Record<string, { $ref: string }> = {};
  for (const doc of registry.documents.values()) {
    if (doc.schema.properties === undefined) continue; // a document of shared definitions only
    const title = doc.schema.title;
    if (typeof title !== 'string') throw new Error(`${doc.file}: a schema needs a title, it names its type`);
    properties[title] = { $ref: doc.file };
  }
  const root: JSONSchema = {
    title: 'CloudPhoneSchemas',
    description: 'Every document of schemas/json, by title; only here so that all types are generated together.',
    type: 'object',
    additionalProperties: false,
    properties,
  };
  return compile(root, 'CloudPhoneSchemas', {
    bannerComment: `${banner}\nimport type { V1ObjectMeta } from '@kubernetes/client-node';`,
    cwd: schemaDir,
    additionalProperties: false,
    ignoreMinAndMaxItems: true,
    unreachableDefinitions: false,
    strictIndexSignatures: true,
    $refOptions: {
      resolve: {
        http: false,
        file: false,
        cloudphone: {
          order: 1,
          canRead: true,
          read: (file: { url: string }) => {
            const name = basename(file.url.split('#')[0] ?? '');
            if (!file.url.startsWith(SCHEMA_BASE) && !file.url.startsWith(schemaDir)) {
              throw new Error(`schema reference outside schemas/json: ${file.url}`);
            }
            const path = join(schemaDir, name);
            return JSON.stringify(withoutRefSiblings(JSON.parse(readFileSync(path, 'utf8'))));
          },
        },
      },
    },
  });
}

/**
 * Drops the keywords written beside a $ref (a per-use description or default). They matter to the CRD, but
 * json-schema-to-typescript would make each such use a new type (Video1, SecretKeySelector2, ...).
 */
function withoutRefSiblings(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutRefSiblings);
  if (node === null || typeof node !== 'object') return node;
  const object = node as Record<string, unknown>;
  if (typeof object.$ref === 'string') return { $ref: object.$ref };
  return Object.fromEntries(Object.entries(object).map(([key, value]) => [key, withoutRefSiblings(value)]));
}
