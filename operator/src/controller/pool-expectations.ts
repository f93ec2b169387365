// What a pool's reconciler has asked of the apiserver and its pods cache has not shown yet, in the manner of
// controller-runtime's (and the ReplicaSet controller's) expectations: pods it created and the cache does not
// list yet count as phones, pods it deleted and the cache still lists count as going. Without this, a pass that
// follows the last one by a few milliseconds sees the pool short of phones and creates them a second time.
// An expectation the cache never meets (a watch event lost) expires, so a pool is never stuck on one.

import type { V1Pod } from '@kubernetes/client-node';

const DEFAULT_TTL_MS = 5 * 60_000;

interface Expected {
  creates: Map<string, number>;
  deletes: Map<string, number>;
}

export interface Observed {
  /** Created by us, not in the cache yet. */
  unseen: string[];
  /** Deleted by us, still in the cache without a deletionTimestamp. */
  going: Set<string>;
}

export class PoolExpectations {
  private readonly pools = new Map<string, Expected>();
  private readonly ttlMs: number;

  constructor(ttlMs = DEFAULT_TTL_MS) {
    this.ttlMs = ttlMs;
  }

  created(pool: string, pod: string, now = Date.now()): void {
    this.of(pool).creates.set(pod, now);
  }

  deleted(pool: string, pod: string, now = Date.now()): void {
    this.of(pool).deletes.set(pod, now);
  }

  /** Settles the expectations the cache now meets, and returns those it does not meet yet. */
  observe(pool: string, cached: readonly V1Pod[], now = Date.now()): Observed {
    const expected = this.pools.get(pool);
    if (!expected) return { unseen: [], going: new Set() };
    const byName = new Map(cached.map((pod) => [pod.metadata?.name ?? '', pod]));
    for (const [name, at] of expected.creates)
      if (byName.has(name) || now - at > this.ttlMs) expected.creates.delete(name);
    for (const [name, at] of expected.deletes) {
      const pod = byName.get(name);
      if (!pod || pod.metadata?.deletionTimestamp || now - at > this.ttlMs) expected.deletes.delete(name);
    }
    if (expected.creates.size === 0 && expected.deletes.size === 0) this.pools.delete(pool);
    return { unseen: [...expected.creates.keys()], going: new Set(expected.deletes.keys()) };
  }

  /** The pool is gone. */
  forget(pool: string): void {
    this.pools.delete(pool);
  }

  private of(pool: string): Expected {
    let expected = this.pools.get(pool);
    if (!expected) {
      expected = { creates: new Map(), deletes: new Map() };
      this.pools.set(pool, expected);
    }
    return expected;
  }
}
