// Kubernetes label selectors, evaluated the way the apiserver does.

import type { LabelSelector } from '../../../generated/ts/api-types.ts';

export function selectorMatches(
  selector: LabelSelector,
  labels: Record<string, string | undefined> | undefined,
): boolean {
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (have[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, key);
    const value = have[key];
    switch (operator) {
      case 'In':
        if (!present || value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (present && value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
    }
  }
  // An empty selector matches nothing here: the CRD forbids it, and streaming every pod is never what was meant.
  return Object.keys(selector.matchLabels ?? {}).length > 0 || (selector.matchExpressions ?? []).length > 0;
}

/** The selector in the apiserver's string form, for list calls and the scale subresource. */
export function selectorString(selector: LabelSelector): string {
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    if (operator === 'In') parts.push(`${key} in (${values.join(',')})`);
    else if (operator === 'NotIn') parts.push(`${key} notin (${values.join(',')})`);
    else if (operator === 'Exists') parts.push(key);
    else parts.push(`!${key}`);
  }
  return parts.join(',');
}

/**
 * Whether some set of labels could satisfy both selectors. Used to refuse a stream whose selector overlaps
 * another's: a pod can carry only one sidecar. Exact for the selector language: per key, the sets of values
 * each selector allows (with "absent" as one more value) must intersect.
 */
export function selectorsOverlap(a: LabelSelector, b: LabelSelector): boolean {
  const keys = new Set([...keysOf(a), ...keysOf(b)]);
  for (const key of keys) {
    const allowedA = allowedValues(a, key);
    const allowedB = allowedValues(b, key);
    if (!intersects(allowedA, allowedB)) return false;
  }
  return true;
}

function keysOf(selector: LabelSelector): string[] {
  return [...Object.keys(selector.matchLabels ?? {}), ...(selector.matchExpressions ?? []).map((e) => e.key)];
}

/** What a selector allows for one key: absent or not, and which values (a finite set, or all but some). */
interface Allowed {
  absent: boolean;
  only?: Set<string>;
  except: Set<string>;
}

function allowedValues(selector: LabelSelector, key: string): Allowed {
  const allowed: Allowed = { absent: true, except: new Set() };
  const restrict = (values: string[]): void => {
    const next = new Set(values);
    allowed.only = allowed.only ? new Set([...allowed.only].filter((v) => next.has(v))) : next;
  };
  const fixed = selector.matchLabels?.[key];
  if (fixed !== undefined) {
    allowed.absent = false;
    restrict([fixed]);
  }
  for (const e of selector.matchExpressions ?? []) {
    if (e.key !== key) continue;
    if (e.operator === 'In') {
      allowed.absent = false;
      restrict(e.values ?? []);
    } else if (e.operator === 'NotIn') {
      for (const v of e.values ?? []) allowed.except.add(v);
    } else if (e.operator === 'Exists') {
      allowed.absent = false;
    } else {
      allowed.only = new Set();
    }
  }
  return allowed;
}

function intersects(a: Allowed, b: Allowed): boolean {
  if (a.absent && b.absent) return true;
  const except = new Set([...a.except, ...b.except]);
  if (a.only && b.only) return [...a.only].some((v) => b.only?.has(v) && !except.has(v));
  const finite = a.only ?? b.only;
  // Both allow any value but a finite few: some value is left.
  if (!finite) return true;
  return [...finite].some((v) => !except.has(v));
}
