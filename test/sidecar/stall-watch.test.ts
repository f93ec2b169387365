import { describe, expect, it } from 'vitest';
import { StallWatch } from '../../sidecar/player/stall-watch.ts';

describe('StallWatch', () => {
  it('asks nothing of a still screen: the last picture announced is on screen', () => {
    const watch = new StallWatch(1000);
    watch.announced(3000, 0);
    watch.shown(3000, 40);
    for (let t = 1000; t <= 60_000; t += 1000) expect(watch.keyframeDue(t)).toBe(false);
  });

  it('asks for a keyframe once a second while an announced picture never shows', () => {
    const watch = new StallWatch(1000);
    watch.announced(3000, 0);
    watch.shown(3000, 30);
    watch.announced(6000, 33);
    expect(watch.keyframeDue(900)).toBe(false);
    expect(watch.keyframeDue(1033)).toBe(true);
    expect(watch.keyframeDue(1500)).toBe(false);
    expect(watch.keyframeDue(2033)).toBe(true);
    // The keyframe arrives: a repeated picture the sidecar did not announce, newer than every announcement.
    watch.shown(9000, 2100);
    expect(watch.keyframeDue(5000)).toBe(false);
  });

  it('asks nothing of a stream that flows with the video a few frames behind its announcements', () => {
    const watch = new StallWatch(1000);
    for (let frame = 0; frame < 300; frame++) {
      const now = frame * 33;
      watch.announced(frame * 3000, now);
      // Shown 100 ms after its announcement: three announcements always wait.
      if (frame >= 3) watch.shown((frame - 3) * 3000, now);
      expect(watch.keyframeDue(now)).toBe(false);
    }
  });

  it('takes an announcement that arrives after its picture showed', () => {
    const watch = new StallWatch(1000);
    watch.shown(3000, 10);
    watch.announced(3000, 20);
    expect(watch.keyframeDue(5000)).toBe(false);
  });

  it('follows RTP timestamps across their 32-bit wrap', () => {
    const watch = new StallWatch(1000);
    watch.announced(0xffff_f000, 0);
    watch.shown(0xffff_f000, 10);
    watch.announced(0x0000_0400, 33);
    expect(watch.keyframeDue(1100)).toBe(true);
    watch.shown(0x0000_0400, 1200);
    expect(watch.keyframeDue(5000)).toBe(false);
    // An older announcement arriving late (the channel is unordered) changes nothing.
    watch.announced(0xffff_f000, 5100);
    expect(watch.keyframeDue(9000)).toBe(false);
  });
});
