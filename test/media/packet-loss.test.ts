// 5 % packet loss between the sidecar and a viewer, both ways: nftables drops packets at random on the one UDP
// port the sidecar's ICE uses (packet-loss.ts), and Debian's Chromium plays the player page through it. The
// picture must keep coming: lost packets are asked for again (NACK) and answered from the sidecar's history, a
// picture that cannot be repaired is replaced by a keyframe (PLI), and no stretch without a new picture on
// screen lasts a second.

import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../cluster/wait-for.ts';
import { inboundVideoStats, launchChromium, openPlayer, shownFrames, type ShownFrame } from './chromium-player.ts';
import { freeUdpPort } from './media-peers.ts';
import { PacketLoss } from './packet-loss.ts';
import { CONTROL_TOKEN, startWhepPhone, type WhepPhone } from './webrtc-peers.ts';

const WIDTH = 720;
const HEIGHT = 1280;
const FPS = 30;
const LOSS_PERCENT = 5;
const WATCH_SECONDS = 15;

let browser: Browser;
let phone: WhepPhone;
let udpPort: number;

beforeAll(async () => {
  browser = await launchChromium();
  udpPort = await freeUdpPort();
  phone = await startWhepPhone({
    width: WIDTH,
    height: HEIGHT,
    fps: FPS,
    bitrate: { targetKbps: 2500, minKbps: 500, maxKbps: 4000 },
    webrtc: { udpPort },
  });
});

afterAll(async () => {
  await browser.close();
  await phone.stop();
});

/** The longest time between two consecutive pictures on screen, by their capture times (milliseconds). */
function longestStill(frames: readonly ShownFrame[]): number {
  let longest = 0;
  for (let i = 1; i < frames.length; i++) {
    const current = frames[i];
    const previous = frames[i - 1];
    if (current && previous) longest = Math.max(longest, (current.captureNs - previous.captureNs) / 1e6);
  }
  return longest;
}

describe('5 % packet loss between the sidecar and the browser', () => {
  it('keeps the picture coming: NACKs repair it, and it never stands still for a second', async () => {
    let page: Page | undefined;
    const loss = await PacketLoss.apply(udpPort, LOSS_PERCENT);
    try {
      page = await openPlayer(browser, phone.base, CONTROL_TOKEN);
      const opened = page;
      await waitFor('the first frames through the loss', async () =>
        (await shownFrames(opened)).length >= 5 ? true : undefined,
      );
      const start = (await shownFrames(page)).length;
      await new Promise((resolve) => setTimeout(resolve, WATCH_SECONDS * 1000));
      const frames = (await shownFrames(page)).slice(start);
      const stats = await inboundVideoStats(page);
      const counts = await loss.counts();

      // The loss was real, in both directions (5 % of a few thousand packets, with room for chance).
      const dropped = counts.toViewerDropped / counts.toViewer;
      expect(counts.toViewer).toBeGreaterThan(1000);
      expect(dropped).toBeGreaterThan(0.03);
      expect(dropped).toBeLessThan(0.07);
      expect(counts.fromViewerDropped).toBeGreaterThan(0);

      // Chromium saw the holes and asked for the packets again; what the sidecar sent back filled most of them.
      expect(stats?.nackCount).toBeGreaterThan(20);
      expect(stats?.packetsLost ?? Infinity).toBeLessThan(counts.toViewerDropped / 2);

      // The picture kept coming: frames in order, most of them shown, and never a second without a new one.
      // (A frame may show twice: when the phone stalls past 100 ms, a keyframe wish is answered by encoding the
      // last picture again. Never out of order.)
      let repeats = 0;
      for (let i = 1; i < frames.length; i++) {
        expect(frames[i]?.frame).toBeGreaterThanOrEqual(frames[i - 1]?.frame ?? Infinity);
        if (frames[i]?.frame === frames[i - 1]?.frame) repeats++;
      }
      expect(repeats).toBeLessThan(5);
      expect(frames.length).toBeGreaterThan(WATCH_SECONDS * FPS * 0.8);
      expect(longestStill(frames)).toBeLessThan(1000);
      // The figures, for the record (the run's log shows them next to the result).
      process.stdout.write(
        `5 % loss, ${String(WATCH_SECONDS)} s: ${String(frames.length)} frames shown, longest still ` +
          `${longestStill(frames).toFixed(0)} ms; dropped ${String(counts.toViewerDropped)}/${String(counts.toViewer)} ` +
          `to the viewer, ${String(counts.fromViewerDropped)}/${String(counts.fromViewer)} from it; Chromium: ` +
          `${JSON.stringify(stats)}\n`,
      );
    } finally {
      await page?.close();
      await loss.remove();
    }
  });
});
