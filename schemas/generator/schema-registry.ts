// Loads the JSON Schemas of schemas/json and inlines their $refs.
//
// Kubernetes CRDs cannot hold $ref, and ajv reads `default` only where it is written (not through a $ref),
// so the apiserver and our runtime validator would disagree on defaults if each resolved refs its own way.
// Both therefore use the one dereferenced form made here.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export type JsonSchema = Record<string, unknown>;

export interface SchemaDocument {
  /** File name inside schemas/json, e.g. cloudphonestream.json. */
  file: string;
  id: string;
  schema: JsonSchema;
}

export class SchemaRegistry {
  readonly documents = new Map<string, SchemaDocument>();

  static load(dir: string): SchemaRegistry {
    const registry = new SchemaRegistry();
    for (const file of readdirSync(dir).sort()) {
      if (!file.endsWith('.json') || file === 'crds.json') continue;
      const schema = JSON.parse(readFileSync(join(dir, file), 'utf8')) as JsonSchema;
      const id = schema.$id;
      if (typeof id !== 'string') throw new Error(`${file}: a schema needs an $id`);
      registry.documents.set(id, { file, id, schema });
    }
    return registry;
  }

  byFile(file: string): SchemaDocument {
    for (const doc of this.documents.values()) if (doc.file === file) return doc;
    throw new Error(`no schema file ${file}`);
  }

  /** The schema with every $ref replaced by a copy of its target; keywords beside a $ref override the target's. */
  dereference(doc: SchemaDocument): JsonSchema {
    const inlined = this.inline(doc.schema, doc.id, []) as JsonSchema;
    delete inlined.$defs;
    return inlined;
  }

  private inline(node: unknown, baseId: string, trail: string[]): unknown {
    if (Array.isArray(node)) return node.map((item) => this.inline(item, baseId, trail));
    if (node === null || typeof node !== 'object') return node;
    const object = node as JsonSchema;
    const out: JsonSchema = {};
    const ref = object.$ref;
    if (typeof ref === 'string') {
      const target = new URL(ref, baseId);
      const key = target.href;
      if (trail.includes(key)) throw new Error(`$ref cycle: ${[...trail, key].join(' -> ')}`);
      const docId = target.href.split('#')[0] ?? '';
      const targetDoc = this.documents.get(docId);
      if (!targetDoc) throw new Error(`$ref to unknown document ${ref} (from ${baseId})`);
      const resolved = resolvePointer(targetDoc.schema, decodeURIComponent(target.hash.slice(1)), ref);
      Object.assign(out, this.inline(resolved, docId, [...trail, key]));
    }
    for (const [keyword, value] of Object.entries(object)) {
      if (keyword === '$ref') continue;
      out[keyword] = this.inline(value, baseId, trail);
    }
    return out;
  }
}

function resolvePointer(root: JsonSchema, pointer: string, ref: string): unknown {
  let node: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (node === null || typeof node !== 'object' || !(part in node)) {
      throw new Error(`$ref ${ref} points at nothing`);
    }
    node = (node as JsonSchema)[part];
  }
  return node;
}
