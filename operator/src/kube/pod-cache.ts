// The operator's view of pods, without keeping every pod of the cluster in memory. Full objects only for the
// pods it works with: injected phones (labelled cloudphone.io/stream by the webhook), pool phones (labelled
// cloudphone.io/pool when the pool makes them) and its own replicas (its namespace, its labels). Of every other
// pod (every pod without those two labels) only the metadata is kept (the apiserver sends PartialObjectMetadata), which is all a stream needs of a pod
// its selector matches but that carries no sidecar yet (labels, owners, deletion). Even the full objects are
// trimmed to what the reconcilers read (trimPod): an injected pod's spec, with the sidecar's config, and its
// container statuses are most of its size, and nothing here reads them; managedFields go from everything.
//
// Readers get one pod per name: the full object where there is one, else the metadata.

import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { POOL_LABEL, STREAM_LABEL } from '../labels.ts';
import { ResilientInformer } from './resilient-informer.ts';

const METADATA_ONLY = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const METADATA_ONLY_WATCH = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

export interface PodCacheOptions {
  kubeConfig: KubeConfig;
  /** How the metadata-only client is made (its Accept header differs): given the Accept header to send. */
  metadataKubeConfig: (accept: string) => KubeConfig;
  log: Logger;
  /** The operator's own pods: their namespace and labels (no labels: none are watched). */
  peers: { namespace: string; labels: Record<string, string> };
}

type Handler = (pod: V1Pod) => void;

/** What the reconcilers read of pods (the PodCache; a plain map in unit tests). */
export interface Pods {
  get(name: string, namespace?: string): V1Pod | undefined;
  list(namespace?: string): readonly V1Pod[];
}

function trim(pod: V1Pod): void {
  if (pod.metadata) delete pod.metadata.managedFields;
}

/** Keeps of a pod what the operator reads: its metadata, where it was scheduled, and its phase and readiness. */
export function trimPod(pod: V1Pod): void {
  trim(pod);
  if (pod.spec) pod.spec = { nodeName: pod.spec.nodeName } as V1Pod['spec'];
  const status = pod.status;
  if (status)
    pod.status = {
      phase: status.phase,
      reason: status.reason,
      message: status.message,
      conditions: status.conditions?.map(({ type, status: value, reason, message, lastTransitionTime }) => ({
        type,
        status: value,
        reason,
        message,
        lastTransitionTime,
      })),
      podIP: status.podIP,
      podIPs: status.podIPs,
      startTime: status.startTime,
    };
}

export class PodCache implements Pods {
  private readonly full: ResilientInformer<V1Pod>[];
  private readonly metadata: ResilientInformer<V1Pod>;

  constructor(o: PodCacheOptions) {
    const core = o.kubeConfig.makeApiClient(CoreV1Api);
    const labelled = (name: string, label: string): ResilientInformer<V1Pod> =>
      new ResilientInformer<V1Pod>({
        name,
        kubeConfig: o.kubeConfig,
        path: '/api/v1/pods',
        labelSelector: label,
        list: () => core.listPodForAllNamespaces({ labelSelector: label }),
        trim: trimPod,
        log: o.log,
      });
    this.full = [labelled('phone-pods', STREAM_LABEL), labelled('pool-pods', POOL_LABEL)];
    const peerSelector = Object.entries(o.peers.labels)
      .map(([key, value]) => `${key}=${value}`)
      .join(',');
    if (peerSelector)
      this.full.push(
        new ResilientInformer<V1Pod>({
          name: 'operator-pods',
          kubeConfig: o.kubeConfig,
          path: `/api/v1/namespaces/${o.peers.namespace}/pods`,
          labelSelector: peerSelector,
          list: () => core.listNamespacedPod({ namespace: o.peers.namespace, labelSelector: peerSelector }),
          trim: trimPod,
          log: o.log,
        }),
      );
    // Lists and watches of this client ask for metadata only; a watch event carries one object, a list many.
    const metadataCore = o.metadataKubeConfig(METADATA_ONLY).makeApiClient(CoreV1Api);
    const watchMetadata = o.metadataKubeConfig(METADATA_ONLY_WATCH);
    // Of the pods the other caches hold in full, no second copy: phones are labelled at creation (by the webhook
    // or the pool) and keep their label; one that loses it leaves the full cache and arrives here.
    const others = `!${STREAM_LABEL},!${POOL_LABEL}`;
    this.metadata = new ResilientInformer<V1Pod>({
      name: 'pod-metadata',
      kubeConfig: watchMetadata,
      path: '/api/v1/pods',
      labelSelector: others,
      list: () => metadataCore.listPodForAllNamespaces({ labelSelector: others }),
      trim,
      log: o.log,
    });
  }

  /** Resolves once every cache has been filled. */
  async start(): Promise<void> {
    await Promise.all([...this.full, this.metadata].map((informer) => informer.start()));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.full, this.metadata].map((informer) => informer.stop()));
  }

  get restarts(): number {
    return [...this.full, this.metadata].reduce((sum, informer) => sum + informer.restarts, 0);
  }

  /** A pod with spec and status if it is one of ours, else its metadata only. */
  get(name: string, namespace?: string): V1Pod | undefined {
    for (const informer of this.full) {
      const pod = informer.get(name, namespace);
      if (pod) return pod;
    }
    return this.metadata.get(name, namespace);
  }

  /** Every pod (of a namespace), each once: full objects where there are, metadata for the rest. */
  list(namespace?: string): V1Pod[] {
    // The caches do not overlap by their selectors, except a pool's phone, which also carries a stream label
    // once injected, and an operator pod, which carries neither; so no map is built on this hot path.
    const [phones, pooled, ...rest] = this.full;
    const pods = [...(phones?.list(namespace) ?? [])];
    for (const pod of pooled?.list(namespace) ?? []) if (!pod.metadata?.labels?.[STREAM_LABEL]) pods.push(pod);
    for (const informer of rest)
      for (const pod of informer.list(namespace))
        if (!pod.metadata?.labels?.[STREAM_LABEL] && !pod.metadata?.labels?.[POOL_LABEL]) pods.push(pod);
    // An operator pod is also in the metadata cache: skip it there.
    const peers = new Set(rest.flatMap((informer) => informer.list(namespace).map(keyOf)));
    for (const pod of this.metadata.list(namespace)) if (peers.size === 0 || !peers.has(keyOf(pod))) pods.push(pod);
    return pods;
  }

  /** A change to any pod (a pool's injected phone is reported by both full caches; handlers only enqueue). */
  on(event: 'add' | 'update' | 'delete', handler: Handler): void {
    for (const informer of [...this.full, this.metadata]) informer.on(event, handler);
  }

  /** Pods held in full and as metadata only, for the metric. */
  counts(): { full: number; metadata: number } {
    return {
      full: this.full.reduce((sum, informer) => sum + informer.list().length, 0),
      metadata: this.metadata.list().length,
    };
  }
}

function keyOf(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}
