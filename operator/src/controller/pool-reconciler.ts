// Reconciles one CloudPhonePool: owns its phone pods directly (as a GameServerSet does), made from the pool's
// template (whose labels the validating webhook made sure its stream selects, so each gets the sidecar) with the
// pool's label and an owner reference (so deleting the pool deletes them); runs the built-in buffer autoscaler when enabled; moves the pod count toward spec.replicas
// a capped number of pods per pass, deleting idle phones only; keeps each phone's pod-deletion-cost current; and
// writes status (replicas, ready, idle, busy, and the selector the /scale subresource gives HPA and KEDA).
// Claims bind phones by labelling them (cloudphone.io/claim); this reconciler only reads that label.
// Pools heal: a pod that ended (Failed, Succeeded: evicted, exited) or that no node would take for too long is
// deleted and replaced, with a Warning Event; one bound to a claim is left for the claim's reconciler, which
// records why its phone died first. Expectations (pool-expectations.ts) keep a pass from counting twice.

import { ApiException, type CoreV1Api, type CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Gauge } from 'prom-client';
import type {
  CloudPhoneClaim,
  CloudPhonePool,
  CloudPhonePoolStatus,
  CloudPhoneStream,
  Condition,
} from '../../../generated/ts/api-types.ts';
import { jsonPatchOptions, mergePatchOptions } from '../kube/patch-options.ts';
import type { ResilientInformer } from '../kube/resilient-informer.ts';
import type { Pods } from '../kube/pod-cache.ts';
import { API_VERSION, CLAIM_LABEL, DELETION_COST_ANNOTATION, GROUP, POOL_LABEL, VERSION } from '../labels.ts';
import { EventReason, PoolReason, setCondition } from './conditions.ts';
import type { EventRecorder } from './event-recorder.ts';
import type { Outcome } from './finalizer.ts';
import { PoolExpectations } from './pool-expectations.ts';
import { endReason, phoneOf, podEnded, poolPods, unschedulableSince } from './pool-phones.ts';
import { deletionCost, desiredReplicas, planPass, busy, type Phone } from './pool-scaling.ts';
import type { ReportStore } from './sidecar-reports.ts';
import type { StatusWriter } from './status-writer.ts';

const KIND = 'CloudPhonePool';
const PLURAL = 'cloudphonepools';
/** The built-in autoscaler looks again this often even when nothing changed (reports move busy counts). */
const AUTOSCALE_PERIOD_MS = 10_000;
/** When a pass could not do everything (capped), the next one comes at once. */
const NEXT_PASS_MS = 50;
/** Pod creations (and deletion-cost patches) in flight at once within a pass. */
const CREATE_CONCURRENCY = 10;
/** Deletion-cost annotations rewritten per pass, at most. */
const COST_PATCHES_PER_PASS = 50;

export interface PoolReconcilerOptions {
  pools: ResilientInformer<CloudPhonePool>;
  streams: ResilientInformer<CloudPhoneStream>;
  pods: Pods;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  statusWriter: StatusWriter;
  reports: ReportStore;
  claims: ResilientInformer<CloudPhoneClaim>;
  events: Pick<EventRecorder, 'record'>;
  metrics: PoolMetrics;
  log: Logger;
  /** A pod no node would take for this long is replaced (perhaps the template changed, or the nodes did). */
  unschedulableReplaceMs?: number;
}

const DEFAULT_UNSCHEDULABLE_REPLACE_MS = 5 * 60_000;
/** Names listed in a PodsReplaced Event, at most. */
const EVENT_NAMES = 5;

export interface PoolMetrics {
  poolPhones: Gauge<'namespace' | 'pool' | 'state'>;
  poolPendingClaims: Gauge<'namespace' | 'pool'>;
}

/** The pool a pod belongs to (its controller owner reference), as a work-queue key. */
export function poolKeyOf(pod: V1Pod): string | undefined {
  const owner = pod.metadata?.ownerReferences?.find((r) => r.controller && r.kind === KIND);
  return owner ? `${pod.metadata?.namespace ?? ''}/${owner.name}` : undefined;
}

export class PoolReconciler {
  private readonly o: PoolReconcilerOptions;
  private readonly expectations = new PoolExpectations();
  private readonly unschedulableReplaceMs: number;

  constructor(options: PoolReconcilerOptions) {
    this.o = options;
    this.unschedulableReplaceMs = options.unschedulableReplaceMs ?? DEFAULT_UNSCHEDULABLE_REPLACE_MS;
  }

  async reconcile(key: string): Promise<Outcome> {
    const [poolNamespace = '', poolName = ''] = key.split('/');
    const pool = this.o.pools.get(poolName, poolNamespace);
    // Deleted: its pods go with it (owner references, the garbage collector); so do its metrics.
    if (!pool?.metadata?.name || pool.metadata.deletionTimestamp) {
      for (const state of ['idle', 'busy', 'starting'])
        this.o.metrics.poolPhones.remove({ namespace: poolNamespace, pool: poolName, state });
      this.o.metrics.poolPendingClaims.remove({ namespace: poolNamespace, pool: poolName });
      this.expectations.forget(key);
      return {};
    }
    const namespace = pool.metadata.namespace ?? '';
    const name = pool.metadata.name;
    const stream = this.o.streams.get(pool.spec.streamRef.name, namespace);
    if (!stream)
      return this.blocked(
        pool,
        PoolReason.StreamNotFound,
        `CloudPhoneStream ${pool.spec.streamRef.name} does not exist`,
      );
    const cached = poolPods(this.o.pods, pool);
    const observed = this.expectations.observe(key, cached);
    const { pods, replaced } = await this.replaceDead(pool, key, cached);
    const phones = [
      ...pods.map((pod) => {
        const phone = this.phone(pod, stream);
        return observed.going.has(phone.name) ? { ...phone, deleting: true } : phone;
      }),
      // Created by an earlier pass, not in the cache yet: a phone starting.
      ...observed.unseen.map((name) => ({
        name,
        createdAt: Date.now(),
        ready: false,
        claimed: false,
        controlViewers: 0,
        deleting: false,
      })),
    ];
    let replicas = pool.spec.replicas ?? 0;
    const autoscaling = pool.spec.autoscaling;
    if (autoscaling && autoscaling.enabled !== false) {
      const wanted = desiredReplicas(phones, {
        minReplicas: autoscaling.minReplicas ?? 0,
        maxReplicas: autoscaling.maxReplicas,
        buffer: autoscaling.buffer ?? 1,
      });
      if (wanted !== replicas) {
        await this.setReplicas(pool, wanted);
        this.o.log.info({ pool: key, from: replicas, to: wanted }, 'autoscaled');
        await this.o.events.record(
          pool,
          'Normal',
          EventReason.Autoscaled,
          `autoscaled from ${String(replicas)} to ${String(wanted)} phones`,
        );
        replicas = wanted;
      }
    }

    const plan = planPass(phones, replicas, autoscaling?.maxChangePerPass ?? 50);
    let refused: string | undefined;
    let created = 0;
    // Creations go out CREATE_CONCURRENCY at a time (as a ReplicaSet's slow start does, without the slow part:
    // the pass is already capped). The first refusal stops the pass.
    for (let first = 0; first < plan.create && refused === undefined; first += CREATE_CONCURRENCY) {
      const batch = Math.min(CREATE_CONCURRENCY, plan.create - first);
      const results = await Promise.allSettled(Array.from({ length: batch }, () => this.createPhone(pool)));
      for (const result of results) {
        if (result.status === 'fulfilled') {
          created++;
          this.expectations.created(key, result.value);
          continue;
        }
        const error: unknown = result.reason;
        // The template is checked in full only here, by the apiserver: say why in status, not in a crash loop.
        if (error instanceof ApiException && error.code >= 400 && error.code < 500 && error.code !== 409)
          refused ??= apiMessage(error);
        else throw error;
      }
    }
    let deleted = 0;
    for (const pod of plan.delete)
      if (await this.deletePhone(namespace, pod, pods)) {
        deleted++;
        this.expectations.deleted(key, pod);
      }
    if (refused !== undefined)
      await this.o.events.record(pool, 'Warning', EventReason.PodsRefused, `the apiserver refused a phone: ${refused}`);
    await this.updateDeletionCosts(pods, phones);

    const live = phones.filter((p) => !p.deleting);
    const ready = live.filter((p) => p.ready);
    const status: CloudPhonePoolStatus = {
      observedGeneration: pool.metadata.generation,
      replicas: live.length + created - deleted,
      readyReplicas: ready.length,
      idleReplicas: ready.filter((p) => !busy(p)).length,
      busyReplicas: live.filter(busy).length,
      selector: `${POOL_LABEL}=${name}`,
      conditions: this.conditions(pool, refused, live.length, ready.length, replicas),
    };
    await this.o.statusWriter.write({ kind: KIND, plural: PLURAL, namespace, name }, status, pool.status);
    const labels = { namespace, pool: name };
    this.o.metrics.poolPhones.set({ ...labels, state: 'idle' }, status.idleReplicas ?? 0);
    this.o.metrics.poolPhones.set({ ...labels, state: 'busy' }, status.busyReplicas ?? 0);
    this.o.metrics.poolPhones.set({ ...labels, state: 'starting' }, live.length - ready.length);
    this.o.metrics.poolPendingClaims.set(
      labels,
      this.o.claims
        .list(namespace)
        .filter((c) => c.spec.poolRef.name === name && c.status?.phase !== 'Bound' && c.status?.phase !== 'Released')
        .length,
    );
    const unfinished = refused === undefined && (plan.create > 0 || plan.delete.length > 0 || replaced > 0);
    return { requeueAfterMs: unfinished ? NEXT_PASS_MS : AUTOSCALE_PERIOD_MS };
  }

  private phone(pod: V1Pod, stream: CloudPhoneStream): Phone {
    const viewers = this.o.reports.controlViewers(
      stream.metadata?.namespace ?? '',
      stream.metadata?.name ?? '',
      pod.metadata?.name ?? '',
    );
    return phoneOf(pod, viewers);
  }

  private async setReplicas(pool: CloudPhonePool, replicas: number): Promise<void> {
    await this.o.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: pool.metadata?.namespace ?? '',
        plural: PLURAL,
        name: pool.metadata?.name ?? '',
        body: { spec: { replicas } },
      },
      mergePatchOptions(),
    );
  }

  /**
   * Deletes the pods that ended or stay unschedulable, and returns the others. An ended pod bound to a claim that
   * is not Released yet stays (uncounted) until the claim's reconciler has recorded why and removed it.
   */
  private async replaceDead(
    pool: CloudPhonePool,
    key: string,
    all: readonly V1Pod[],
  ): Promise<{ pods: V1Pod[]; replaced: number }> {
    const now = Date.now();
    const pods: V1Pod[] = [];
    const dead: V1Pod[] = [];
    for (const pod of all) {
      const since = unschedulableSince(pod);
      if (podEnded(pod)) dead.push(pod);
      else if (since !== undefined && now - since > this.unschedulableReplaceMs && !pod.metadata?.deletionTimestamp)
        dead.push(pod);
      else pods.push(pod);
    }
    const removed: V1Pod[] = [];
    for (const pod of dead) {
      if (pod.metadata?.deletionTimestamp || this.claimStillHolds(pod)) continue;
      try {
        // Exactly the pod judged dead: a precondition on its uid and resourceVersion.
        await this.o.core.deleteNamespacedPod({
          namespace: pod.metadata?.namespace ?? '',
          name: pod.metadata?.name ?? '',
          body: { preconditions: { uid: pod.metadata?.uid, resourceVersion: pod.metadata?.resourceVersion } },
        });
        removed.push(pod);
        this.expectations.deleted(key, pod.metadata?.name ?? '');
      } catch (error) {
        if (!(error instanceof ApiException) || (error.code !== 404 && error.code !== 409)) throw error;
      }
    }
    if (removed.length > 0) {
      const names = removed
        .slice(0, EVENT_NAMES)
        .map((pod) => `${pod.metadata?.name ?? ''} (${endReason(pod)})`)
        .join(', ');
      const more = removed.length > EVENT_NAMES ? ` and ${String(removed.length - EVENT_NAMES)} more` : '';
      this.o.log.info({ pool: key, replaced: removed.length }, 'replacing phones that ended or cannot be scheduled');
      await this.o.events.record(
        pool,
        'Warning',
        EventReason.PodsReplaced,
        `replacing ${String(removed.length)} phone(s): ${names}${more}`,
      );
    }
    return { pods, replaced: removed.length };
  }

  /** An ended pod whose claim has not been released yet: the claim reconciler records why, then removes it. */
  private claimStillHolds(pod: V1Pod): boolean {
    const name = pod.metadata?.labels?.[CLAIM_LABEL];
    if (!name || !podEnded(pod)) return false;
    const claim = this.o.claims.get(name, pod.metadata?.namespace);
    return claim !== undefined && claim.status?.phase !== 'Released';
  }

  /** Creates one phone; returns its name (generated by the apiserver). */
  private async createPhone(pool: CloudPhonePool): Promise<string> {
    const name = pool.metadata?.name ?? '';
    const template = pool.spec.template;
    const created = await this.o.core.createNamespacedPod({
      namespace: pool.metadata?.namespace ?? '',
      body: {
        metadata: {
          generateName: `${name}-`,
          labels: { ...definedOnly(template.metadata?.labels), [POOL_LABEL]: name },
          annotations: { ...definedOnly(template.metadata?.annotations), [DELETION_COST_ANNOTATION]: '-100' },
          ownerReferences: [
            {
              apiVersion: API_VERSION,
              kind: KIND,
              name,
              uid: pool.metadata?.uid ?? '',
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: template.spec as never,
      },
    });
    return created.metadata?.name ?? '';
  }

  /** Deletes an idle phone, but only the pod we judged idle: a uid precondition, and not if it got a claim since. */
  /** Whether the pod was deleted (false: gone already, or changed since it was judged idle). */
  private async deletePhone(namespace: string, name: string, pods: readonly V1Pod[]): Promise<boolean> {
    const pod = pods.find((p) => p.metadata?.name === name);
    try {
      // A claim binds a phone by labelling its pod, which changes its resourceVersion: deleting with the
      // resourceVersion we judged it idle at fails (409) if it was claimed since, and the phone stays.
      await this.o.core.deleteNamespacedPod({
        namespace,
        name,
        body: { preconditions: { uid: pod?.metadata?.uid, resourceVersion: pod?.metadata?.resourceVersion } },
      });
      return true;
    } catch (error) {
      // Gone already, or changed since we looked (perhaps claimed): the next pass decides again.
      if (error instanceof ApiException && (error.code === 404 || error.code === 409)) return false;
      throw error;
    }
  }

  private async updateDeletionCosts(pods: readonly V1Pod[], phones: readonly Phone[]): Promise<void> {
    const stale: { pod: V1Pod; cost: string }[] = [];
    for (const [i, pod] of pods.entries()) {
      const phone = phones[i];
      if (!phone || phone.deleting) continue;
      const cost = String(deletionCost(phone));
      if (pod.metadata?.annotations?.[DELETION_COST_ANNOTATION] !== cost) stale.push({ pod, cost });
    }
    const todo = stale.slice(0, COST_PATCHES_PER_PASS);
    for (let first = 0; first < todo.length; first += CREATE_CONCURRENCY)
      await Promise.all(todo.slice(first, first + CREATE_CONCURRENCY).map(({ pod, cost }) => this.setCost(pod, cost)));
  }

  private async setCost(pod: V1Pod, cost: string): Promise<void> {
    const path = pod.metadata?.annotations
      ? `/metadata/annotations/${DELETION_COST_ANNOTATION.replace('/', '~1')}`
      : '/metadata/annotations';
    const value = pod.metadata?.annotations ? cost : { [DELETION_COST_ANNOTATION]: cost };
    await this.o.core
      .patchNamespacedPod(
        {
          namespace: pod.metadata?.namespace ?? '',
          name: pod.metadata?.name ?? '',
          body: [{ op: 'add', path, value }],
        },
        jsonPatchOptions(),
      )
      .catch((error: unknown) => {
        if (!(error instanceof ApiException) || error.code !== 404) throw error;
      });
  }

  private conditions(
    pool: CloudPhonePool,
    refused: string | undefined,
    live: number,
    ready: number,
    replicas: number,
  ): Condition[] {
    const now = new Date();
    const generation = pool.metadata?.generation;
    const current = pool.status?.conditions ?? [];
    if (refused !== undefined)
      return setCondition(
        current,
        {
          type: 'Ready',
          status: 'False',
          reason: PoolReason.PodsRefused,
          message: refused,
          observedGeneration: generation,
        },
        now,
      );
    const done = live === replicas && ready === replicas;
    return setCondition(
      current,
      {
        type: 'Ready',
        status: done ? 'True' : 'False',
        reason: done ? PoolReason.Scaled : PoolReason.Scaling,
        message: `${String(ready)} of ${String(replicas)} phones ready`,
        observedGeneration: generation,
      },
      now,
    );
  }

  private async blocked(pool: CloudPhonePool, reason: string, message: string): Promise<Outcome> {
    const status: CloudPhonePoolStatus = {
      ...pool.status,
      observedGeneration: pool.metadata?.generation,
      selector: `${POOL_LABEL}=${pool.metadata?.name ?? ''}`,
      conditions: setCondition(
        pool.status?.conditions ?? [],
        { type: 'Ready', status: 'False', reason, message, observedGeneration: pool.metadata?.generation },
        new Date(),
      ),
    };
    await this.o.statusWriter.write(
      { kind: KIND, plural: PLURAL, namespace: pool.metadata?.namespace ?? '', name: pool.metadata?.name ?? '' },
      status,
      pool.status,
    );
    return { requeueAfterMs: AUTOSCALE_PERIOD_MS };
  }
}

function definedOnly(map: Record<string, string | undefined> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(map ?? {}).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

function apiMessage(error: ApiException<unknown>): string {
  try {
    const body = (typeof error.body === 'string' ? JSON.parse(error.body) : error.body) as { message?: string };
    return body.message ?? `the apiserver refused the pod (${String(error.code)})`;
  } catch {
    return `the apiserver refused the pod (${String(error.code)})`;
  }
}
