// The phones of a pool as the reconcilers see them: its pods from the pods cache, and each one reduced to what
// the scaling and binding decisions (pool-scaling.ts) look at.

import type { V1Pod } from '@kubernetes/client-node';
import type { CloudPhonePool } from '../../../generated/ts/api-types.ts';
import type { Pods } from '../kube/pod-cache.ts';
import { CLAIM_LABEL } from '../labels.ts';
import type { Phone } from './pool-scaling.ts';
import { isPodReady } from './stream-status.ts';

/** The phones of a pool, from the pods cache (pods the pool controls). */
export function poolPods(pods: Pods, pool: CloudPhonePool): V1Pod[] {
  const uid = pool.metadata?.uid;
  return pods
    .list(pool.metadata?.namespace)
    .filter((pod) => pod.metadata?.ownerReferences?.some((r) => r.controller && r.uid === uid));
}

/** A pod as the scaling decisions see it: claimed by its label, busy also with control viewers connected. */
export function phoneOf(pod: V1Pod, controlViewers: number): Phone {
  return {
    name: pod.metadata?.name ?? '',
    createdAt: new Date(pod.metadata?.creationTimestamp ?? 0).getTime(),
    ready: isPodReady(pod),
    claimed: Boolean(pod.metadata?.labels?.[CLAIM_LABEL]),
    controlViewers,
    deleting: Boolean(pod.metadata?.deletionTimestamp),
  };
}

/** A pod that will not run again: its containers ended (Succeeded) or it failed (evicted, an exit it may not restart). */
export function podEnded(pod: V1Pod): boolean {
  return pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded';
}

/** Since when the scheduler has found no node for a Pending pod (ms since the epoch), or undefined. */
export function unschedulableSince(pod: V1Pod): number | undefined {
  if (pod.status?.phase !== 'Pending' || pod.spec?.nodeName) return undefined;
  const scheduled = pod.status.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status !== 'False' || scheduled.reason !== 'Unschedulable') return undefined;
  return new Date(scheduled.lastTransitionTime ?? 0).getTime();
}

/** Why an ended or stuck pod is being replaced, for the Event: its phase and reason. */
export function endReason(pod: V1Pod): string {
  if (unschedulableSince(pod) !== undefined) return 'Unschedulable';
  return [pod.status?.phase, pod.status?.reason].filter(Boolean).join(' ');
}
