// The one way the operator uses finalizers (after kube-runtime's finalizer helper): a resource that is not
// being deleted gets the finalizer and then its apply path; one being deleted gets its cleanup path, and the
// finalizer comes off only after cleanup succeeded. Patches test the list first, so a concurrent change to the
// finalizers makes the patch fail and the reconcile retry rather than clobber it.

import type { KubernetesObject } from '@kubernetes/client-node';

export type JsonPatch = (
  | { op: 'test' | 'add' | 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string }
)[];

export interface FinalizerTarget {
  patch(object: KubernetesObject, patch: JsonPatch): Promise<void>;
}

export interface Outcome {
  requeueAfterMs?: number;
}

export async function withFinalizer(
  object: KubernetesObject,
  finalizer: string,
  target: FinalizerTarget,
  apply: () => Promise<Outcome>,
  cleanup: () => Promise<Outcome & { done: boolean }>,
): Promise<Outcome> {
  const finalizers = object.metadata?.finalizers ?? [];
  const index = finalizers.indexOf(finalizer);
  if (object.metadata?.deletionTimestamp) {
    if (index < 0) return {}; // not ours to hold up
    const result = await cleanup();
    if (!result.done) return { requeueAfterMs: result.requeueAfterMs ?? 1000 };
    await target.patch(object, [
      { op: 'test', path: `/metadata/finalizers/${String(index)}`, value: finalizer },
      { op: 'remove', path: `/metadata/finalizers/${String(index)}` },
    ]);
    return {};
  }
  if (index < 0) {
    await target.patch(
      object,
      object.metadata?.finalizers === undefined
        ? [{ op: 'add', path: '/metadata/finalizers', value: [finalizer] }]
        : [
            { op: 'test', path: '/metadata/finalizers', value: finalizers },
            { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
          ],
    );
  }
  return apply();
}
