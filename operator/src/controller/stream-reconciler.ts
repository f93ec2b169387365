// Reconciles one CloudPhoneStream: its Service, its finalizer, the restart of pods created before it (when
// asked), its Events, and its status. reconcile(key) re-reads everything from the informers' caches and can run
// any number of times with the same result.

import { createHash } from 'node:crypto';
import {
  ApiException,
  type CoreV1Api,
  type CustomObjectsApi,
  type V1Pod,
  type V1Service,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { CloudPhoneStream, CloudPhoneStreamStatus } from '../../../generated/ts/api-types.ts';
import type { SchemaValidator } from '../../../schemas/runtime/validator.ts';
import { TerminalError } from '../errors.ts';
import { applyPatchOptions, jsonPatchOptions } from '../kube/patch-options.ts';
import type { ResilientInformer } from '../kube/resilient-informer.ts';
import type { Pods } from '../kube/pod-cache.ts';
import { API_VERSION, GROUP, STREAM_LABEL, VERSION } from '../labels.ts';
import { selectorMatches, selectorString } from '../webhook/label-selector.ts';
import { ConditionType, EventReason, Reason, setCondition, type Verdict } from './conditions.ts';
import type { EventRecorder } from './event-recorder.ts';
import type { Outcome } from './finalizer.ts';
import { cannotRestart } from './pod-restart.ts';
import { resolveSecretRefs, type SecretLookup } from './secret-references.ts';
import { assessStream, isPodReady, listStopped } from './stream-status.ts';
import type { ReportStore } from './sidecar-reports.ts';
import { FIELD_MANAGER, type StatusWriter } from './status-writer.ts';

/** The finalizer streams carried before owner references alone did the job; removed where found. */
export const LEGACY_STREAM_FINALIZER = 'cloudphone.io/cleanup';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'cloudphone-operator';
const KIND = 'CloudPhoneStream';
const PLURAL = 'cloudphonestreams';
/**
 * How often a stream's Secrets are looked at again: soon while one is missing (a GitOps tool may apply it just
 * after the stream), rarely once found (reconciles follow every report; Secret reads must not).
 */
const REFS_RECHECK_MISSING_MS = 10_000;
const REFS_RECHECK_FOUND_MS = 5 * 60_000;
/**
 * A Service found to be someone else's is not in the cache (which holds only the operator's): it is asked about
 * again (a create that fails, a read) at most this often, not on every reconcile, which follows every report.
 */
const NOT_OWNED_RECHECK_MS = 10_000;

export interface StreamReconcilerOptions {
  streams: ResilientInformer<CloudPhoneStream>;
  pods: Pods;
  services: ResilientInformer<V1Service>;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  statusWriter: StatusWriter;
  events: EventRecorder;
  reports: ReportStore;
  validator: SchemaValidator;
  metricsPort: number;
  log: Logger;
  /** How long an injected, running pod may stay silent before its sidecar counts as not reporting. */
  reportGraceMs: number;
}

/** A DNS-1035 label (what Service names must be) for a stream name, which may be longer or hold dots. */
export function serviceNameFor(streamName: string): string {
  const name = `cloudphone-${streamName.replaceAll('.', '-')}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(streamName).digest('hex').slice(0, 8);
  return `${name.slice(0, 54).replace(/-+$/, '')}-${hash}`;
}

export function keyOf(object: { metadata?: { namespace?: string; name?: string } }): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

export class StreamReconciler {
  private readonly o: StreamReconcilerOptions;
  private readonly log: Logger;
  /** Per stream: pods this process already announced as injected, and the last not-reporting verdict. */
  private readonly announced = new Map<string, Set<string>>();
  private readonly lastNotReporting = new Map<string, string>();
  /** Per stream: the pods last announced with their recording stopped. */
  private readonly lastRecordingStopped = new Map<string, Set<string>>();
  /** Per stream: the Service name last found taken by someone else, and when (one Warning Event per finding). */
  private readonly notOwned = new Map<string, { name: string; at: number }>();
  /** Per stream: the uid/generation last found valid, so an unchanged spec is not validated on every pod event. */
  private readonly validated = new Map<string, string>();
  /** Per stream: the last verdict on its Secrets, for which spec, and when. */
  private readonly refs = new Map<string, { version: string; at: number; verdict: Verdict }>();

  constructor(options: StreamReconcilerOptions) {
    this.o = options;
    this.log = options.log;
  }

  /** The streams a pod event concerns: those whose selector matches it, and the one whose sidecar it carries. */
  keysForPod(pod: V1Pod): string[] {
    const namespace = pod.metadata?.namespace ?? '';
    return this.o.streams
      .list(namespace)
      .filter(
        (s) =>
          selectorMatches(s.spec.selector, pod.metadata?.labels) ||
          pod.metadata?.labels?.[STREAM_LABEL] === s.metadata?.name,
      )
      .map(keyOf);
  }

  async reconcile(key: string): Promise<Outcome> {
    const [namespace = '', name = ''] = key.split('/');
    const stream = this.o.streams.get(name, namespace);
    if (!stream) {
      this.forget(namespace, name);
      return {};
    }
    // No finalizer: the stream's Service goes with it by its owner reference, and nothing else needs the operator
    // to be up for a stream (or its namespace) to be deleted. Streams from older releases still carry one: off.
    const finalizers = stream.metadata?.finalizers ?? [];
    const legacy = finalizers.indexOf(LEGACY_STREAM_FINALIZER);
    if (legacy >= 0)
      await this.patchStream(namespace, name, [
        { op: 'test', path: `/metadata/finalizers/${String(legacy)}`, value: LEGACY_STREAM_FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${String(legacy)}` },
      ]);
    if (stream.metadata?.deletionTimestamp) {
      this.forget(namespace, name);
      return {};
    }
    return this.apply(stream);
  }

  /** A terminal failure: say so in the Degraded condition and in a Warning Event. */
  async onTerminal(key: string, error: TerminalError): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const stream = this.o.streams.get(name, namespace);
    if (!stream) return;
    await this.o.events.record(stream, 'Warning', error.reason, error.message);
    const conditions = setCondition(
      stream.status?.conditions ?? [],
      {
        type: ConditionType.Degraded,
        status: 'True',
        reason: error.reason,
        message: error.message,
        observedGeneration: stream.metadata?.generation ?? 0,
      },
      new Date(),
    );
    await this.writeStatus(stream, { ...stream.status, conditions });
  }

  private async apply(stream: CloudPhoneStream): Promise<Outcome> {
    const namespace = stream.metadata?.namespace ?? '';
    const name = stream.metadata?.name ?? '';
    const key = keyOf(stream);
    // The CRD schema already holds, unless the CRD installed is older or newer than this operator.
    const version = `${stream.metadata?.uid ?? ''}/${String(stream.metadata?.generation ?? 0)}`;
    if (this.validated.get(key) !== version) {
      const problems = this.o.validator.check(KIND, stream);
      if (problems.length > 0) {
        throw new TerminalError(
          EventReason.InvalidSpec,
          problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; '),
        );
      }
      this.validated.set(key, version);
    }
    const service = await this.ensureService(stream);
    const refs = await this.resolveRefs(stream, version);

    const pods = this.o.pods.list(namespace).filter((p) => selectorMatches(stream.spec.selector, p.metadata?.labels));
    const now = new Date();
    const observation = {
      stream,
      pods,
      reports: this.o.reports.forStream(namespace, name),
      now,
      reportFreshMs: this.o.reports.freshMs,
      reportGraceMs: this.o.reportGraceMs,
    };
    let assessment = assessStream(observation);
    const restartExisting = stream.spec.rollout === 'restartExisting' && assessment.needRestart.length > 0;
    const blocked = new Map<string, string>();
    if (restartExisting) {
      const labels = (await this.o.core.readNamespace({ name: namespace })).metadata?.labels ?? {};
      for (const pod of assessment.needRestart) {
        const why = cannotRestart(pod, labels);
        if (why) blocked.set(pod.metadata?.name ?? '', why);
      }
      assessment = assessStream({ ...observation, cannotRestart: blocked });
    }

    await this.announceInjected(stream, pods);
    const notReporting = assessment.notReporting.join(',');
    if (notReporting && this.lastNotReporting.get(key) !== notReporting) {
      await this.o.events.record(
        stream,
        'Warning',
        EventReason.SidecarNotReporting,
        `no report from the sidecar of ${assessment.notReporting.slice(0, 10).join(', ')}`,
      );
    }
    this.lastNotReporting.set(key, notReporting);
    await this.announceRecording(stream, key, assessment.recordingStopped);

    let requeueAfterMs = assessment.recheckInMs ?? this.o.reports.freshMs;
    if (refs.status !== 'True') requeueAfterMs = Math.min(requeueAfterMs, REFS_RECHECK_MISSING_MS);
    const restartable = assessment.needRestart.filter((p) => !blocked.has(p.metadata?.name ?? ''));
    if (restartExisting && restartable.length > 0) {
      requeueAfterMs = Math.min(requeueAfterMs, await this.restartOne(stream, pods, restartable));
    }
    const generation = stream.metadata?.generation ?? 0;
    let conditions = assessment.status.conditions ?? [];
    for (const [type, verdict] of [
      [ConditionType.ResolvedRefs, refs],
      [ConditionType.ServiceReady, service],
    ] as const)
      conditions = setCondition(conditions, { type, ...verdict, observedGeneration: generation }, now);
    await this.writeStatus(stream, { ...assessment.status, conditions });
    return { requeueAfterMs };
  }

  private forget(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    this.o.reports.forgetStream(namespace, name);
    this.o.statusWriter.forget({ kind: KIND, plural: PLURAL, namespace, name });
    this.announced.delete(key);
    this.lastNotReporting.delete(key);
    this.lastRecordingStopped.delete(key);
    this.notOwned.delete(key);
    this.validated.delete(key);
    this.refs.delete(key);
  }

  /** The stream's ResolvedRefs verdict: looked up again when the spec changed or the last look is old. */
  private async resolveRefs(stream: CloudPhoneStream, version: string): Promise<Verdict> {
    const key = keyOf(stream);
    const namespace = stream.metadata?.namespace ?? '';
    const last = this.refs.get(key);
    const now = Date.now();
    const recheckMs = last?.verdict.status === 'True' ? REFS_RECHECK_FOUND_MS : REFS_RECHECK_MISSING_MS;
    if (last?.version === version && now - last.at < recheckMs) return last.verdict;
    const read = async (name: string): Promise<SecretLookup> => {
      try {
        const secret = await this.o.core.readNamespacedSecret({ name, namespace });
        return { found: true, data: (secret.data ?? {}) as Record<string, string> };
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) return { found: false };
        if (error instanceof ApiException && error.code === 403) return { forbidden: true };
        throw error;
      }
    };
    const verdict = await resolveSecretRefs(stream, read);
    this.refs.set(key, { version, at: now, verdict });
    if (verdict.status === 'False' && verdict.message !== last?.verdict.message)
      await this.o.events.record(stream, 'Warning', verdict.reason, verdict.message);
    if (verdict.status === 'Unknown' && last?.verdict.status !== 'Unknown')
      await this.o.events.record(stream, 'Normal', verdict.reason, verdict.message);
    return verdict;
  }

  /**
   * The headless Service of the stream's pods: per-pod DNS names for WHEP and metrics, and SRT in listener mode.
   * A Service of that name that is not the stream's (someone else's, made before the stream) is left alone: the
   * ServiceReady condition says so, rather than taking it over.
   */
  private async ensureService(stream: CloudPhoneStream): Promise<Verdict> {
    const namespace = stream.metadata?.namespace ?? '';
    const streamName = stream.metadata?.name ?? '';
    const name = serviceNameFor(streamName);
    const ports: { name: string; port: number; protocol: string }[] = [
      { name: 'metrics', port: this.o.metricsPort, protocol: 'TCP' },
    ];
    const whep = stream.spec.webrtc?.whep;
    if (whep && whep.enabled !== false) ports.push({ name: 'whep', port: whep.port ?? 8443, protocol: 'TCP' });
    if (stream.spec.srt?.mode === 'listener' && stream.spec.srt.port !== undefined) {
      ports.push({ name: 'srt', port: stream.spec.srt.port, protocol: 'UDP' });
    }
    const wanted = {
      selector: { [STREAM_LABEL]: streamName },
      ports: ports.map((p) => ({ ...p, targetPort: p.name })),
    };
    const ready: Verdict = {
      status: 'True',
      reason: Reason.ServiceApplied,
      message: `headless Service ${name} selects the stream's pods`,
    };
    const notOwned: Verdict = {
      status: 'False',
      reason: Reason.ServiceNotOwned,
      message: `Service ${name} exists and is not this stream's: it is left alone; delete or rename it to get the stream's Service`,
    };
    const body = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name,
        namespace,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [STREAM_LABEL]: streamName },
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: KIND,
            name: streamName,
            uid: stream.metadata?.uid ?? '',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { clusterIP: 'None', publishNotReadyAddresses: false, ...wanted },
    };
    // The cache holds only Services the operator labelled: one missing from it is created, never applied over,
    // so that an unlabelled Service of the same name answers 409 instead of being taken.
    const key = keyOf(stream);
    let existing = this.o.services.get(name, namespace);
    const found = this.notOwned.get(key);
    if (!existing && found?.name === name && Date.now() - found.at < NOT_OWNED_RECHECK_MS) return notOwned;
    if (!existing) {
      try {
        await this.o.core.createNamespacedService({ namespace, body });
        this.log.info({ stream: keyOf(stream), service: name }, 'created stream service');
        return ready;
      } catch (error) {
        if (!(error instanceof ApiException) || error.code !== 409) throw error;
        existing = await this.o.core.readNamespacedService({ name, namespace });
      }
    }
    const ours =
      existing.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY &&
      existing.metadata.labels[STREAM_LABEL] === streamName;
    if (!ours) {
      if (found?.name !== name) await this.o.events.record(stream, 'Warning', Reason.ServiceNotOwned, notOwned.message);
      this.notOwned.set(key, { name, at: Date.now() });
      return notOwned;
    }
    this.notOwned.delete(key);
    const same =
      existing.spec?.clusterIP === 'None' &&
      JSON.stringify(existing.spec.selector) === JSON.stringify(wanted.selector) &&
      JSON.stringify((existing.spec.ports ?? []).map((p) => [p.name, p.port, p.protocol])) ===
        JSON.stringify(ports.map((p) => [p.name, p.port, p.protocol])) &&
      existing.metadata?.ownerReferences?.some((r) => r.uid === stream.metadata?.uid);
    if (same) return ready;
    await this.o.core.patchNamespacedService(
      { name, namespace, fieldManager: FIELD_MANAGER, force: true, body },
      applyPatchOptions(),
    );
    this.log.info({ stream: keyOf(stream), service: name }, 'applied stream service');
    return ready;
  }

  /**
   * An "Injected" Event for the pods injected lately that this process has not announced yet: one Event per
   * reconcile naming a few of them, not one per pod (a thousand phones starting must not mean a thousand writes).
   */
  /**
   * A Warning Event for the pods whose recording newly stopped, and a Normal one when every pod that had stopped
   * records again.
   */
  private async announceRecording(
    stream: CloudPhoneStream,
    key: string,
    stopped: { pod: string; reason: string }[],
  ): Promise<void> {
    const before = this.lastRecordingStopped.get(key) ?? new Set<string>();
    const now = new Set(stopped.map((s) => s.pod));
    const newly = stopped.filter((s) => !before.has(s.pod));
    this.lastRecordingStopped.set(key, now);
    if (newly.length > 0) {
      await this.o.events.record(
        stream,
        'Warning',
        EventReason.RecordingStopped,
        `recording stopped: ${listStopped(newly)}`,
      );
    } else if (before.size > 0 && now.size === 0) {
      await this.o.events.record(stream, 'Normal', EventReason.RecordingResumed, 'every pod records again');
    }
  }

  private async announceInjected(stream: CloudPhoneStream, pods: V1Pod[]): Promise<void> {
    const key = keyOf(stream);
    let seen = this.announced.get(key);
    if (!seen) this.announced.set(key, (seen = new Set()));
    const recent = Date.now() - 5 * 60_000;
    const fresh: string[] = [];
    for (const pod of pods) {
      const podName = pod.metadata?.name ?? '';
      if (pod.metadata?.labels?.[STREAM_LABEL] !== stream.metadata?.name || seen.has(podName)) continue;
      seen.add(podName);
      const created = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : 0;
      if (created >= recent) fresh.push(podName);
    }
    if (fresh.length === 0) return;
    fresh.sort();
    const listed = fresh.slice(0, 5).join(', ') + (fresh.length > 5 ? `, and ${String(fresh.length - 5)} more` : '');
    await this.o.events.record(
      stream,
      'Normal',
      EventReason.Injected,
      `injected the sidecar into ${String(fresh.length)} pod${fresh.length === 1 ? '' : 's'}: ${listed} (stream generation ${String(stream.metadata?.generation ?? 0)})`,
    );
  }

  /**
   * restartExisting: evicts one pod created without the sidecar, so its controller recreates it with one, and
   * only while every other matching pod is Ready: a rolling restart, never a whole fleet at once. Eviction, not
   * deletion, so that a PodDisruptionBudget holds: a refused eviction (429) is tried again later.
   */
  private async restartOne(stream: CloudPhoneStream, cached: V1Pod[], needRestart: V1Pod[]): Promise<number> {
    // The cache keeps only the metadata of pods without the sidecar: their readiness comes from the apiserver,
    // asked only while there is something to restart.
    const pods = cached.some((p) => p.status === undefined)
      ? (
          await this.o.core.listNamespacedPod({
            namespace: stream.metadata?.namespace ?? '',
            labelSelector: selectorString(stream.spec.selector),
          })
        ).items
      : cached;
    const busy = pods.some((p) => p.metadata?.deletionTimestamp !== undefined || !isPodReady(p));
    if (busy) return 2000;
    const victim = [...needRestart].sort((a, b) =>
      String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')),
    )[0];
    if (!victim?.metadata?.name) return 2000;
    const podNamespace = victim.metadata.namespace ?? '';
    try {
      await this.o.core.createNamespacedPodEviction({
        name: victim.metadata.name,
        namespace: podNamespace,
        body: {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name: victim.metadata.name, namespace: podNamespace },
          deleteOptions: { preconditions: { uid: victim.metadata.uid } },
        },
      });
    } catch (error) {
      if (error instanceof ApiException && error.code === 429) return 5000; // a PodDisruptionBudget says not now
      if (!(error instanceof ApiException) || (error.code !== 404 && error.code !== 409)) throw error;
      return 2000;
    }
    await this.o.events.record(
      stream,
      'Normal',
      EventReason.RestartedPod,
      `evicted pod ${victim.metadata.name}, created without the sidecar, so that its controller recreates it with it`,
    );
    return 2000;
  }

  private async writeStatus(stream: CloudPhoneStream, status: CloudPhoneStreamStatus): Promise<void> {
    await this.o.statusWriter.write(
      {
        kind: KIND,
        plural: PLURAL,
        namespace: stream.metadata?.namespace ?? '',
        name: stream.metadata?.name ?? '',
      },
      status,
      stream.status,
    );
  }

  private async patchStream(namespace: string, name: string, patch: unknown): Promise<void> {
    await this.o.custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: patch },
      jsonPatchOptions(),
    );
  }
}
