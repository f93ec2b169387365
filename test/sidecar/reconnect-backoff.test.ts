import { describe, expect, it } from 'vitest';
import { ReconnectBackoff } from '../../sidecar/src/webrtc/reconnect-backoff.ts';

describe('ReconnectBackoff', () => {
  it('doubles from the initial delay up to the maximum, and starts over after a reset', () => {
    const backoff = new ReconnectBackoff({ initialMs: 500, maxMs: 30_000 }, () => 0.5);
    const delays = Array.from({ length: 9 }, () => backoff.next());
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    backoff.reset();
    expect(backoff.next()).toBe(500);
  });

  it('spreads each delay by at most 20 % either way, never above the maximum', () => {
    const low = new ReconnectBackoff({ initialMs: 1000, maxMs: 5000 }, () => 0);
    const high = new ReconnectBackoff({ initialMs: 1000, maxMs: 5000 }, () => 0.999_999);
    expect([low.next(), low.next(), low.next(), low.next()]).toEqual([800, 1600, 3200, 4000]);
    expect([high.next(), high.next(), high.next(), high.next()]).toEqual([1200, 2400, 4800, 5000]);
  });
});
