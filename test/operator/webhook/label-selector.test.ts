import { describe, expect, it } from 'vitest';
import type { LabelSelector } from '../../../generated/ts/api-types.ts';
import { selectorMatches, selectorsOverlap, selectorString } from '../../../operator/src/webhook/label-selector.ts';

describe('selectorMatches', () => {
  const selector: LabelSelector = {
    matchLabels: { app: 'phone' },
    matchExpressions: [
      { key: 'tier', operator: 'In', values: ['gold', 'silver'] },
      { key: 'canary', operator: 'DoesNotExist' },
      { key: 'zone', operator: 'NotIn', values: ['b'] },
    ],
  };

  it('requires every requirement', () => {
    expect(selectorMatches(selector, { app: 'phone', tier: 'gold' })).toBe(true);
    expect(selectorMatches(selector, { app: 'phone', tier: 'gold', zone: 'a' })).toBe(true);
    expect(selectorMatches(selector, { app: 'phone', tier: 'bronze' })).toBe(false);
    expect(selectorMatches(selector, { app: 'phone', tier: 'gold', canary: '' })).toBe(false);
    expect(selectorMatches(selector, { app: 'phone', tier: 'gold', zone: 'b' })).toBe(false);
    expect(selectorMatches(selector, { tier: 'gold' })).toBe(false);
  });

  it('matches nothing with an empty selector', () => {
    expect(selectorMatches({}, { app: 'phone' })).toBe(false);
  });

  it('writes the selector as the apiserver parses it', () => {
    expect(selectorString(selector)).toBe('app=phone,tier in (gold,silver),!canary,zone notin (b)');
  });
});

describe('selectorsOverlap', () => {
  const cases: [string, LabelSelector, LabelSelector, boolean][] = [
    ['the same labels', { matchLabels: { app: 'a' } }, { matchLabels: { app: 'a' } }, true],
    ['different values of one key', { matchLabels: { app: 'a' } }, { matchLabels: { app: 'b' } }, false],
    ['different keys', { matchLabels: { app: 'a' } }, { matchLabels: { tier: 'gold' } }, true],
    [
      'Exists against a value',
      { matchExpressions: [{ key: 'app', operator: 'Exists' }] },
      { matchLabels: { app: 'a' } },
      true,
    ],
    [
      'Exists against DoesNotExist',
      { matchExpressions: [{ key: 'app', operator: 'Exists' }] },
      { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] },
      false,
    ],
    [
      'In sets that share a value',
      { matchExpressions: [{ key: 'app', operator: 'In', values: ['a', 'b'] }] },
      { matchExpressions: [{ key: 'app', operator: 'In', values: ['b', 'c'] }] },
      true,
    ],
    [
      'In sets that share none',
      { matchExpressions: [{ key: 'app', operator: 'In', values: ['a'] }] },
      { matchExpressions: [{ key: 'app', operator: 'In', values: ['c'] }] },
      false,
    ],
    [
      'a value the other excludes',
      { matchLabels: { app: 'a' } },
      { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['a'] }] },
      false,
    ],
    [
      'NotIn against NotIn',
      { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['a'] }] },
      { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['b'] }] },
      true,
    ],
    [
      'a label against its absence',
      { matchLabels: { app: 'a' } },
      { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] },
      false,
    ],
  ];
  it.each(cases)('%s', (_name, a, b, overlap) => {
    expect(selectorsOverlap(a, b)).toBe(overlap);
    expect(selectorsOverlap(b, a)).toBe(overlap);
  });
});
