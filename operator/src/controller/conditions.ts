// Condition types and reasons of cloudphone.io resources, all in one place, and the one way to set a condition.

import type { Condition } from '../../../generated/ts/api-types.ts';

export const ConditionType = {
  Ready: 'Ready',
  Progressing: 'Progressing',
  Degraded: 'Degraded',
  /** The Secrets the stream names exist with their keys. */
  ResolvedRefs: 'ResolvedRefs',
  ServiceReady: 'ServiceReady',
  /** With spec.recording: no sidecar reports its recording stopped (a full or unwritable volume). */
  Recording: 'Recording',
} as const;

export const Reason = {
  // Ready
  AllPodsStreaming: 'AllPodsStreaming',
  NoMatchingPods: 'NoMatchingPods',
  PodsNotStreaming: 'PodsNotStreaming',
  // Progressing
  WaitingForSidecars: 'WaitingForSidecars',
  PodsNeedRestart: 'PodsNeedRestart',
  RestartingPods: 'RestartingPods',
  PodsCannotRestart: 'PodsCannotRestart',
  Complete: 'Complete',
  // Degraded
  AsExpected: 'AsExpected',
  SidecarNotReporting: 'SidecarNotReporting',
  SidecarError: 'SidecarError',
  InvalidSpec: 'InvalidSpec',
  // ResolvedRefs (False ones also Warning Events; SecretsNotReadable a Normal one)
  ResolvedRefs: 'ResolvedRefs',
  NoSecretRefs: 'NoSecretRefs',
  SecretNotFound: 'SecretNotFound',
  SecretKeyMissing: 'SecretKeyMissing',
  InvalidSecret: 'InvalidSecret',
  SecretsNotReadable: 'SecretsNotReadable',
  // ServiceReady (ServiceNotOwned also a Warning Event)
  ServiceApplied: 'ServiceApplied',
  ServiceNotOwned: 'ServiceNotOwned',
  // Recording (RecordingStopped also a Warning Event, and RecordingResumed a Normal one when all record again)
  Recording: 'Recording',
  RecordingStopped: 'RecordingStopped',
} as const;

/** Reasons of a CloudPhonePool's Ready condition. */
export const PoolReason = {
  Scaled: 'Scaled',
  Scaling: 'Scaling',
  StreamNotFound: 'StreamNotFound',
  PodsRefused: 'PodsRefused',
} as const;

/** Reasons of a CloudPhoneClaim's Bound condition. */
export const ClaimReason = {
  Bound: 'Bound',
  PoolNotFound: 'PoolNotFound',
  NoIdlePhone: 'NoIdlePhone',
  PoolAtMaximum: 'PoolAtMaximum',
  PhoneGone: 'PhoneGone',
  PhoneFailed: 'PhoneFailed',
} as const;

/** Event reasons; Events of type Normal unless said otherwise. */
export const EventReason = {
  Injected: 'Injected',
  RestartedPod: 'RestartedPod',
  SidecarNotReporting: 'SidecarNotReporting', // Warning
  InvalidSpec: 'InvalidSpec', // Warning
  CleanedUp: 'CleanedUp',
  ClaimBound: 'Bound',
  PhoneGone: 'PhoneGone', // Warning
  PhoneFailed: 'PhoneFailed', // Warning
  PodsReplaced: 'PodsReplaced', // Warning
  PodsRefused: 'PodsRefused', // Warning
  Autoscaled: 'Autoscaled',
  RecordingStopped: 'RecordingStopped', // Warning
  RecordingResumed: 'RecordingResumed',
} as const;

/** A condition's status, reason and message, as a check returns them. */
export interface Verdict {
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/**
 * Sets a condition in a list, keeping its lastTransitionTime when its status did not change, as
 * apimachinery's meta.SetStatusCondition does. Returns a new list.
 */
export function setCondition(
  conditions: Condition[],
  next: Omit<Condition, 'lastTransitionTime'>,
  now: Date,
): Condition[] {
  const previous = conditions.find((c) => c.type === next.type);
  const lastTransitionTime =
    previous && previous.status === next.status
      ? previous.lastTransitionTime
      : now.toISOString().replace(/\.\d+Z$/, 'Z');
  return [...conditions.filter((c) => c.type !== next.type), { ...next, lastTransitionTime }].sort((a, b) =>
    a.type.localeCompare(b.type),
  );
}
