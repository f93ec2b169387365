// The decisions of a CloudPhonePool, without any I/O, so that tests can drive them number by number: how many
// phones the built-in autoscaler wants (busy + buffer, within min..max), what one reconcile pass creates and
// deletes (capped per pass; only idle phones are ever deleted, those that cost least first), which idle phone a
// new claim gets, and the pod-deletion-cost each phone carries for anyone scaling pods through a ReplicaSet.
// In the spirit of Agones' Fleet and buffer autoscaler: a busy phone is never removed by scaling.

/** One phone pod of a pool, as the pool's reconciler sees it. */
export interface Phone {
  name: string;
  /** Creation time, ms since the epoch. */
  createdAt: number;
  ready: boolean;
  /** Bound to a CloudPhoneClaim. */
  claimed: boolean;
  /** Control viewers its sidecar reports connected (someone is using it without a claim). */
  controlViewers: number;
  /** Already being deleted (deletionTimestamp set): neither counted nor chosen again. */
  deleting: boolean;
}

export interface BufferAutoscaling {
  minReplicas: number;
  maxReplicas: number;
  /** Idle phones to keep: a number, or a percentage of busy phones ("20%"). */
  buffer: number | string;
}

export interface PassPlan {
  create: number;
  /** Names of the phones to delete, in order. */
  delete: string[];
}

export function busy(phone: Phone): boolean {
  return phone.claimed || phone.controlViewers > 0;
}

/** The buffer as a number of phones: a percentage of the busy phones is rounded up (20% of 1 busy is 1). */
export function bufferPhones(buffer: number | string, busyCount: number): number {
  if (typeof buffer === 'number') return buffer;
  const percent = /^([0-9]{1,3})%$/.exec(buffer)?.[1];
  if (percent === undefined) throw new Error(`buffer ${buffer} is neither a number nor a percentage`);
  return Math.ceil((busyCount * Number(percent)) / 100);
}

/** What the built-in autoscaler sets spec.replicas to: busy + buffer, within minReplicas..maxReplicas. */
export function desiredReplicas(phones: readonly Phone[], autoscaling: BufferAutoscaling): number {
  const busyCount = phones.filter((p) => !p.deleting && busy(p)).length;
  const wanted = busyCount + bufferPhones(autoscaling.buffer, busyCount);
  return Math.min(autoscaling.maxReplicas, Math.max(autoscaling.minReplicas, wanted));
}

/**
 * One pass toward `replicas` phones: at most maxChange creations or deletions. Deletions take idle phones
 * only (never one with a claim or a control viewer, even when replicas asks for fewer phones than are busy):
 * first those not Ready (nobody could use them yet), then the newest (the oldest have warmed up longest).
 */
export function planPass(phones: readonly Phone[], replicas: number, maxChange: number): PassPlan {
  const live = phones.filter((p) => !p.deleting);
  if (live.length < replicas) return { create: Math.min(replicas - live.length, maxChange), delete: [] };
  const excess = live.length - replicas;
  if (excess === 0) return { create: 0, delete: [] };
  const removable = live
    .filter((p) => !busy(p))
    .sort((a, b) => Number(a.ready) - Number(b.ready) || b.createdAt - a.createdAt || a.name.localeCompare(b.name));
  return { create: 0, delete: removable.slice(0, Math.min(excess, maxChange)).map((p) => p.name) };
}

/** The phone a new claim gets: an idle Ready one, the longest-running first (warmest caches). */
export function phoneForClaim(phones: readonly Phone[]): Phone | undefined {
  return phones
    .filter((p) => !p.deleting && p.ready && !busy(p))
    .sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name))[0];
}

/**
 * controller.kubernetes.io/pod-deletion-cost for a phone: a ReplicaSet scaling down removes the lowest first.
 * Busy phones cost the most; an idle Ready phone less; a phone not Ready yet least.
 */
export function deletionCost(phone: Phone): number {
  if (busy(phone)) return 1000 + Math.min(phone.controlViewers, 100);
  return phone.ready ? 0 : -100;
}
