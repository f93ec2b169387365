import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseCel } from '@marcbachmann/cel-js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { structuralProblems, toStructural } from '../../schemas/generator/crd.ts';
import { newAjv } from '../../schemas/runtime/validator.ts';

const crdDir = join(import.meta.dirname, '../../crds');
type Schema = Record<string, unknown>;
interface Crd {
  metadata: { name: string };
  spec: {
    group: string;
    names: { kind: string; plural: string; shortNames?: string[] };
    scope: string;
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: Schema };
      subresources: { status?: object; scale?: Record<string, string> };
      additionalPrinterColumns?: { name: string; jsonPath: string }[];
    }[];
  };
}

const crds = new Map<string, Crd>(
  readdirSync(crdDir).map((file) => {
    const crd = parse(readFileSync(join(crdDir, file), 'utf8')) as Crd;
    return [crd.spec.names.kind, crd];
  }),
);

function version(kind: string) {
  const v = crds.get(kind)?.spec.versions[0];
  if (!v) throw new Error(`no CRD for ${kind}`);
  return v;
}

/** Every schema node with its path, depth first. */
function* nodes(schema: Schema, path = ''): Generator<[string, Schema]> {
  yield [path, schema];
  for (const [name, child] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) {
    yield* nodes(child, `${path}.${name}`);
  }
  if (schema.items) yield* nodes(schema.items as Schema, `${path}[]`);
  if (typeof schema.additionalProperties === 'object') yield* nodes(schema.additionalProperties as Schema, `${path}{}`);
}

describe('generated CRDs', () => {
  it('define the three cloudphone.io/v1alpha1 kinds, namespaced, with a status subresource', () => {
    expect([...crds.keys()].sort()).toEqual(['CloudPhoneClaim', 'CloudPhonePool', 'CloudPhoneStream']);
    for (const crd of crds.values()) {
      expect(crd.metadata.name).toBe(`${crd.spec.names.plural}.cloudphone.io`);
      expect(crd.spec.scope).toBe('Namespaced');
      expect(crd.spec.versions).toHaveLength(1);
      expect(crd.spec.versions[0]).toMatchObject({ name: 'v1alpha1', served: true, storage: true });
      expect(crd.spec.versions[0]?.subresources.status).toEqual({});
    }
  });

  it('give the pool a scale subresource that HPA and kubectl scale can use', () => {
    expect(version('CloudPhonePool').subresources.scale).toEqual({
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.selector',
    });
  });

  it('show READY, PODS, STREAMING, VIEWERS and AGE for streams', () => {
    expect(version('CloudPhoneStream').additionalPrinterColumns?.map((c) => c.name)).toEqual([
      'Ready',
      'Pods',
      'Streaming',
      'Viewers',
      'Age',
    ]);
  });

  it('describe every property, so kubectl explain has something to say', () => {
    for (const kind of crds.keys()) {
      const undescribed = [...nodes(version(kind).schema.openAPIV3Schema)]
        .filter(([path]) => /\.[^.[\]{}]+$/.test(path))
        .filter(([path]) => path !== '.metadata') // the apiserver forbids describing ObjectMeta
        .filter(([, node]) => typeof node.description !== 'string' || node.description === '')
        .map(([path]) => path);
      expect(undescribed, kind).toEqual([]);
    }
  });

  it('are structural: no $ref, no ajv-only keywords, a type on every node', () => {
    for (const kind of crds.keys()) {
      const schema = version(kind).schema.openAPIV3Schema;
      expect(structuralProblems(schema), kind).toEqual([]);
      expect(JSON.stringify(schema)).not.toMatch(/"\$ref"|"\$defs"|"\$id"|"additionalProperties":false|"tsType"/);
    }
  });

  it('carry defaults that pass their own schema as written (the apiserver refuses a CRD whose do not)', () => {
    // As written: the apiserver evaluates CEL rules on a default without filling in the default's own fields.
    const ajv = newAjv('check');
    let checked = 0;
    for (const kind of crds.keys()) {
      for (const [path, node] of nodes(version(kind).schema.openAPIV3Schema)) {
        if (node.default === undefined) continue;
        const { default: value, ...schema } = node;
        const validate = ajv.compile(schema);
        expect(validate(structuredClone(value)), `${kind} ${path}: ${ajv.errorsText(validate.errors)}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('carry only CEL rules that compile', () => {
    let rules = 0;
    for (const kind of crds.keys()) {
      for (const [path, node] of nodes(version(kind).schema.openAPIV3Schema)) {
        for (const { rule } of (node['x-kubernetes-validations'] ?? []) as { rule: string }[]) {
          expect(() => parseCel(rule), `${kind} ${path}: ${rule}`).not.toThrow();
          rules++;
        }
      }
    }
    expect(rules).toBeGreaterThanOrEqual(8);
  });
});

describe('toStructural', () => {
  it('drops the keywords only ajv needs', () => {
    expect(
      toStructural({
        $id: 'x',
        title: 'T',
        type: 'object',
        additionalProperties: false,
        properties: { a: { type: 'string', description: 'A.', tsType: 'string' } },
      }),
    ).toEqual({ type: 'object', properties: { a: { type: 'string', description: 'A.' } } });
  });

  it('refuses a keyword a CRD cannot carry, naming where it is', () => {
    expect(() =>
      toStructural({ type: 'object', properties: { spec: { type: 'object', patternProperties: {} } } }),
    ).toThrow('.spec: keyword patternProperties is not allowed in a CRD schema');
    expect(() => toStructural({ type: 'object', properties: { a: { $ref: '#/x' } } })).toThrow(/\$ref/);
  });
});

describe('structuralProblems', () => {
  it('finds properties without a description and nodes without a type', () => {
    expect(
      structuralProblems({
        type: 'object',
        properties: {
          a: { type: 'string' },
          b: { description: 'B.' },
          c: { description: 'C.', 'x-kubernetes-int-or-string': true },
        },
      }),
    ).toEqual(['.a: has no description', '.b: has no type']);
  });
});
