// The operator's memory does not grow with the objects it has ever seen: what it remembers per object is swept
// once it is of no use, and the pods it keeps are trimmed to what it reads.

import type { CoreV1Api, CustomObjectsApi, V1Pod } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventRecorder } from '../../../operator/src/controller/event-recorder.ts';
import { StatusWriter } from '../../../operator/src/controller/status-writer.ts';
import { trimPod } from '../../../operator/src/kube/pod-cache.ts';
import { silentLog } from './fake-cluster.ts';

describe('what the operator remembers', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('forgets the status it wrote for objects once past the trust window, however many there were', async () => {
    const custom = { patchNamespacedCustomObjectStatus: () => Promise.resolve({}) } as unknown as CustomObjectsApi;
    const writer = new StatusWriter(custom, 1000);
    // 20 000 claims come and go, 100 a second: only the last few seconds' are remembered.
    for (let i = 0; i < 20_000; i++) {
      const write = writer.write({ kind: 'K', plural: 'ks', namespace: 'ns', name: `c${String(i)}` }, { n: i }, {});
      await vi.advanceTimersByTimeAsync(10);
      await write;
    }
    expect(writer.writes).toBe(20_000);
    expect(writer.remembered).toBeLessThan(2000);
  });

  it('forgets the counts of Events older than an hour', async () => {
    const core = {
      createNamespacedEvent: () => Promise.resolve({}),
      patchNamespacedEvent: () => Promise.resolve({}),
    } as unknown as CoreV1Api;
    const events = new EventRecorder(core, silentLog);
    for (let i = 0; i < 10_000; i++) {
      await events.record(
        { metadata: { name: `claim-${String(i)}`, namespace: 'ns', uid: String(i) } },
        'Normal',
        'Bound',
        'x',
      );
      vi.setSystemTime(Date.now() + 1000); // one Event a second: under three hours in all
    }
    expect(events.size).toBeLessThanOrEqual(3600 + 256);
  });

  it('keeps of a phone pod its metadata, node, phase, readiness and address, not its spec or container states', () => {
    const pod: V1Pod = {
      metadata: { name: 'p', labels: { a: 'b' }, managedFields: [{ manager: 'kubelet' }] },
      spec: {
        nodeName: 'n1',
        containers: [{ name: 'android', image: 'x', env: [{ name: 'BIG', value: 'y'.repeat(4096) }] }],
      },
      status: {
        phase: 'Running',
        podIP: '10.0.0.1',
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: [{ name: 'android', image: 'x', imageID: 'y', ready: true, restartCount: 0 }],
      },
    };
    trimPod(pod);
    expect(pod).toEqual({
      metadata: { name: 'p', labels: { a: 'b' } },
      spec: { nodeName: 'n1' },
      status: { phase: 'Running', podIP: '10.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] },
    });
  });
});
