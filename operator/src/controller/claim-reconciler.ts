// Reconciles one CloudPhoneClaim: binds it to one idle Ready phone of its pool, atomically, and releases the
// phone when the claim is deleted.
//
// Binding is a JSON patch on the phone's pod that first tests the resourceVersion the reconciler saw and then
// adds the cloudphone.io/claim label: if anything changed the pod since (another claim bound it, in this process
// or another replica with a stale cache), the apiserver refuses the whole patch and the claim tries again with a
// fresh look. So no phone is ever bound twice. The pod's label is the truth; status.pod mirrors it.
//
// Release (the claim's finalizer): the pool's recycle policy decides: delete (the default) deletes the phone, so
// the pool makes a fresh one; reuse takes the label off and the phone is idle again.
//
// The pods cache may lag behind the label this reconciler itself just wrote. So whenever the cache shows no phone
// for a claim and that matters (before marking a Bound claim Released, before binding a new phone, on release),
// the apiserver is asked (a list by the claim label): a claim is never Released while its phone is still there,
// never gets a second phone, and its release finds the phone it was given a moment ago. A phone that died
// (Failed or Succeeded: evicted, its container exited) releases its claim with the reason, and an Event.

import { createHash, randomBytes } from 'node:crypto';
import { ApiException, type CoreV1Api, type CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type {
  CloudPhoneClaim,
  CloudPhoneClaimStatus,
  CloudPhonePool,
  CloudPhoneStream,
} from '../../../generated/ts/api-types.ts';
import { jsonPatchOptions } from '../kube/patch-options.ts';
import type { ResilientInformer } from '../kube/resilient-informer.ts';
import type { Pods } from '../kube/pod-cache.ts';
import {
  API_VERSION,
  CLAIM_ACCESS_ANNOTATION,
  CLAIM_LABEL,
  CLAIM_TOKEN_DIGEST_ANNOTATION,
  CLAIM_TOKEN_SECRET_ANNOTATION,
  GROUP,
  VERSION,
} from '../labels.ts';
import { ClaimReason, EventReason, setCondition } from './conditions.ts';
import type { EventRecorder } from './event-recorder.ts';
import { withFinalizer, type JsonPatch, type Outcome } from './finalizer.ts';
import { phoneOf, poolPods } from './pool-phones.ts';
import { phoneForClaim } from './pool-scaling.ts';
import type { ReportStore } from './sidecar-reports.ts';
import type { StatusWriter } from './status-writer.ts';

export const CLAIM_FINALIZER = 'cloudphone.io/release';
const KIND = 'CloudPhoneClaim';
const PLURAL = 'cloudphoneclaims';
/** A claim that could not bind looks again this often (and whenever its pool's phones change). */
const PENDING_RETRY_MS = 2000;

interface ClaimToken {
  uid: string;
  secretName: string;
  digest: string;
}

export interface ClaimMetrics {
  claimBound(seconds: number): void;
}

export interface ClaimReconcilerOptions {
  claims: ResilientInformer<CloudPhoneClaim>;
  reports: ReportStore;
  pools: ResilientInformer<CloudPhonePool>;
  streams: ResilientInformer<CloudPhoneStream>;
  pods: Pods;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  statusWriter: StatusWriter;
  events: Pick<EventRecorder, 'record'>;
  metrics: ClaimMetrics;
  log: Logger;
}

/** How long a phone this process just bound is kept off the candidates while the pods cache catches up. */
const RESERVATION_MS = 30_000;

export class ClaimReconciler {
  private readonly o: ClaimReconcilerOptions;
  /**
   * Phones this process bound whose label the cache may not show yet: other claims reconciled meanwhile do not
   * try them (they would only lose the apiserver's test and retry). Correctness does not rest on it.
   */
  private readonly reserved = new Map<string, number>();
  /** When this process first saw each unbound claim (creationTimestamp has only whole seconds). */
  private readonly firstSeen = new Map<string, number>();
  /** Tokens made for claims not bound yet, by claim key, with the claim's uid (dropped once bound or gone). */
  private readonly tokens = new Map<string, ClaimToken>();

  constructor(options: ClaimReconcilerOptions) {
    this.o = options;
  }

  async reconcile(key: string): Promise<Outcome> {
    const [namespace = '', name = ''] = key.split('/');
    const claim = this.o.claims.get(name, namespace);
    if (!claim) {
      this.firstSeen.delete(key);
      this.tokens.delete(key);
      return {};
    }
    if (!this.firstSeen.has(key) && claim.status?.phase !== 'Bound') this.firstSeen.set(key, performance.now());
    return withFinalizer(
      claim,
      CLAIM_FINALIZER,
      { patch: async (_object, patch) => this.patchClaim(namespace, name, patch) },
      () => this.bind(claim),
      async () => ({ ...(await this.release(claim)), done: true }),
    );
  }

  /** The pod bound to a claim, by its label (the truth), from the cache. */
  boundPod(claim: CloudPhoneClaim): V1Pod | undefined {
    return this.o.pods
      .list(claim.metadata?.namespace)
      .find((pod) => pod.metadata?.labels?.[CLAIM_LABEL] === claim.metadata?.name && !pod.metadata?.deletionTimestamp);
  }

  private async bind(claim: CloudPhoneClaim): Promise<Outcome> {
    const namespace = claim.metadata?.namespace ?? '';
    // Released is for good: a claim does not silently move to another phone, nor back to a dead one.
    if (claim.status?.phase === 'Released') return {};
    const cached = this.boundPod(claim);
    if (cached) return this.keepBound(claim, cached);
    if (claim.status?.phase === 'Bound') {
      // The cache shows no phone: perhaps it is gone, perhaps the cache has not seen our label yet. Ask.
      const live = await this.boundPodsFromApi(claim);
      if (live) return this.keepBound(claim, live);
      await this.released(claim, ClaimReason.PhoneGone, `phone ${claim.status.pod ?? ''} is gone`);
      return {};
    }
    const pool = this.o.pools.get(claim.spec.poolRef.name, namespace);
    if (!pool) {
      await this.pending(claim, ClaimReason.PoolNotFound, `CloudPhonePool ${claim.spec.poolRef.name} does not exist`);
      return { requeueAfterMs: PENDING_RETRY_MS };
    }
    const pods = poolPods(this.o.pods, pool);
    const candidates = new Map(pods.map((pod) => [pod.metadata?.name ?? '', pod]));
    // A reservation ends once the cache shows the label (or the pod is gone): from then on the cache is right.
    const now = Date.now();
    for (const [reserved, at] of this.reserved) {
      const [podNamespace = '', podName = ''] = reserved.split('/');
      const cached = this.o.pods.get(podName, podNamespace);
      if (now - at > RESERVATION_MS || !cached || cached.metadata?.labels?.[CLAIM_LABEL])
        this.reserved.delete(reserved);
    }
    const stream = pool.spec.streamRef.name;
    const phone = phoneForClaim(
      pods
        .filter((p) => !this.reserved.has(`${namespace}/${p.metadata?.name ?? ''}`))
        .map((p) => phoneOf(p, this.o.reports.controlViewers(namespace, stream, p.metadata?.name ?? ''))),
    );
    const pod = phone && candidates.get(phone.name);
    if (!pod) {
      const max = pool.spec.autoscaling?.maxReplicas;
      const atMax = max !== undefined && pods.length >= max;
      await this.pending(
        claim,
        atMax ? ClaimReason.PoolAtMaximum : ClaimReason.NoIdlePhone,
        atMax
          ? `pool ${pool.metadata?.name ?? ''} is at its maximum of ${String(max)} phones, all busy`
          : `no idle Ready phone in pool ${pool.metadata?.name ?? ''} yet`,
      );
      return { requeueAfterMs: PENDING_RETRY_MS };
    }
    // Before a phone is added: the apiserver may hold one bound to this claim already (an earlier pass whose
    // status write failed, or a leader that died between the two), which the cache does not show yet.
    const already = await this.boundPodsFromApi(claim);
    if (already) return this.keepBound(claim, already);
    const token = await this.claimToken(claim);
    const access = claim.spec.access ?? 'view';
    try {
      const patched = await this.o.core.patchNamespacedPod(
        {
          namespace,
          name: pod.metadata?.name ?? '',
          body: [
            { op: 'test', path: '/metadata/resourceVersion', value: pod.metadata?.resourceVersion },
            { op: 'add', path: `/metadata/labels/${escape(CLAIM_LABEL)}`, value: claim.metadata?.name },
            ...(pod.metadata?.annotations ? [] : [{ op: 'add' as const, path: '/metadata/annotations', value: {} }]),
            { op: 'add', path: `/metadata/annotations/${escape(CLAIM_TOKEN_DIGEST_ANNOTATION)}`, value: token.digest },
            {
              op: 'add',
              path: `/metadata/annotations/${escape(CLAIM_TOKEN_SECRET_ANNOTATION)}`,
              value: token.secretName,
            },
            { op: 'add', path: `/metadata/annotations/${escape(CLAIM_ACCESS_ANNOTATION)}`, value: access },
          ],
        },
        jsonPatchOptions(),
      );
      this.reserved.set(`${namespace}/${pod.metadata?.name ?? ''}`, Date.now());
      const key = `${namespace}/${claim.metadata?.name ?? ''}`;
      const seen = this.firstSeen.get(key);
      if (seen !== undefined) this.o.metrics.claimBound((performance.now() - seen) / 1000);
      this.firstSeen.delete(key);
      this.tokens.delete(key);
      this.o.log.info({ claim: `${namespace}/${claim.metadata?.name ?? ''}`, pod: pod.metadata?.name }, 'claim bound');
      const outcome = await this.writeBound(claim, patched);
      await this.o.events.record(claim, 'Normal', EventReason.ClaimBound, `bound to phone ${pod.metadata?.name ?? ''}`);
      return outcome;
    } catch (error) {
      // The pod changed since the cache saw it (bound by another claim, or just updated): look again at once.
      if (error instanceof ApiException && (error.code === 409 || error.code === 422)) return { requeueAfterMs: 0 };
      throw error;
    }
  }

  /** The claim has this phone: Bound, unless the phone died, which releases the claim. */
  private async keepBound(claim: CloudPhoneClaim, pod: V1Pod): Promise<Outcome> {
    const phase = pod.status?.phase;
    if (phase !== 'Failed' && phase !== 'Succeeded') return this.writeBound(claim, pod);
    const why = [pod.status?.reason, pod.status?.message].filter(Boolean).join(': ');
    await this.released(
      claim,
      ClaimReason.PhoneFailed,
      `phone ${pod.metadata?.name ?? ''} ${phase === 'Failed' ? 'failed' : 'stopped'}${why ? ` (${why})` : ''}`,
    );
    // It cannot run again (the pool replaces it); deleted only as the pod we judged, and its claim recorded why.
    await this.o.core
      .deleteNamespacedPod({
        namespace: pod.metadata?.namespace ?? '',
        name: pod.metadata?.name ?? '',
        body: { preconditions: { uid: pod.metadata?.uid } },
      })
      .catch((error: unknown) => {
        if (!(error instanceof ApiException) || (error.code !== 404 && error.code !== 409)) throw error;
      });
    return {};
  }

  /** Marks the claim Released for good, says why in its condition and in a Warning Event. */
  private async released(claim: CloudPhoneClaim, reason: string, message: string): Promise<void> {
    await this.writeStatus(claim, {
      ...claim.status,
      phase: 'Released',
      conditions: this.condition(claim, 'False', reason, message),
    });
    this.o.log.info({ claim: `${claim.metadata?.namespace ?? ''}/${claim.metadata?.name ?? ''}`, reason }, message);
    await this.o.events.record(claim, 'Warning', reason, message);
  }

  /**
   * The phone bound to the claim as the apiserver has it now (not the cache). Should there ever be more than
   * one, the claim keeps the one its status names (else the oldest) and the others are unbound.
   */
  private async boundPodsFromApi(claim: CloudPhoneClaim): Promise<V1Pod | undefined> {
    const namespace = claim.metadata?.namespace ?? '';
    const name = claim.metadata?.name ?? '';
    const { items } = await this.o.core.listNamespacedPod({ namespace, labelSelector: `${CLAIM_LABEL}=${name}` });
    const pods = items
      .filter((pod) => !pod.metadata?.deletionTimestamp)
      .sort(
        (a, b) =>
          Number(b.metadata?.name === claim.status?.pod) - Number(a.metadata?.name === claim.status?.pod) ||
          new Date(a.metadata?.creationTimestamp ?? 0).getTime() -
            new Date(b.metadata?.creationTimestamp ?? 0).getTime(),
      );
    for (const extra of pods.slice(1)) {
      this.o.log.warn(
        { claim: `${namespace}/${name}`, pod: extra.metadata?.name },
        'claim held a second phone, unbinding it',
      );
      await this.unbind(claim, extra).catch((error: unknown) => {
        if (!(error instanceof ApiException) || (error.code !== 404 && error.code !== 422)) throw error;
      });
    }
    return pods[0];
  }

  private async writeBound(claim: CloudPhoneClaim, pod: V1Pod): Promise<Outcome> {
    const boundAt =
      claim.status?.phase === 'Bound' && claim.status.pod === pod.metadata?.name ? claim.status.boundAt : undefined;
    const endpoints = this.endpoints(claim, pod);
    await this.writeStatus(claim, {
      observedGeneration: claim.metadata?.generation,
      phase: 'Bound',
      pod: pod.metadata?.name,
      boundAt: boundAt ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      tokenSecretName: pod.metadata?.annotations?.[CLAIM_TOKEN_SECRET_ANNOTATION] ?? legacyTokenSecretName(claim),
      ...(endpoints ? { endpoints } : {}),
      conditions: this.condition(claim, 'True', ClaimReason.Bound, `bound to phone ${pod.metadata?.name ?? ''}`),
    });
    // The pod's IP comes with its status: until then the endpoints are not known, so look again.
    return endpoints ? {} : { requeueAfterMs: PENDING_RETRY_MS };
  }

  /** Where the bound phone is reached inside the cluster: its sidecar's WHEP and player, and SRT when listening. */
  private endpoints(claim: CloudPhoneClaim, pod: V1Pod): CloudPhoneClaimStatus['endpoints'] {
    const ip = pod.status?.podIP;
    if (!ip) return undefined;
    const host = ip.includes(':') ? `[${ip}]` : ip;
    const pool = this.o.pools.get(claim.spec.poolRef.name, claim.metadata?.namespace);
    const stream = pool && this.o.streams.get(pool.spec.streamRef.name, claim.metadata?.namespace);
    const whep = stream?.spec.webrtc?.whep;
    const srt = stream?.spec.srt;
    const endpoints: NonNullable<CloudPhoneClaimStatus['endpoints']> = {};
    if (whep && whep.enabled !== false) {
      const base = `${whep.tlsSecretRef ? 'https' : 'http'}://${host}:${String(whep.port ?? 8443)}`;
      endpoints.whep = `${base}/whep`;
      endpoints.player = `${base}/`;
    }
    if (srt?.mode === 'listener' && srt.port !== undefined) endpoints.srt = `srt://${host}:${String(srt.port)}`;
    return endpoints;
  }

  /**
   * The claim's own bearer token, in a Secret the claim owns (so it goes with the claim). Returns the Secret's
   * name and the token's SHA-256, which is all the pod and the sidecar ever see.
   *
   * The operator never reads a Secret back (its RBAC has no read of Secrets outside its own namespace): each
   * Secret gets a fresh name (generateName), so creating one never meets an older one whose token this process
   * does not know. A leader that dies between the Secret and the bind leaves one unused Secret, owned by the
   * claim and collected with it; the pod names the one that counts.
   */
  private async claimToken(claim: CloudPhoneClaim): Promise<ClaimToken> {
    // A claim that lost a race tries again at once, with the token it made.
    const uid = claim.metadata?.uid ?? '';
    const namespace = claim.metadata?.namespace ?? '';
    const key = `${namespace}/${claim.metadata?.name ?? ''}`;
    const known = this.tokens.get(key);
    if (known?.uid === uid) return known;
    const token = randomBytes(32).toString('base64url');
    const created = await this.o.core.createNamespacedSecret({
      namespace,
      body: {
        metadata: {
          // A Secret's name holds up to 253 characters; generateName adds 5.
          generateName: `${(claim.metadata?.name ?? '').slice(0, 240)}-token-`,
          labels: { 'app.kubernetes.io/part-of': 'cloudphone', [CLAIM_LABEL]: claim.metadata?.name ?? '' },
          ownerReferences: [
            { apiVersion: API_VERSION, kind: KIND, name: claim.metadata?.name ?? '', uid: claim.metadata?.uid ?? '' },
          ],
        },
        type: 'Opaque',
        stringData: { token, access: claim.spec.access ?? 'view' },
      },
    });
    const made: ClaimToken = {
      uid,
      secretName: created.metadata?.name ?? '',
      digest: createHash('sha256').update(token).digest('hex'),
    };
    this.tokens.set(key, made);
    return made;
  }

  private async pending(claim: CloudPhoneClaim, reason: string, message: string): Promise<void> {
    await this.writeStatus(claim, {
      observedGeneration: claim.metadata?.generation,
      phase: 'Pending',
      conditions: this.condition(claim, 'False', reason, message),
    });
  }

  /** The claim is being deleted: recycle its phone as the pool says. */
  private async release(claim: CloudPhoneClaim): Promise<Outcome> {
    // A phone bound a moment ago may not be in the cache yet: the finalizer comes off only once the apiserver
    // shows none.
    const pod = this.boundPod(claim) ?? (await this.boundPodsFromApi(claim));
    if (!pod) return {};
    const namespace = claim.metadata?.namespace ?? '';
    const pool = this.o.pools.get(claim.spec.poolRef.name, namespace);
    const recycle = pool?.spec.recycle ?? 'delete';
    try {
      if (recycle === 'delete') await this.o.core.deleteNamespacedPod({ namespace, name: pod.metadata?.name ?? '' });
      else await this.unbind(claim, pod);
    } catch (error) {
      if (!(error instanceof ApiException) || (error.code !== 404 && error.code !== 422)) throw error;
    }
    this.o.log.info(
      { claim: `${namespace}/${claim.metadata?.name ?? ''}`, pod: pod.metadata?.name, recycle },
      'claim released',
    );
    return {};
  }

  /** Takes the claim's label and token digest off a phone: it is idle again. Only if the label is still ours. */
  private async unbind(claim: CloudPhoneClaim, pod: V1Pod): Promise<void> {
    await this.o.core.patchNamespacedPod(
      {
        namespace: pod.metadata?.namespace ?? '',
        name: pod.metadata?.name ?? '',
        body: [
          { op: 'test', path: `/metadata/labels/${escape(CLAIM_LABEL)}`, value: claim.metadata?.name },
          { op: 'remove', path: `/metadata/labels/${escape(CLAIM_LABEL)}` },
          // Only what is there: removing a missing key would fail the whole patch.
          ...[CLAIM_TOKEN_DIGEST_ANNOTATION, CLAIM_TOKEN_SECRET_ANNOTATION, CLAIM_ACCESS_ANNOTATION]
            .filter((key) => pod.metadata?.annotations?.[key] !== undefined)
            .map((key) => ({ op: 'remove' as const, path: `/metadata/annotations/${escape(key)}` })),
        ],
      },
      jsonPatchOptions(),
    );
  }

  private condition(claim: CloudPhoneClaim, status: 'True' | 'False', reason: string, message: string) {
    return setCondition(
      claim.status?.conditions ?? [],
      { type: 'Bound', status, reason, message, observedGeneration: claim.metadata?.generation },
      new Date(),
    );
  }

  private async writeStatus(claim: CloudPhoneClaim, status: CloudPhoneClaimStatus): Promise<void> {
    await this.o.statusWriter.write(
      { kind: KIND, plural: PLURAL, namespace: claim.metadata?.namespace ?? '', name: claim.metadata?.name ?? '' },
      status,
      claim.status,
    );
  }

  private async patchClaim(namespace: string, name: string, patch: JsonPatch): Promise<void> {
    await this.o.custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: patch },
      jsonPatchOptions(),
    );
  }
}

function escape(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** The token Secret's name before pods named it (phones bound by an older operator carry no Secret annotation). */
function legacyTokenSecretName(claim: CloudPhoneClaim): string {
  return `${claim.metadata?.name ?? ''}-token-${(claim.metadata?.uid ?? '').slice(0, 8)}`;
}
