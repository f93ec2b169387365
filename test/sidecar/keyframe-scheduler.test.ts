import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyframeScheduler, viewOnlyWaitMs } from '../../sidecar/src/webrtc/keyframe-scheduler.ts';

describe('KeyframeScheduler', () => {
  let requests: number[];
  let scheduler: KeyframeScheduler;
  const start = 1_000_000;
  /** The encoder: each request makes a keyframe 30 ms later, as the pipeline's encode does. */
  function encoderMakesKeyframes(): void {
    requests = [];
    scheduler = new KeyframeScheduler(
      () => {
        requests.push(Date.now() - start);
        setTimeout(() => {
          scheduler.keyframeSent();
        }, 30);
      },
      { minIntervalMs: 250, waitMs: 2500, now: () => Date.now() },
    );
  }
  /** Periodic keyframes every 2 s, as x264 makes with keyframeIntervalSeconds 2. */
  function periodicKeyframes(): NodeJS.Timeout {
    return setInterval(() => {
      scheduler.keyframeSent();
    }, 2000);
  }

  beforeEach(() => {
    vi.useFakeTimers({ now: start });
    encoderMakesKeyframes();
  });
  afterEach(() => {
    scheduler.close();
    vi.useRealTimers();
  });

  it('answers an urgent wish at once, and a burst of them with one more at the end of the interval', () => {
    scheduler.urgent();
    for (let i = 0; i < 10; i++) scheduler.urgent();
    vi.advanceTimersByTime(1000);
    expect(requests).toEqual([0, 250]);
  });

  it('makes no keyframe for view-only wishes while periodic keyframes come, however many there are', () => {
    const periodic = periodicKeyframes();
    vi.advanceTimersByTime(100);
    for (let t = 0; t < 20_000; t += 50) {
      scheduler.whenDue();
      vi.advanceTimersByTime(50);
    }
    clearInterval(periodic);
    expect(requests).toEqual([]);
  });

  it('keeps the urgent keyframes at their rate when view-only wishes flood alongside', () => {
    const periodic = periodicKeyframes();
    for (let t = 0; t < 10_000; t += 10) {
      scheduler.whenDue();
      if (t % 1000 === 0) scheduler.urgent();
      vi.advanceTimersByTime(10);
    }
    clearInterval(periodic);
    expect(requests).toEqual([0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]);
  });

  it('makes one for view-only wishes when the stream has made none for the wait, at most once per wait', () => {
    // No periodic keyframes (keyframeIntervalSeconds 0, or a still screen).
    scheduler.keyframeSent();
    for (let t = 0; t < 10_000; t += 10) {
      scheduler.whenDue();
      vi.advanceTimersByTime(10);
    }
    expect(requests).toEqual([2500, 5030, 7560]);
  });

  it('lets a view-only wish ride on the next urgent keyframe', () => {
    scheduler.keyframeSent();
    vi.advanceTimersByTime(1000);
    scheduler.whenDue();
    scheduler.urgent();
    vi.advanceTimersByTime(5000);
    expect(requests).toEqual([1000]);
  });

  it('waits past the period for periodic IDRs, and two seconds when there are none to wait for', () => {
    expect(viewOnlyWaitMs(2, false)).toBe(2500);
    expect(viewOnlyWaitMs(0, false)).toBe(2000);
    expect(viewOnlyWaitMs(2, true)).toBe(2000);
  });
});
