// The player page in a real browser: Debian's Chromium opens the sidecar's page with a token, plays the
// phone's screen over WHEP, and a click in the page arrives at the phone as a touch at the right place.
// werift watches at the same time, as a second, independent viewer.

import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../cluster/wait-for.ts';
import { launchChromium, openPlayer, pagePoint, shownFrames } from './chromium-player.ts';
import { CONTROL_TOKEN, startWhepPhone, VIEWER_TOKEN, WeriftViewer, type WhepPhone } from './webrtc-peers.ts';

const WIDTH = 480;
const HEIGHT = 864;
const ARTIFACTS = new URL('../../.cache/artifacts/', import.meta.url);

let browser: Browser;
let phone: WhepPhone;

beforeAll(async () => {
  browser = await launchChromium();
  phone = await startWhepPhone({ width: WIDTH, height: HEIGHT });
});

afterAll(async () => {
  await browser.close();
  await phone.stop();
});

function touches(): Record<string, unknown>[] {
  return phone.simulator.events.filter((e) => e.event === 'input' && e.kind === 'touch');
}

describe('the player page in Chromium', () => {
  it('plays the phone: stamps advance, and a second (werift) viewer gets the same frames', async () => {
    const page = await openPlayer(browser, phone.base, CONTROL_TOKEN);
    const werift = await WeriftViewer.connect({ base: phone.base, token: VIEWER_TOKEN, width: WIDTH, height: HEIGHT });
    try {
      await waitFor(
        '60 frames in the browser',
        async () => ((await shownFrames(page)).length >= 60 ? true : undefined),
        20_000,
      );
      const browserFrames = (await shownFrames(page)).map((f) => f.frame);
      for (let i = 1; i < browserFrames.length; i++)
        expect(browserFrames[i]).toBeGreaterThan(browserFrames[i - 1] ?? Infinity);
      await waitFor(
        'werift decoding',
        () => Promise.resolve(werift.decoder.stamps.length >= 30 ? true : undefined),
        20_000,
      );
      const weriftFrames = new Set(werift.decoder.stamps.map((s) => s.frame));
      const common = browserFrames.filter((frame) => weriftFrames.has(frame));
      expect(common.length).toBeGreaterThanOrEqual(20);
      // The page reports when it showed each frame: the sidecar turns that into glass-to-glass latency.
      await waitFor(
        'latency samples',
        async () => {
          const text = await (await fetch(`http://127.0.0.1:${String(phone.sidecar.metricsPort)}/metrics`)).text();
          const count = /cloudphone_webrtc_glass_to_glass_seconds_count\{viewer="[^"]+"\} (\d+)/.exec(text)?.[1];
          return Number(count ?? 0) >= 30 ? true : undefined;
        },
        10_000,
      );
      await page.locator('#overlay', { hasText: 'glass-to-glass' }).waitFor();
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: new URL('player.png', ARTIFACTS).pathname });
    } finally {
      await werift.close();
      await page.close();
    }
  });

  it('a click in the page reaches the phone as a touch at the same place on its screen', async () => {
    const page = await openPlayer(browser, phone.base, CONTROL_TOKEN);
    try {
      await waitFor('the picture', async () => ((await shownFrames(page)).length >= 5 ? true : undefined), 20_000);
      const before = touches().length;
      const point = await pagePoint(page, 0.3, 0.6);
      await page.mouse.click(point.x, point.y);
      await waitFor(
        'down and up at the phone',
        () => Promise.resolve(touches().length >= before + 2 ? true : undefined),
        10_000,
      );
      const [down, up] = touches().slice(before);
      expect(down).toMatchObject({ action: 0, pointerId: 0 });
      expect(up).toMatchObject({ action: 1, pointerId: 0 });
      // Within a pixel of the phone's 480x864 screen.
      expect(Math.abs(Number(down?.x) - 0.3) * WIDTH).toBeLessThan(1.5);
      expect(Math.abs(Number(down?.y) - 0.6) * HEIGHT).toBeLessThan(1.5);
      // Clicks on the letterbox bars are not on the phone.
      const bar = await pagePoint(page, -0.1, 0.5);
      expect(bar.x).toBeGreaterThan(0);
      await page.mouse.click(bar.x, bar.y);
      await page.keyboard.press('KeyA');
      await waitFor(
        'the key at the phone',
        () => Promise.resolve(phone.simulator.events.some((e) => e.kind === 'key') ? true : undefined),
        10_000,
      );
      expect(phone.simulator.events.find((e) => e.kind === 'key')).toMatchObject({ keycode: 29, action: 0 });
      expect(touches().length).toBe(before + 2);
    } finally {
      await page.close();
    }
  });

  it('a view-only token plays but cannot touch the phone', async () => {
    const page = await openPlayer(browser, phone.base, VIEWER_TOKEN);
    try {
      await waitFor('the picture', async () => ((await shownFrames(page)).length >= 5 ? true : undefined), 20_000);
      const before = touches().length;
      const point = await pagePoint(page, 0.5, 0.5);
      await page.mouse.click(point.x, point.y);
      // The page does not send; and when a page is made to send anyway, the sidecar refuses (see
      // webrtc-viewers.test.ts). Give a touch the time it would need to arrive, then check none did.
      await page.locator('#overlay', { hasText: 'view only' }).waitFor();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(touches().length).toBe(before);
    } finally {
      await page.close();
    }
  });
});
