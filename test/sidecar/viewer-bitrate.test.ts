// The bitrate estimate of one WebRTC peer, driven second by second with the feedback a link would give: a
// sender that sends what it is told (the encoder follows the estimate), a link that carries up to a cap and
// loses the rest, random loss on top, and Chromium's REMB. (The same in Chromium over a real capped link:
// test/media/bitrate-adaptation.test.ts.)

import { describe, expect, it } from 'vitest';
import { ViewerBitrate } from '../../sidecar/src/webrtc/viewer-bitrate.ts';

const RANGE = { minKbps: 1000, targetKbps: 1000, maxKbps: 8000 };

interface Link {
  capKbps: number;
  randomLoss?: number;
  rembKbps?: (sentKbps: number) => number | undefined;
}

/** One second on a link: the encoder sent at the estimate; the receiver reports loss (and REMB) five times. */
function second(estimator: ViewerBitrate, link: Link): number {
  const sentKbps = estimator.estimateKbps;
  const capped = sentKbps > link.capKbps ? 1 - link.capKbps / sentKbps : 0;
  const loss = 1 - (1 - capped) * (1 - (link.randomLoss ?? 0));
  const remb = link.rembKbps?.(sentKbps);
  for (let i = 0; i < 5; i++)
    estimator.feed({ pictureLost: false, fractionLost: loss, ...(remb === undefined ? {} : { rembBps: remb * 1000 }) });
  return estimator.tick(sending(sentKbps));
}

/** A second of media at kbps, in 1200-byte packets. */
function sending(kbps: number): { bytes: number; packets: number } {
  const bytes = (kbps * 1000) / 8;
  return { bytes, packets: Math.ceil(bytes / 1200) };
}

function run(estimator: ViewerBitrate, link: Link, seconds: number): number[] {
  return Array.from({ length: seconds }, () => second(estimator, link));
}

describe('ViewerBitrate', () => {
  it('on a clean link, reaches 90 % of maxKbps within 10 s from minKbps, and stays at the max', () => {
    const estimator = new ViewerBitrate(RANGE);
    const trace = run(estimator, { capKbps: Infinity }, 30);
    expect(trace[9]).toBeGreaterThanOrEqual(0.9 * RANGE.maxKbps);
    expect(trace.slice(10).every((kbps) => kbps === RANGE.maxKbps)).toBe(true);
  });

  it('ignores the slow climb of REMB on a clean link (Chromium raises it 8 % a second, at most 1.5x what it gets)', () => {
    const estimator = new ViewerBitrate(RANGE);
    let remb = 1500;
    const trace = run(
      estimator,
      {
        capKbps: Infinity,
        rembKbps: (sent) => {
          remb = Math.min(remb * 1.08, 1.5 * sent);
          return remb;
        },
      },
      10,
    );
    expect(trace[9]).toBeGreaterThanOrEqual(0.9 * RANGE.maxKbps);
  });

  it('under a 2 Mbit/s cap, settles within 15 % below it in 10 s and stays there, probing only just above', () => {
    const estimator = new ViewerBitrate(RANGE);
    const settled = run(estimator, { capKbps: 2000 }, 60).slice(10);
    for (const kbps of settled) {
      expect(kbps).toBeGreaterThanOrEqual(0.85 * 2000);
      // A probe a few percent over, for a second, is how a lifted cap is found.
      expect(kbps).toBeLessThanOrEqual(2000 * 1.05);
    }
    expect(settled.filter((kbps) => kbps > 2000).length).toBeLessThanOrEqual(settled.length / 4);
    expect(estimator.linkKbps).toBeGreaterThan(1800);
  });

  it('climbs back when the cap is lifted', () => {
    const estimator = new ViewerBitrate(RANGE);
    run(estimator, { capKbps: 2000 }, 30);
    const trace = run(estimator, { capKbps: Infinity }, 30);
    expect(trace.at(-1)).toBe(RANGE.maxKbps);
  });

  it('finds a cap from the NACKs alone, when retransmissions repair what the reports would count as lost', () => {
    const estimator = new ViewerBitrate(RANGE);
    let sequence = 0;
    const trace = Array.from({ length: 40 }, () => {
      const sent = sending(estimator.estimateKbps);
      const lost = Math.round(sent.packets * Math.max(0, 1 - 2000 / estimator.estimateKbps));
      // Each lost packet asked for three times (Chromium asks again until it comes), in NACKs of 16 items.
      const nacked = Array.from({ length: lost }, (_, i) => (sequence + i * 2) & 0xffff);
      sequence = (sequence + sent.packets) & 0xffff;
      for (let i = 0; i < 3; i++)
        for (let at = 0; at < nacked.length; at += 16)
          estimator.feed({ pictureLost: false, fractionLost: 0, nackedSequences: nacked.slice(at, at + 16) });
      return estimator.tick(sent);
    });
    for (const kbps of trace.slice(10)) {
      expect(kbps).toBeGreaterThanOrEqual(0.85 * 2000);
      expect(kbps).toBeLessThanOrEqual(2000 * 1.05);
    }
  });

  it('counts a NACKed packet again when its sequence number is lost again minutes later', () => {
    const estimator = new ViewerBitrate(RANGE);
    const second = { bytes: (RANGE.maxKbps * 1000) / 8, packets: 1000 };
    const nacked = Array.from({ length: 200 }, (_, i) => i);
    const lossySecond = (): number => {
      estimator.feed({ pictureLost: false, fractionLost: 0, nackedSequences: nacked });
      return estimator.tick(second);
    };
    lossySecond();
    // 254 clean seconds later (the estimator keeps a mark per sequence number for each second, in a byte).
    for (let i = 0; i < 254; i++) {
      estimator.feed({ pictureLost: false, fractionLost: 0 });
      estimator.tick(second);
    }
    expect(estimator.estimateKbps).toBe(RANGE.maxKbps);
    expect(lossySecond()).toBeLessThan(RANGE.maxKbps);
  });

  it('holds through 5 % random loss (NACKs repair it) instead of falling to the floor', () => {
    const estimator = new ViewerBitrate({ minKbps: 500, targetKbps: 2500, maxKbps: 4000 });
    const trace = run(estimator, { capKbps: Infinity, randomLoss: 0.05 }, 30);
    expect(Math.min(...trace)).toBe(2500);
  });

  it('falls to what REMB says when the receiver sees its queue grow (REMB drops below what is sent)', () => {
    const estimator = new ViewerBitrate(RANGE);
    run(estimator, { capKbps: Infinity, rembKbps: () => 9000 }, 12);
    expect(estimator.estimateKbps).toBe(RANGE.maxKbps);
    const after = second(estimator, { capKbps: Infinity, rembKbps: () => 3000 });
    expect(after).toBe(3000);
    // Then climbs again from there, carefully: the link REMB named is known.
    const trace = run(estimator, { capKbps: Infinity, rembKbps: () => 3000 }, 4);
    expect(Math.max(...trace)).toBeLessThan(3500);
  });

  it('does not climb on a path it did not use (a still or simple picture sends little)', () => {
    const estimator = new ViewerBitrate(RANGE);
    for (let i = 0; i < 20; i++) {
      estimator.feed({ pictureLost: false, fractionLost: 0 });
      estimator.tick(sending(100)); // against an estimate of 1000
    }
    expect(estimator.estimateKbps).toBe(RANGE.targetKbps);
  });

  it('stays within minKbps..maxKbps whatever the feedback', () => {
    const estimator = new ViewerBitrate(RANGE);
    const trace = run(estimator, { capKbps: 10 }, 10);
    expect(Math.min(...trace)).toBe(RANGE.minKbps);
  });
});
