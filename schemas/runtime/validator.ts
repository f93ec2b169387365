// Validates documents against the schemas of schemas/json at run time, with ajv, in the same dereferenced
// form the CRDs carry: the same defaults, bounds, enums and CEL rules as the apiserver.

import { Ajv2020, type ErrorObject, type KeywordDefinition, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import type {
  CloudPhoneClaim,
  CloudPhonePool,
  CloudPhoneStream,
  SidecarConfig,
  SidecarReport,
} from '../../generated/ts/api-types.ts';
import { jsonSchemas } from '../../generated/ts/json-schemas.ts';
import { CelRuleSet, type CelRule } from './cel-rules.ts';

/** The documents that can be validated, by schema title, and the type a valid one has. */
export interface SchemaTypes {
  CloudPhoneStream: CloudPhoneStream;
  CloudPhonePool: CloudPhonePool;
  CloudPhoneClaim: CloudPhoneClaim;
  SidecarConfig: SidecarConfig;
  SidecarReport: SidecarReport;
}
export type SchemaName = keyof SchemaTypes;

export interface FieldError {
  /** Where the problem is, written as kubectl does: spec.video.bitrate.minKbps, spec.selector.matchExpressions[0]. */
  path: string;
  message: string;
}

export class ValidationError extends Error {
  override name = 'ValidationError';
  readonly schema: SchemaName;
  readonly errors: FieldError[];

  constructor(schema: SchemaName, errors: FieldError[]) {
    super(`invalid ${schema}: ${errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ')}`);
    this.schema = schema;
    this.errors = errors;
  }
}

/** x-kubernetes-* keywords that change nothing ajv checks, and tsType, which only names a TypeScript type. */
const ANNOTATION_KEYWORDS = [
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'tsType',
];

function celKeyword(evaluate: boolean): KeywordDefinition {
  return {
    keyword: 'x-kubernetes-validations',
    schemaType: 'array',
    errors: true,
    compile(rules: CelRule[], parentSchema) {
      if (!evaluate) return () => true;
      const ruleSet = new CelRuleSet(rules, parentSchema as Record<string, unknown>);
      const check = (data: unknown): boolean => {
        const violations = ruleSet.violations(data);
        check.errors = violations.map((v) => ({
          keyword: 'x-kubernetes-validations',
          message: v.message,
          params: { fieldPath: v.fieldPath },
        }));
        return violations.length === 0;
      };
      check.errors = [] as Partial<ErrorObject>[];
      return check;
    },
  };
}

/**
 * The apiserver defaults a whole object first and validates it after, so rules see defaulted fields.
 * ajv would interleave the two, so each job gets its own instance: one only fills defaults, one only checks.
 */
export function newAjv(job: 'default' | 'check'): Ajv2020 {
  const ajv = new Ajv2020({
    allErrors: true,
    useDefaults: job === 'default',
    strict: true,
    // Int-or-string nodes carry minimum and pattern without a single type, as Kubernetes requires.
    strictTypes: false,
  });
  addFormatsPlugin.default(ajv, ['date-time']);
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && Math.abs(n) < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  for (const keyword of ANNOTATION_KEYWORDS) ajv.addKeyword({ keyword });
  ajv.addKeyword(celKeyword(job === 'check'));
  return ajv;
}

export class SchemaValidator {
  private readonly defaulter = newAjv('default');
  private readonly checker = newAjv('check');
  private readonly compiled = new Map<string, ValidateFunction>();

  /** Problems of a document, judged as the apiserver would (after defaulting); an empty list means valid. */
  check(schema: SchemaName, value: unknown): FieldError[] {
    return this.defaultAndCheck(schema, structuredClone(value));
  }

  /**
   * A valid document with its defaults filled in, as the apiserver would store it; the input is not changed.
   * Throws ValidationError naming every bad field.
   */
  parse<K extends SchemaName>(schema: K, value: unknown): SchemaTypes[K] {
    const copy: unknown = structuredClone(value);
    const errors = this.defaultAndCheck(schema, copy);
    if (errors.length > 0) throw new ValidationError(schema, errors);
    return copy as SchemaTypes[K];
  }

  private defaultAndCheck(schema: SchemaName, copy: unknown): FieldError[] {
    this.compile(this.defaulter, 'default', schema)(copy);
    const check = this.compile(this.checker, 'check', schema);
    return check(copy) ? [] : fieldErrors(check.errors ?? []);
  }

  private compile(ajv: Ajv2020, job: string, schema: SchemaName): ValidateFunction {
    const key = `${job}:${schema}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = ajv.compile(jsonSchemas[schema]);
      this.compiled.set(key, validate);
    }
    return validate;
  }
}

/** ajv's errors as field errors, one per problem, with kubectl-style paths. */
export function fieldErrors(errors: ErrorObject[]): FieldError[] {
  const out: FieldError[] = [];
  for (const error of errors) {
    // anyOf branches of an int-or-string report once through the anyOf error itself.
    if (error.schemaPath.includes('/anyOf/')) continue;
    const path = instancePath(error.instancePath);
    const params = error.params as Record<string, unknown>;
    switch (error.keyword) {
      case 'required':
        out.push({ path: join(path, String(params.missingProperty)), message: 'Required value' });
        break;
      case 'additionalProperties':
        out.push({ path: join(path, String(params.additionalProperty)), message: 'unknown field' });
        break;
      case 'enum':
        out.push({
          path,
          message: `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`,
        });
        break;
      case 'anyOf':
        out.push({ path, message: 'must be an integer or a string' });
        break;
      case 'x-kubernetes-validations':
        out.push({
          path: path + (typeof params.fieldPath === 'string' ? params.fieldPath : ''),
          message: error.message ?? 'invalid',
        });
        break;
      default:
        out.push({ path, message: error.message ?? error.keyword });
    }
  }
  return out;
}

function instancePath(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    path += /^\d+$/.test(part) ? `[${part}]` : path ? `.${part}` : part;
  }
  return path;
}

function join(path: string, field: string): string {
  return path ? `${path}.${field}` : field;
}
