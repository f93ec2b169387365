import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { CloudPhoneStream, SidecarReport } from '../../../generated/ts/api-types.ts';
import type { ReceivedReport } from '../../../operator/src/controller/sidecar-reports.ts';
import { assessStream } from '../../../operator/src/controller/stream-status.ts';

const now = new Date('2026-06-01T12:00:00Z');
const at = (secondsAgo: number): string => new Date(now.getTime() - secondsAgo * 1000).toISOString();

function stream(rollout: 'onCreate' | 'restartExisting' = 'onCreate'): CloudPhoneStream {
  return {
    metadata: { name: 's', namespace: 'n', generation: 4 },
    spec: { selector: { matchLabels: { app: 'p' } }, phoneContainer: 'android', rollout, srt: { url: 'srt://a:1' } },
  };
}

function pod(name: string, opts: { injected?: boolean; runningFor?: number; optOut?: boolean } = {}): V1Pod {
  const labels: Record<string, string> = { app: 'p' };
  if (opts.injected) labels['cloudphone.io/stream'] = 's';
  if (opts.optOut) labels['cloudphone.io/inject'] = 'false';
  return {
    metadata: { name, namespace: 'n', labels, creationTimestamp: new Date(at(600)) },
    status:
      opts.runningFor === undefined
        ? { phase: 'Pending' }
        : { phase: 'Running', startTime: new Date(at(opts.runningFor)) },
  };
}

function reports(...entries: [string, Partial<SidecarReport>, number][]): Map<string, ReceivedReport> {
  return new Map(
    entries.map(([podName, report, secondsAgo]) => [
      podName,
      {
        report: {
          stream: { namespace: 'n', name: 's' },
          pod: podName,
          streaming: true,
          viewers: 0,
          controlViewers: 0,
          ...report,
        },
        receivedAt: now.getTime() - secondsAgo * 1000,
      },
    ]),
  );
}

const observe = (s: CloudPhoneStream, pods: V1Pod[], r = new Map<string, ReceivedReport>()) =>
  assessStream({ stream: s, pods, reports: r, now, reportFreshMs: 30_000, reportGraceMs: 60_000 });

const condition = (result: ReturnType<typeof observe>, type: string) =>
  result.status.conditions?.find((c) => c.type === type);

describe('assessStream', () => {
  it('is not Ready when no pod matches', () => {
    const result = observe(stream(), []);
    expect(result.status).toMatchObject({ observedGeneration: 4, pods: 0, injected: 0, streaming: 0, viewers: 0 });
    expect(condition(result, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'NoMatchingPods',
      observedGeneration: 4,
    });
  });

  it('is Ready when every matching pod reports streaming, and sums the viewers', () => {
    const result = observe(
      stream(),
      [pod('a', { injected: true, runningFor: 100 }), pod('b', { injected: true, runningFor: 100 })],
      reports(['a', { viewers: 2 }, 5], ['b', { viewers: 1 }, 5]),
    );
    expect(result.status).toMatchObject({ pods: 2, injected: 2, streaming: 2, viewers: 3 });
    expect(condition(result, 'Ready')).toMatchObject({ status: 'True', reason: 'AllPodsStreaming' });
    expect(condition(result, 'Progressing')).toMatchObject({ status: 'False', reason: 'Complete' });
    expect(condition(result, 'Degraded')).toMatchObject({ status: 'False' });
  });

  it('ignores stale reports', () => {
    const result = observe(stream(), [pod('a', { injected: true, runningFor: 100 })], reports(['a', {}, 45]));
    expect(result.status.streaming).toBe(0);
    expect(result.notReporting).toEqual(['a']);
    expect(condition(result, 'Degraded')).toMatchObject({ status: 'True', reason: 'SidecarNotReporting' });
  });

  it('waits out the grace period of a young pod before calling it silent, and says when to look again', () => {
    const result = observe(stream(), [pod('young', { injected: true, runningFor: 20 })]);
    expect(result.notReporting).toEqual([]);
    expect(condition(result, 'Progressing')).toMatchObject({ status: 'True', reason: 'WaitingForSidecars' });
    expect(result.recheckInMs).toBe(40_000);
  });

  it('lists pods created without the sidecar, and not opted-out ones', () => {
    const result = observe(stream(), [
      pod('old'),
      pod('mine', { optOut: true }),
      pod('new', { injected: true, runningFor: 5 }),
    ]);
    expect(result.status.podsNeedingRestart).toEqual(['old']);
    expect(result.needRestart.map((p) => p.metadata?.name)).toEqual(['old']);
    expect(condition(result, 'Progressing')).toMatchObject({ status: 'True', reason: 'PodsNeedRestart' });
    expect(
      observe(stream('restartExisting'), [pod('old')]).status.conditions?.find((c) => c.type === 'Progressing')?.reason,
    ).toBe('RestartingPods');
  });

  it('reports sidecar errors as Degraded', () => {
    const result = observe(
      stream(),
      [pod('a', { injected: true, runningFor: 100 })],
      reports(['a', { streaming: false, error: 'encoder failed' }, 1]),
    );
    expect(condition(result, 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'SidecarError',
      message: 'a: encoder failed',
    });
  });

  it('says in a Recording condition which pods stopped recording and why, only for a stream that records', () => {
    const recordingSpec = { volume: { emptyDir: {} }, retention: { maxSize: '1Gi' } };
    const recording = stream();
    recording.spec.recording = recordingSpec;
    const pods = [pod('a', { injected: true, runningFor: 100 }), pod('b', { injected: true, runningFor: 100 })];
    const stopped = observe(
      recording,
      pods,
      reports(['b', { recordingStopped: 'the recording volume is full: No space left on device' }, 1], ['a', {}, 1]),
    );
    expect(condition(stopped, 'Recording')).toMatchObject({
      status: 'False',
      reason: 'RecordingStopped',
      message: 'recording stopped in 1 pod: b: the recording volume is full: No space left on device',
    });
    expect(stopped.recordingStopped).toEqual([
      { pod: 'b', reason: 'the recording volume is full: No space left on device' },
    ]);
    // The stream goes on: recording is not what Ready or Degraded speak of.
    expect(condition(stopped, 'Ready')).toMatchObject({ status: 'True' });
    expect(condition(stopped, 'Degraded')).toMatchObject({ status: 'False' });

    const again = observe({ ...recording, status: stopped.status }, pods, reports(['b', {}, 1], ['a', {}, 1]));
    expect(condition(again, 'Recording')).toMatchObject({ status: 'True', reason: 'Recording' });
    // A stale report no longer speaks for its pod.
    expect(
      condition(observe(recording, pods, reports(['b', { recordingStopped: 'full' }, 120])), 'Recording')?.status,
    ).toBe('True');
    // Without recording (or with it turned off) there is no such condition, and a left-over one goes.
    expect(condition(observe(stream(), pods), 'Recording')).toBeUndefined();
    const off = {
      ...recording,
      spec: { ...recording.spec, recording: { ...recordingSpec, enabled: false } },
    };
    expect(condition(observe({ ...off, status: stopped.status }, pods), 'Recording')).toBeUndefined();
  });

  it('does not count pods that are being deleted', () => {
    const leaving = pod('leaving', { injected: true, runningFor: 100 });
    leaving.metadata = { ...leaving.metadata, deletionTimestamp: new Date(at(1)) };
    expect(observe(stream(), [leaving]).status.pods).toBe(0);
  });
});

describe('assessStream with pods that cannot be restarted for the sidecar', () => {
  const assess = (cannotRestart: Map<string, string>) =>
    assessStream({
      stream: stream('restartExisting'),
      pods: [pod('owned', { runningFor: 120 }), pod('bare', { runningFor: 120 })],
      reports: new Map(),
      now,
      reportFreshMs: 30_000,
      reportGraceMs: 60_000,
      cannotRestart,
    });

  it('restarts the others and names the ones it leaves, with why', () => {
    const result = assess(new Map([['bare', 'no controller would recreate it (a bare pod)']]));
    expect(condition(result, 'Progressing')).toMatchObject({
      status: 'True',
      reason: 'RestartingPods',
      message:
        'restarting 1 pod created without the sidecar, one at a time; not restarting bare (no controller would recreate it (a bare pod))',
    });
    expect(result.status.podsNeedingRestart).toEqual(['bare', 'owned']);
  });

  it('says so when none can be restarted', () => {
    const result = assess(
      new Map([
        ['bare', 'no controller would recreate it (a bare pod)'],
        [
          'owned',
          'namespace n is not labelled cloudphone.io/injection=enabled, so a new pod would get no sidecar either',
        ],
      ]),
    );
    expect(condition(result, 'Progressing')).toMatchObject({ status: 'True', reason: 'PodsCannotRestart' });
    expect(condition(result, 'Progressing')?.message).toMatch(
      /^2 pods without the sidecar cannot be restarted for it: /,
    );
  });
});
