import { describe, expect, it } from 'vitest';
import type { SidecarReport } from '../../../generated/ts/api-types.ts';
import { ReportStore } from '../../../operator/src/controller/sidecar-reports.ts';

const report = (pod: string, controlViewers: number): SidecarReport => ({
  stream: { namespace: 'phones', name: 'pool' },
  pod,
  streaming: true,
  viewers: controlViewers,
  controlViewers,
});

describe('ReportStore', () => {
  it("counts a phone's control viewers while its sidecar keeps reporting, and not once it falls silent", () => {
    const store = new ReportStore(30_000);
    store.put(report('phone-1', 1), 1_000);
    expect(store.controlViewers('phones', 'pool', 'phone-1', 1_000)).toBe(1);
    expect(store.controlViewers('phones', 'pool', 'phone-1', 31_000)).toBe(1);
    // The sidecar died with a viewer attached: after the freshness window the phone is no longer busy.
    expect(store.controlViewers('phones', 'pool', 'phone-1', 31_001)).toBe(0);
    store.put(report('phone-1', 2), 40_000);
    expect(store.controlViewers('phones', 'pool', 'phone-1', 40_000)).toBe(2);
  });

  it('knows no viewers of a phone that never reported, or of another stream', () => {
    const store = new ReportStore(30_000);
    store.put(report('phone-1', 1), 1_000);
    expect(store.controlViewers('phones', 'pool', 'phone-2', 1_000)).toBe(0);
    expect(store.controlViewers('phones', 'other', 'phone-1', 1_000)).toBe(0);
  });
});
