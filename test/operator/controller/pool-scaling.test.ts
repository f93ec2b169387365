import { describe, expect, it } from 'vitest';
import {
  bufferPhones,
  deletionCost,
  desiredReplicas,
  phoneForClaim,
  planPass,
  type Phone,
} from '../../../operator/src/controller/pool-scaling.ts';

function phone(name: string, createdAt: number, state: Partial<Phone> = {}): Phone {
  return { name, createdAt, ready: true, claimed: false, controlViewers: 0, deleting: false, ...state };
}

describe('the buffer autoscaler', () => {
  it('wants busy + buffer phones, within min and max', () => {
    const phones = [phone('a', 1, { claimed: true }), phone('b', 2, { controlViewers: 1 }), phone('c', 3)];
    expect(desiredReplicas(phones, { minReplicas: 2, maxReplicas: 300, buffer: 5 })).toBe(7);
    expect(desiredReplicas(phones, { minReplicas: 10, maxReplicas: 300, buffer: 5 })).toBe(10);
    expect(desiredReplicas(phones, { minReplicas: 0, maxReplicas: 4, buffer: 5 })).toBe(4);
    // A phone being deleted is not busy any more.
    expect(
      desiredReplicas([phone('a', 1, { claimed: true, deleting: true })], {
        minReplicas: 0,
        maxReplicas: 9,
        buffer: 1,
      }),
    ).toBe(1);
  });

  it('reads a percentage buffer of the busy phones, rounded up', () => {
    expect(bufferPhones('20%', 0)).toBe(0);
    expect(bufferPhones('20%', 1)).toBe(1);
    expect(bufferPhones('20%', 200)).toBe(40);
    expect(bufferPhones(3, 200)).toBe(3);
    expect(() => bufferPhones('lots', 1)).toThrow('neither a number nor a percentage');
  });
});

describe('a reconcile pass', () => {
  it('creates what is missing, at most maxChange a pass', () => {
    expect(planPass([phone('a', 1)], 205, 50)).toEqual({ create: 50, delete: [] });
    expect(planPass([phone('a', 1), phone('b', 2, { deleting: true })], 3, 50)).toEqual({ create: 2, delete: [] });
    expect(planPass([phone('a', 1)], 1, 50)).toEqual({ create: 0, delete: [] });
  });

  it('deletes idle phones only: not Ready first, then the newest; never a busy one', () => {
    const phones = [
      phone('old-idle', 1),
      phone('claimed', 2, { claimed: true }),
      phone('new-idle', 5),
      phone('starting', 6, { ready: false }),
      phone('watched', 7, { controlViewers: 2 }),
    ];
    expect(planPass(phones, 4, 50).delete).toEqual(['starting']);
    expect(planPass(phones, 2, 50).delete).toEqual(['starting', 'new-idle', 'old-idle']);
    // Asked for fewer phones than are busy: the busy ones stay.
    expect(planPass(phones, 0, 50).delete).toEqual(['starting', 'new-idle', 'old-idle']);
    expect(planPass(phones, 0, 2).delete).toEqual(['starting', 'new-idle']);
  });
});

describe('binding and deletion cost', () => {
  it('gives a claim the longest-running idle Ready phone, and none when there is none', () => {
    const phones = [phone('b', 5), phone('a', 3), phone('c', 1, { claimed: true }), phone('d', 0, { ready: false })];
    expect(phoneForClaim(phones)?.name).toBe('a');
    expect(phoneForClaim([phone('c', 1, { claimed: true }), phone('d', 0, { ready: false })])).toBeUndefined();
  });

  it('makes busy phones the most expensive to delete and starting ones the cheapest', () => {
    expect(deletionCost(phone('busy', 1, { claimed: true }))).toBeGreaterThan(deletionCost(phone('idle', 1)));
    expect(deletionCost(phone('idle', 1))).toBeGreaterThan(deletionCost(phone('starting', 1, { ready: false })));
  });
});
