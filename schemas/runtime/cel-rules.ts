// Evaluates a schema's x-kubernetes-validations (CEL) rules in-process, as the apiserver does for the CRDs,
// so the sidecar's config and the webhook's annotation overrides obey the same cross-field rules.
//
// Transition rules (those that read oldSelf) only make sense on an update the apiserver sees; they are
// skipped here.

import { parse } from '@marcbachmann/cel-js';

export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: string;
}

export interface CelViolation {
  message: string;
  fieldPath: string;
}

type Schema = Record<string, unknown>;
type Program = ReturnType<typeof parse>;

export class CelRuleSet {
  private readonly programs: { rule: CelRule; program: Program }[];
  private readonly schema: Schema;

  /** Compiles every rule up front: a rule that does not parse is a bug in schemas/json, not bad input. */
  constructor(rules: CelRule[], schema: Schema) {
    this.schema = schema;
    this.programs = rules
      .filter((rule) => !/\boldSelf\b/.test(rule.rule))
      .map((rule) => {
        try {
          return { rule, program: parse(rule.rule) };
        } catch (error) {
          throw new Error(`CEL rule does not compile: ${rule.rule}: ${(error as Error).message}`);
        }
      });
  }

  violations(value: unknown): CelViolation[] {
    const self = withCelIntegers(value, this.schema);
    const found: CelViolation[] = [];
    for (const { rule, program } of this.programs) {
      let holds: unknown;
      try {
        holds = program({ self });
      } catch (error) {
        // The apiserver reports a rule that fails to evaluate as invalid input too.
        const reason = (error as Error).message.split('\n')[0] ?? '';
        found.push({ message: `${ruleMessage(rule)} (${reason})`, fieldPath: rule.fieldPath ?? '' });
        continue;
      }
      if (holds !== true) found.push({ message: ruleMessage(rule), fieldPath: rule.fieldPath ?? '' });
    }
    return found;
  }
}

function ruleMessage(rule: CelRule): string {
  return rule.message ?? `failed rule: ${rule.rule}`;
}

/**
 * CEL tells int from double; JSON does not. The apiserver types values by the schema, so do we: integer fields
 * become BigInt (cel-js's int), everything else is left as it is.
 */
export function withCelIntegers(value: unknown, schema: Schema | undefined): unknown {
  if (schema === undefined) return value;
  if (typeof value === 'number') {
    const integral = schema.type === 'integer' || schema['x-kubernetes-int-or-string'] === true;
    return integral && Number.isInteger(value) ? BigInt(value) : value;
  }
  if (Array.isArray(value)) return value.map((item) => withCelIntegers(item, schema.items as Schema | undefined));
  if (value !== null && typeof value === 'object') {
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    const additional = schema.additionalProperties;
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      const childSchema = properties[key] ?? (typeof additional === 'object' ? (additional as Schema) : undefined);
      out[key] = withCelIntegers(child, childSchema);
    }
    return out;
  }
  return value;
}
