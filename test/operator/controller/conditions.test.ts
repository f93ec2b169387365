import { describe, expect, it } from 'vitest';
import { setCondition } from '../../../operator/src/controller/conditions.ts';

describe('setCondition', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const t1 = new Date('2026-01-01T00:05:00Z');

  it('keeps lastTransitionTime while the status stays the same, and moves it when the status changes', () => {
    const first = setCondition([], { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, t0);
    const same = setCondition(first, { type: 'Ready', status: 'False', reason: 'B', message: 'b' }, t1);
    expect(same[0]).toMatchObject({ reason: 'B', lastTransitionTime: '2026-01-01T00:00:00Z' });
    const flipped = setCondition(same, { type: 'Ready', status: 'True', reason: 'C', message: 'c' }, t1);
    expect(flipped[0]?.lastTransitionTime).toBe('2026-01-01T00:05:00Z');
  });

  it('keeps one condition per type, sorted by type', () => {
    let conditions = setCondition([], { type: 'Ready', status: 'True', reason: 'R', message: '' }, t0);
    conditions = setCondition(conditions, { type: 'Degraded', status: 'False', reason: 'D', message: '' }, t0);
    conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: 'R2', message: '' }, t0);
    expect(conditions.map((c) => c.type)).toEqual(['Degraded', 'Ready']);
  });
});
