// Turns a dereferenced resource schema into an apiextensions.k8s.io/v1 CustomResourceDefinition.
//
// The apiserver accepts only structural schemas: a subset of JSON Schema plus x-kubernetes-* extensions. We
// strip what exists only for ajv (additionalProperties: false: the apiserver prunes unknown fields instead)
// and refuse anything else a CRD cannot carry, so a mistake fails here rather than at `kubectl apply`.

import type { JsonSchema } from './schema-registry.ts';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
}

export interface CrdResource {
  schema: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames?: string[];
  categories?: string[];
  printerColumns?: PrinterColumn[];
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
}

export interface CrdManifest {
  group: string;
  version: string;
  resources: CrdResource[];
}

/** Keywords a CRD schema may carry (k8s.io/apiextensions-apiserver JSONSchemaProps, minus the forbidden ones). */
const ALLOWED_KEYWORDS = new Set([
  'type',
  'format',
  'description',
  'default',
  'enum',
  'maximum',
  'minimum',
  'maxLength',
  'minLength',
  'pattern',
  'maxItems',
  'minItems',
  'maxProperties',
  'minProperties',
  'multipleOf',
  'required',
  'items',
  'properties',
  'additionalProperties',
  'allOf',
  'anyOf',
  'oneOf',
  'not',
  'nullable',
  'example',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-int-or-string',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-validations',
]);

/** Keywords that only serve ajv or documentation and are dropped on the way to a CRD. */
const DROPPED_KEYWORDS = new Set(['$schema', '$id', '$comment', '$defs', 'title', 'tsType']);

export class CrdSchemaError extends Error {
  override name = 'CrdSchemaError';
}

/** The structural form of a schema, checked keyword by keyword. */
export function toStructural(schema: JsonSchema, path = ''): JsonSchema {
  const out: JsonSchema = {};
  for (const [keyword, value] of Object.entries(schema)) {
    if (DROPPED_KEYWORDS.has(keyword)) continue;
    if (keyword === 'additionalProperties' && typeof value === 'boolean') continue;
    if (!ALLOWED_KEYWORDS.has(keyword)) {
      throw new CrdSchemaError(`${path || '<root>'}: keyword ${keyword} is not allowed in a CRD schema`);
    }
    if (keyword === 'properties') {
      const properties: JsonSchema = {};
      for (const [name, child] of Object.entries(value as Record<string, JsonSchema>)) {
        properties[name] = toStructural(child, `${path}.${name}`);
      }
      out[keyword] = properties;
    } else if (keyword === 'items' || keyword === 'additionalProperties' || keyword === 'not') {
      out[keyword] = toStructural(value as JsonSchema, `${path}[]`);
    } else if (keyword === 'anyOf' || keyword === 'allOf' || keyword === 'oneOf') {
      out[keyword] = (value as JsonSchema[]).map((branch) => toStructural(branch, path));
    } else {
      out[keyword] = value;
    }
  }
  return out;
}

/**
 * Problems that would make the apiserver refuse the schema or leave `kubectl explain` empty: a node
 * without a type, a property without a description.
 */
export function structuralProblems(schema: JsonSchema, path = '', inValueValidation = false): string[] {
  const problems: string[] = [];
  const where = path || '<root>';
  const intOrString = schema['x-kubernetes-int-or-string'] === true;
  const preserves = schema['x-kubernetes-preserve-unknown-fields'] === true;
  if (!inValueValidation && !intOrString && typeof schema.type !== 'string') {
    problems.push(`${where}: has no type`);
  }
  if (preserves && schema.type !== 'object') problems.push(`${where}: preserves unknown fields but is not an object`);
  if (schema.properties !== undefined && schema.additionalProperties !== undefined) {
    problems.push(`${where}: properties and additionalProperties are mutually exclusive`);
  }
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  for (const [name, child] of Object.entries(properties)) {
    const childPath = `${path}.${name}`;
    const describable = childPath !== '.metadata'; // the apiserver forbids describing ObjectMeta
    if (describable && (typeof child.description !== 'string' || child.description.length === 0)) {
      problems.push(`${childPath}: has no description`);
    }
    problems.push(...structuralProblems(child, childPath, inValueValidation));
  }
  if (schema.items !== undefined) {
    problems.push(...structuralProblems(schema.items as JsonSchema, `${path}[]`, inValueValidation));
  }
  if (typeof schema.additionalProperties === 'object') {
    problems.push(...structuralProblems(schema.additionalProperties as JsonSchema, `${path}{}`, inValueValidation));
  }
  if (schema.default !== undefined && inValueValidation) problems.push(`${where}: default inside anyOf/allOf/oneOf`);
  return problems;
}

export function toCrd(manifest: CrdManifest, resource: CrdResource, schema: JsonSchema): JsonSchema {
  const structural = toStructural(schema);
  structural.type = 'object';
  const problems = structuralProblems(structural);
  if (problems.length > 0) {
    throw new CrdSchemaError(`${resource.schema} is not a structural schema:\n  ${problems.join('\n  ')}`);
  }
  // The apiserver supplies ObjectMeta's schema itself and forbids saying anything about it, a description included.
  (structural.properties as Record<string, JsonSchema>).metadata = { type: 'object' };
  const subresources: JsonSchema = { status: {} };
  if (resource.scale) subresources.scale = resource.scale;
  const names: JsonSchema = {
    kind: resource.kind,
    listKind: `${resource.kind}List`,
    plural: resource.plural,
    singular: resource.singular,
  };
  if (resource.shortNames) names.shortNames = resource.shortNames;
  if (resource.categories) names.categories = resource.categories;
  const version: JsonSchema = {
    name: manifest.version,
    served: true,
    storage: true,
    schema: { openAPIV3Schema: structural },
    subresources,
  };
  if (resource.printerColumns) version.additionalPrinterColumns = resource.printerColumns;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${resource.plural}.${manifest.group}`,
      labels: { 'app.kubernetes.io/part-of': 'cloudphone' },
    },
    spec: {
      group: manifest.group,
      names,
      scope: 'Namespaced',
      versions: [version],
    },
  };
}
