// Bitrate adaptation with Debian's Chromium as the viewer, over loopback: on a clean link the encoder's bitrate
// climbs from the stream's minimum to its maximum in seconds, on the feedback Chromium really sends (receiver
// reports, NACKs, REMB). Before, it followed Chromium's REMB, which climbs about 8 % a second, and sat near the
// minimum for as long as one watched. The estimator's arithmetic, capped links and loss among it, is tested
// number by number in test/sidecar/viewer-bitrate.test.ts.

import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../cluster/wait-for.ts';
import { launchChromium, openPlayer, shownFrames } from './chromium-player.ts';
import { CONTROL_TOKEN, startWhepPhone, type WhepPhone } from './webrtc-peers.ts';

const BITRATE = { targetKbps: 1000, minKbps: 1000, maxKbps: 8000 };

let browser: Browser;
let phone: WhepPhone;

beforeAll(async () => {
  browser = await launchChromium();
  phone = await startWhepPhone({ width: 720, height: 1280, fps: 30, bitrate: BITRATE });
});

afterAll(async () => {
  await browser.close();
  await phone.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The encoder's bitrate once a second for `seconds` seconds. */
async function bitrateTrace(seconds: number): Promise<number[]> {
  const trace: number[] = [];
  for (let i = 0; i < seconds; i++) {
    await sleep(1000);
    trace.push(await phone.metric('cloudphone_bitrate_kbps'));
  }
  return trace;
}

async function firstFrame(page: Page): Promise<void> {
  await waitFor('the first frame on screen', async () => ((await shownFrames(page)).length > 0 ? true : undefined));
}

describe('bitrate adaptation to a Chromium viewer', () => {
  it('on a clean link, reaches 90 % of maxKbps within 10 s of the first picture', async () => {
    const page = await openPlayer(browser, phone.base, CONTROL_TOKEN);
    try {
      await firstFrame(page);
      const trace = await bitrateTrace(10);
      process.stdout.write(`clean link, kbit/s each second: ${trace.join(' ')}\n`);
      expect(Math.max(...trace)).toBeGreaterThanOrEqual(0.9 * BITRATE.maxKbps);
    } finally {
      await page.close();
    }
  });
});
