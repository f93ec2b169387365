// spec.rollout: restartExisting restarts a pod created without the sidecar so that its controller recreates it
// with one. That helps only where a controller will recreate the pod and the webhook will inject the new one:
// anything else would lose a phone (a bare pod is gone for good) or loop (deleted, recreated without a sidecar,
// deleted again). Such pods are reported, never deleted.

import type { V1Pod } from '@kubernetes/client-node';
import { INJECTION_ENABLED, INJECTION_LABEL } from '../labels.ts';

/** Owners that make a new pod when one of theirs goes. */
const RECREATING_OWNERS = new Set(['ReplicaSet', 'StatefulSet', 'Job', 'CloudPhonePool']);

/** Why a pod that needs the sidecar cannot be restarted for it; undefined when it can. */
export function cannotRestart(pod: V1Pod, namespaceLabels: Record<string, string | undefined>): string | undefined {
  if (namespaceLabels[INJECTION_LABEL] !== INJECTION_ENABLED) {
    return `namespace ${pod.metadata?.namespace ?? ''} is not labelled ${INJECTION_LABEL}=${INJECTION_ENABLED}, so a new pod would get no sidecar either`;
  }
  const owner = pod.metadata?.ownerReferences?.find((r) => r.controller);
  if (!owner) return 'no controller would recreate it (a bare pod)';
  if (!RECREATING_OWNERS.has(owner.kind)) return `its controller, a ${owner.kind}, is not one known to recreate it`;
  return undefined;
}
