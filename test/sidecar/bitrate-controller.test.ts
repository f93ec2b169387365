import { describe, expect, it } from 'vitest';
import { BitrateController, type SrtSample } from '../../sidecar/src/pipeline/bitrate-controller.ts';

const limits = { minKbps: 500, targetKbps: 4000, maxKbps: 8000, latencyMs: 120 };
const sample = (packetsSent: number, packetsLost = 0, sendBufferMs = 0): SrtSample => ({
  connected: true,
  packetsSent,
  packetsLost,
  sendBufferMs,
});

describe('BitrateController', () => {
  it('starts at the target and needs two samples before it changes anything', () => {
    const controller = new BitrateController(limits);
    expect(controller.currentKbps).toBe(4000);
    expect(controller.update(sample(100))).toBeUndefined();
  });

  it('backs off by 30 % when more than 2 % of packets were lost in the interval', () => {
    const controller = new BitrateController(limits);
    controller.update(sample(1000));
    expect(controller.update(sample(2000, 50))).toBe(2800);
  });

  it('backs off when the send buffer holds more than half the SRT latency', () => {
    const controller = new BitrateController(limits);
    controller.update(sample(1000));
    expect(controller.update(sample(2000, 0, 80))).toBe(2800);
  });

  it('climbs by 5 % of the range per clean interval and stops at maxKbps', () => {
    const controller = new BitrateController(limits);
    let sent = 0;
    controller.update(sample(sent));
    const seen: (number | undefined)[] = [];
    for (let i = 0; i < 30; i++) seen.push(controller.update(sample((sent += 1000))));
    expect(seen[0]).toBe(4375);
    expect(controller.currentKbps).toBe(8000);
    expect(seen.at(-1)).toBeUndefined();
  });

  it('never goes below minKbps', () => {
    const controller = new BitrateController(limits);
    let sent = 0;
    controller.update(sample(sent));
    for (let i = 0; i < 20; i++) controller.update(sample((sent += 1000), i * 1000));
    expect(controller.currentKbps).toBe(500);
  });

  it('ignores intervals without a connection or after a reconnect reset the counters', () => {
    const controller = new BitrateController(limits);
    controller.update(sample(5000));
    expect(controller.update({ ...sample(6000, 900), connected: false })).toBeUndefined();
    expect(controller.update(sample(100, 90))).toBeUndefined();
    expect(controller.currentKbps).toBe(4000);
  });
});
