// The phones of a pool as the reconcilers see them: its pods from the pods cache, and each one reduced to what
// the scaling and binding decisions (pool-scaling.ts) look at.

import type { V1Pod } from '@kubernetes/client-node';
import type { CloudPhonePool } from '../../../generated/ts/api-types.ts';
import type { ResilientInformer } from '../kube/resilient-informer.ts';
import { CLAIM_LABEL } from '../labels.ts';
import type { Phone } from './pool-scaling.ts';
import { isPodReady } from './stream-status.ts';

/** The phones of a pool, from the pods cache (pods the pool controls). */
export function poolPods(pods: ResilientInformer<V1Pod>, pool: CloudPhonePool): V1Pod[] {
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
