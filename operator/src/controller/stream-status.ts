// What a CloudPhoneStream's status should say, computed from what the operator observes: the pods its
// selector matches and the sidecars' latest reports. Pure, so every rule is tested directly.

import type { V1Pod } from '@kubernetes/client-node';
import type { CloudPhoneStream, CloudPhoneStreamStatus, Condition } from '../../../generated/ts/api-types.ts';
import { STREAM_LABEL } from '../labels.ts';
import { isOptedOut } from '../webhook/pod-injector.ts';
import type { ReceivedReport } from './sidecar-reports.ts';
import { ConditionType, Reason, setCondition } from './conditions.ts';

export interface StreamObservation {
  stream: CloudPhoneStream;
  /** Pods of the namespace that the stream's selector matches. */
  pods: V1Pod[];
  reports: ReadonlyMap<string, ReceivedReport>;
  now: Date;
  /** A report older than this no longer counts. */
  reportFreshMs: number;
  /** How long an injected pod may run before its sidecar must have reported. */
  reportGraceMs: number;
  /** With rollout restartExisting: pods that need the sidecar but cannot be restarted for it, and why. */
  cannotRestart?: ReadonlyMap<string, string>;
}

export interface StreamAssessment {
  status: CloudPhoneStreamStatus;
  /** Matching pods created without the sidecar (opted-out pods are not among them). */
  needRestart: V1Pod[];
  /** Injected pods running past the grace period without a fresh report. */
  notReporting: string[];
  /** Pods whose sidecar reported streaming. */
  streaming: string[];
  /** Pods whose sidecar reported its recording stopped, and why, by pod name. */
  recordingStopped: { pod: string; reason: string }[];
  /** When a grace period ends and the verdict may change, if one is running. */
  recheckInMs?: number;
}

const MAX_LISTED = 50;

export function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function runningSince(pod: V1Pod): number | undefined {
  if (pod.status?.phase !== 'Running') return undefined;
  const start = pod.status.startTime;
  return start ? new Date(start).getTime() : undefined;
}

function names(pods: { metadata?: { name?: string } }[]): string[] {
  return pods.map((p) => p.metadata?.name ?? '').sort();
}

function plural(n: number, word: string): string {
  return `${String(n)} ${word}${n === 1 ? '' : 's'}`;
}

/** "pod: reason" for the first five, then "...". */
export function listStopped(stopped: { pod: string; reason: string }[]): string {
  const listed = stopped.slice(0, 5).map((s) => `${s.pod}: ${s.reason}`);
  return `${listed.join('; ')}${stopped.length > 5 ? '; ...' : ''}`;
}

export function assessStream(o: StreamObservation): StreamAssessment {
  const name = o.stream.metadata?.name ?? '';
  const generation = o.stream.metadata?.generation ?? 0;
  const now = o.now.getTime();
  const live = o.pods.filter((p) => !p.metadata?.deletionTimestamp);
  const injected = live.filter((p) => p.metadata?.labels?.[STREAM_LABEL] === name);
  const needRestart = live.filter((p) => p.metadata?.labels?.[STREAM_LABEL] !== name && !isOptedOut(p));

  const streaming: string[] = [];
  const notReporting: string[] = [];
  const errors: string[] = [];
  const recordingStopped: { pod: string; reason: string }[] = [];
  let waiting = 0;
  let viewers = 0;
  let recheckInMs: number | undefined;
  for (const pod of injected) {
    const podName = pod.metadata?.name ?? '';
    const received = o.reports.get(podName);
    if (received && now - received.receivedAt <= o.reportFreshMs) {
      viewers += received.report.viewers;
      if (received.report.streaming) streaming.push(podName);
      if (received.report.error) errors.push(`${podName}: ${received.report.error}`);
      if (received.report.recordingStopped)
        recordingStopped.push({ pod: podName, reason: received.report.recordingStopped });
      continue;
    }
    const since = runningSince(pod);
    if (since !== undefined && now - since > o.reportGraceMs) {
      notReporting.push(podName);
    } else {
      waiting++;
      const left = since === undefined ? o.reportGraceMs : o.reportGraceMs - (now - since);
      recheckInMs = Math.min(recheckInMs ?? Infinity, Math.max(left, 1000));
    }
  }
  streaming.sort();
  notReporting.sort();
  recordingStopped.sort((a, b) => a.pod.localeCompare(b.pod));

  let conditions: Condition[] = o.stream.status?.conditions ?? [];
  const set = (type: string, status: 'True' | 'False', reason: string, message: string): void => {
    conditions = setCondition(conditions, { type, status, reason, message, observedGeneration: generation }, o.now);
  };
  if (live.length === 0) {
    set(ConditionType.Ready, 'False', Reason.NoMatchingPods, 'no pod matches the selector');
  } else if (streaming.length === live.length) {
    set(ConditionType.Ready, 'True', Reason.AllPodsStreaming, `${plural(live.length, 'pod')} streaming`);
  } else {
    set(
      ConditionType.Ready,
      'False',
      Reason.PodsNotStreaming,
      `${String(streaming.length)} of ${plural(live.length, 'pod')} streaming`,
    );
  }
  const blocked = needRestart.flatMap((p) => {
    const why = o.cannotRestart?.get(p.metadata?.name ?? '');
    return why ? [`${p.metadata?.name ?? ''} (${why})`] : [];
  });
  const listedBlocked = `${blocked.slice(0, 5).join('; ')}${blocked.length > 5 ? '; ...' : ''}`;
  if (needRestart.length > 0 && o.stream.spec.rollout !== 'restartExisting') {
    set(
      ConditionType.Progressing,
      'True',
      Reason.PodsNeedRestart,
      `${plural(needRestart.length, 'pod')} created before the stream carry no sidecar: restart them, or set spec.rollout: restartExisting`,
    );
  } else if (needRestart.length > blocked.length) {
    set(
      ConditionType.Progressing,
      'True',
      Reason.RestartingPods,
      `restarting ${plural(needRestart.length - blocked.length, 'pod')} created without the sidecar, one at a time` +
        (blocked.length > 0 ? `; not restarting ${listedBlocked}` : ''),
    );
  } else if (needRestart.length > 0) {
    set(
      ConditionType.Progressing,
      'True',
      Reason.PodsCannotRestart,
      `${plural(needRestart.length, 'pod')} without the sidecar cannot be restarted for it: ${listedBlocked}`,
    );
  } else if (waiting > 0) {
    set(
      ConditionType.Progressing,
      'True',
      Reason.WaitingForSidecars,
      `waiting for ${plural(waiting, 'sidecar')} to report`,
    );
  } else {
    set(ConditionType.Progressing, 'False', Reason.Complete, 'every matching pod carries the sidecar');
  }
  if (errors.length > 0) {
    set(ConditionType.Degraded, 'True', Reason.SidecarError, errors.slice(0, 5).join('; '));
  } else if (notReporting.length > 0) {
    set(
      ConditionType.Degraded,
      'True',
      Reason.SidecarNotReporting,
      `no report from the sidecar of ${notReporting.slice(0, 10).join(', ')}${notReporting.length > 10 ? ', ...' : ''}`,
    );
  } else {
    set(ConditionType.Degraded, 'False', Reason.AsExpected, 'every reporting sidecar is healthy');
  }

  const recording = o.stream.spec.recording;
  if (!recording || recording.enabled === false) {
    conditions = conditions.filter((c) => c.type !== ConditionType.Recording);
  } else if (recordingStopped.length > 0) {
    set(
      ConditionType.Recording,
      'False',
      Reason.RecordingStopped,
      `recording stopped in ${plural(recordingStopped.length, 'pod')}: ${listStopped(recordingStopped)}`,
    );
  } else {
    set(ConditionType.Recording, 'True', Reason.Recording, 'no sidecar reports its recording stopped');
  }

  const status: CloudPhoneStreamStatus = {
    observedGeneration: generation,
    conditions,
    pods: live.length,
    injected: injected.length,
    streaming: streaming.length,
    viewers,
  };
  if (needRestart.length > 0) status.podsNeedingRestart = names(needRestart).slice(0, MAX_LISTED);
  return {
    status,
    needRestart,
    notReporting,
    streaming,
    recordingStopped,
    ...(recheckInMs !== undefined ? { recheckInMs } : {}),
  };
}
