// The player page in a real browser: Debian's Chromium opens the sidecar's page with a token, plays the
// phone's screen over WHEP, and a click in the page arrives at the phone as a touch at the right place.
// werift watches at the same time, as a second, independent viewer.

import { mkdirSync } from 'node:fs';
import type { Browser, BrowserContextOptions, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, waitUntil } from '../cluster/wait-for.ts';
import {
  isFullscreen,
  launchChromium,
  openPlayer,
  pagePoint,
  paste,
  pictureInPage,
  readClipboard,
  shownFrames,
} from './chromium-player.ts';
import { metricSamples } from './media-peers.ts';
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

/** The text the phone has received since its event number since, in order. */
function textAtPhoneSince(since: number): string {
  return phone.simulator.events
    .slice(since)
    .filter((e) => e.kind === 'text')
    .map((e) => String(e.text))
    .join('');
}

/** Waits until the element's text is the one expected (or matches it). */
async function showsText(locator: Locator, expected: string | RegExp): Promise<void> {
  let shown: string | null = null;
  await waitFor(`the text ${String(expected)}`, async () => {
    shown = await locator.textContent();
    const matches = typeof expected === 'string' ? shown === expected : expected.test(shown ?? '');
    return matches ? true : undefined;
  }).catch((error: unknown) => {
    throw new Error(`${String(error)} (shown: ${JSON.stringify(shown)})`);
  });
}

async function framesShown(page: Page, count: number): Promise<void> {
  await waitFor(
    `${String(count)} frames in the browser`,
    async () => ((await shownFrames(page)).length >= count ? true : undefined),
    20_000,
  );
}

/** Opens the player with a token, waits for its first frames, runs body, closes the page. */
async function withPlayer(
  token: string,
  body: (page: Page) => Promise<void>,
  beforeLoad?: (page: Page) => void,
  options?: BrowserContextOptions,
): Promise<void> {
  const page = await openPlayer(browser, phone.base, token, beforeLoad, options);
  try {
    await framesShown(page, 5);
    await body(page);
  } finally {
    await page.close();
  }
}

describe('the player page in Chromium', () => {
  it('plays the phone: stamps advance, and a second (werift) viewer gets the same frames', async () => {
    const werift = await WeriftViewer.connect({ base: phone.base, token: VIEWER_TOKEN, width: WIDTH, height: HEIGHT });
    await withPlayer(CONTROL_TOKEN, async (page) => {
      await framesShown(page, 60);
      const browserFrames = (await shownFrames(page)).map((f) => f.frame);
      // In order, never back. A frame may show twice: a viewer joining asks for a keyframe, and when the phone
      // has stalled past 100 ms (the media tests share the two cores) the last picture is encoded again.
      let repeats = 0;
      for (let i = 1; i < browserFrames.length; i++) {
        expect(browserFrames[i]).toBeGreaterThanOrEqual(browserFrames[i - 1] ?? Infinity);
        if (browserFrames[i] === browserFrames[i - 1]) repeats++;
      }
      expect(repeats).toBeLessThan(5);
      // werift views only: it starts at the next keyframe the stream makes anyway (up to the 2 s period), so
      // compare what both had by the time it decoded 30.
      await waitUntil('werift decoding', () => werift.decoder.stamps.length >= 30, 20_000);
      const weriftFrames = new Set(werift.decoder.stamps.map((s) => s.frame));
      const common = (await shownFrames(page)).map((f) => f.frame).filter((frame) => weriftFrames.has(frame));
      expect(common.length).toBeGreaterThanOrEqual(20);
      // The page reports when it showed each frame: the sidecar turns that into capture-to-display latency.
      await waitFor(
        'latency samples',
        async () => {
          const counts = await metricSamples(
            phone.sidecar.metricsPort,
            'cloudphone_webrtc_capture_to_display_seconds_count',
          );
          return counts.some((sample) => sample.labels.startsWith('{viewer=') && sample.value >= 30) ? true : undefined;
        },
        10_000,
      );
      await page.locator('#overlay', { hasText: 'capture-to-display' }).waitFor();
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: new URL('player.png', ARTIFACTS).pathname });
    }).finally(() => werift.close());
  });

  it('a click in the page reaches the phone as a touch at the same place on its screen', async () => {
    await withPlayer(CONTROL_TOKEN, async (page) => {
      const before = touches().length;
      const point = await pagePoint(page, 0.3, 0.6);
      await page.mouse.click(point.x, point.y);
      await waitUntil('down and up at the phone', () => touches().length >= before + 2);
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
      await waitUntil('the key at the phone', () => phone.simulator.events.some((e) => e.kind === 'key'));
      expect(phone.simulator.events.find((e) => e.kind === 'key')).toMatchObject({ keycode: 29, action: 0 });
      expect(touches().length).toBe(before + 2);
    });
  });

  it('a paste reaches the phone whole: no character cut, long text in full pieces, Windows line ends as newlines', async () => {
    // An emoji across where 64 UTF-16 units would have cut it, a flag (two code points, one grapheme), text far
    // over one message (255 bytes), and a CRLF.
    const pasted = `${'a'.repeat(63)}😀 ${'手机'.repeat(100)} 🇫🇷\r\nend`;
    await withPlayer(CONTROL_TOKEN, async (page) => {
      const before = phone.simulator.events.length;
      await paste(page, pasted);
      const expected = pasted.replace('\r\n', '\n');
      const received = (): string => textAtPhoneSince(before);
      await waitUntil('the whole paste at the phone', () => received().length >= expected.length);
      expect(received()).toBe(expected);
      expect(await phone.metric('cloudphone_webrtc_viewer_messages_refused_total{reason="invalid"}')).toBe(0);
    });
  });

  it("presses the phone's keys: buttons and Alt shortcuts send Back, Home, Recents, Power and Volume, down then up", async () => {
    // android.view.KeyEvent: BACK 4, HOME 3, APP_SWITCH 187, POWER 26, VOLUME_UP 24, VOLUME_DOWN 25.
    const expected = [4, 3, 187, 26, 24, 25];
    await withPlayer(CONTROL_TOKEN, async (page) => {
      const since = phone.simulator.events.length;
      const phoneKeys = (): { keycode: unknown; action: unknown }[] =>
        phone.simulator.events
          .slice(since)
          .filter((e) => e.kind === 'key' && e.keycode !== 57) // Alt itself goes too, as any key the phone knows
          .map((e) => ({ keycode: e.keycode, action: e.action }));
      const buttons = page.locator('#keys button[data-keycode]');
      await buttons.first().waitFor();
      const count = await buttons.count();
      const keycodes = await Promise.all(
        Array.from({ length: count }, (_, n) => buttons.nth(n).getAttribute('data-keycode')),
      );
      expect(keycodes.map(Number)).toEqual(expected);
      for (let i = 0; i < expected.length; i++) await buttons.nth(i).click();
      await waitUntil('six presses', () => phoneKeys().length >= 12);
      expect(phoneKeys()).toEqual(expected.flatMap((keycode) => [0, 1].map((action) => ({ keycode, action }))));

      // The shortcuts, each named on its button.
      expect(await buttons.first().getAttribute('title')).toBe('Back (Alt+B)');
      const shortcuts = ['Alt+KeyB', 'Alt+KeyH', 'Alt+KeyS', 'Alt+KeyP', 'Alt+ArrowUp', 'Alt+ArrowDown'];
      for (const shortcut of shortcuts) await page.keyboard.press(shortcut);
      await waitUntil('six shortcuts', () => phoneKeys().length >= 24);
      expect(phoneKeys().slice(12)).toEqual(
        expected.flatMap((keycode) => [0, 1].map((action) => ({ keycode, action }))),
      );

      // A long press holds the key down until the mouse lets go (Power: the phone's power menu).
      const power = await buttons.nth(3).boundingBox();
      if (!power) throw new Error('the Power button is on the page');
      await page.mouse.move(power.x + power.width / 2, power.y + power.height / 2);
      await page.mouse.down();
      await waitUntil('Power down', () => phoneKeys().length >= 25);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(phoneKeys().slice(24)).toEqual([{ keycode: 26, action: 0 }]);
      await page.mouse.up();
      await waitUntil('Power up', () => phoneKeys().length >= 26);
      expect(phoneKeys()[25]).toEqual({ keycode: 26, action: 1 });
    });
  });

  it('sends what an input method composed once, as text, and nothing of the composing keys', async () => {
    await withPlayer(CONTROL_TOKEN, async (page) => {
      const since = phone.simulator.events.length;
      const typed = (): string => textAtPhoneSince(since);
      // What Chromium does for an input method: composition updates as the user types the reading, then the
      // chosen characters committed (CDP's IME calls are what an IME's events become in the renderer).
      const cdp = await page.context().newCDPSession(page);
      for (const reading of ['s', 'sh', 'shou', 'shouji'])
        await cdp.send('Input.imeSetComposition', {
          text: reading,
          selectionStart: reading.length,
          selectionEnd: reading.length,
        });
      await cdp.send('Input.insertText', { text: '手机' });
      await waitUntil('the composed text', () => typed().length >= 2);
      // Then a character no Android key stands for, typed as a key: text too, after the composition.
      await page.keyboard.type('é');
      await waitUntil('the typed character', () => typed().length >= 3);
      await new Promise((resolve) => setTimeout(resolve, 300)); // a second copy would come within this
      expect(typed()).toBe('手机é');
      expect(phone.simulator.events.slice(since).filter((e) => e.kind === 'key')).toEqual([]);
    });
  });

  it("types what the viewer's keyboard layout makes: letters by character, dead keys composed, commands by the letter shown", async () => {
    await withPlayer(CONTROL_TOKEN, async (page) => {
      const cdp = await page.context().newCDPSession(page);
      // What Chromium gets from the system for one key of a layout other than US: the key's place (code), the
      // character it makes (key), and that text.
      const press = async (key: string, code: string, options: { text?: string; modifiers?: number } = {}) => {
        const { text, modifiers = 0 } = options;
        await cdp.send('Input.dispatchKeyEvent', { type: text ? 'keyDown' : 'rawKeyDown', key, code, text, modifiers });
        await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key, code, modifiers });
      };
      const since = phone.simulator.events.length;
      const keysAtPhone = (): { keycode: unknown; action: unknown; metaState: unknown }[] =>
        phone.simulator.events
          .slice(since)
          .filter((e) => e.kind === 'key')
          .map((e) => ({ keycode: e.keycode, action: e.action, metaState: e.metaState }));
      // AZERTY: the key at KeyQ types 'a' (KEYCODE_A 29, not Q 45); the key at Digit1 types '&' unshifted (text,
      // not KEYCODE_1) and '1' with Shift (KEYCODE_1 8 without Shift, or the phone's US map makes it '!').
      await press('a', 'KeyQ', { text: 'a' });
      await press('&', 'Digit1', { text: '&' });
      await press('1', 'Digit1', { text: '1', modifiers: 8 });
      // French dead circumflex, then e: Windows-style (the next key brings the composed character) ...
      await press('Dead', 'BracketLeft');
      await press('ê', 'KeyE', { text: 'ê' });
      // ... and Linux-style (an input-method composition of the accent, then the character).
      await press('Dead', 'BracketLeft');
      await cdp.send('Input.imeSetComposition', { text: '^', selectionStart: 1, selectionEnd: 1 });
      await cdp.send('Input.insertText', { text: 'ô' });
      // Ctrl+C on a Russian layout: the key at KeyC makes 'с' (Cyrillic); the command is the place's letter.
      await press('с', 'KeyC', { modifiers: 2 });
      await waitUntil('the text at the phone', () => textAtPhoneSince(since).length >= 3);
      await waitUntil('the keys at the phone', () => keysAtPhone().filter((k) => k.keycode === 31).length >= 2);
      await new Promise((resolve) => setTimeout(resolve, 300)); // a second copy would come within this
      expect(textAtPhoneSince(since)).toBe('&êô');
      const ctrl = 0x1000 | 0x2000;
      expect(keysAtPhone().filter((k) => k.keycode !== 113)).toEqual([
        { keycode: 29, action: 0, metaState: 0 },
        { keycode: 29, action: 1, metaState: 0 },
        { keycode: 8, action: 0, metaState: 0 },
        { keycode: 8, action: 1, metaState: 0 },
        { keycode: 31, action: 0, metaState: ctrl },
        { keycode: 31, action: 1, metaState: ctrl },
      ]);
    });
  });

  it("puts what was copied on the phone in the viewer's clipboard, or shows it to copy where the page may not; never to view-only viewers", async () => {
    const copied = 'grüße\n手机 📋';
    const clipboardUpdates = async (): Promise<number> => phone.metric('cloudphone_producer_clipboard_updates_total');
    const before = await clipboardUpdates();
    const granted = { permissions: ['clipboard-read', 'clipboard-write'] };
    await withPlayer(
      CONTROL_TOKEN,
      async (page) => {
        const watcher = await openPlayer(browser, phone.base, VIEWER_TOKEN);
        try {
          // Its data channel is open (it has heard who watches): a clipboard sent to it would arrive.
          await showsText(watcher.locator('#presence'), 'View only · 2 watching');
          phone.simulator.command(`clipboard ${copied.replace('\n', '\\n')}`);
          await waitFor('the clipboard in the page', async () =>
            (await readClipboard(page)) === copied ? true : undefined,
          );
          await showsText(page.locator('#notice'), /in your clipboard/);
          expect(await clipboardUpdates()).toBe(before + 1);
          // The view-only page was told nothing: no panel, no notice. Another viewer joining is news it hears on
          // the same ordered channel after the clipboard would have come, so by then it would have shown.
          const third = await openPlayer(browser, phone.base, VIEWER_TOKEN);
          await showsText(watcher.locator('#presence'), 'View only · 3 watching');
          await third.close();
          expect(await watcher.locator('#clipboard').isHidden()).toBe(true);
          expect(await watcher.locator('#notice').isHidden()).toBe(true);
        } finally {
          await watcher.close();
        }
      },
      undefined,
      granted,
    );
    // Where the browser refuses the page its clipboard (denied here as a user would), the text is shown to copy.
    await withPlayer(CONTROL_TOKEN, async (page) => {
      const cdp = await page.context().newCDPSession(page);
      const { targetInfo } = await cdp.send('Target.getTargetInfo');
      await cdp.send('Browser.setPermission', {
        permission: { name: 'clipboard-write' },
        setting: 'denied',
        origin: new URL(phone.base).origin,
        browserContextId: targetInfo.browserContextId,
      });
      phone.simulator.command('clipboard a password, perhaps');
      await page.locator('#clipboard').waitFor({ state: 'visible' });
      expect(await page.locator('#clipboard-text').inputValue()).toBe('a password, perhaps');
      // Keys typed in the panel stay in it (the system's copy shortcut must work there), not sent to the phone.
      const since = phone.simulator.events.length;
      await page.locator('#clipboard-text').press('Control+KeyA');
      await page.locator('#clipboard-close').click();
      expect(await page.locator('#clipboard').isHidden()).toBe(true);
      await page.keyboard.press('KeyB');
      await waitUntil(
        'B down and up at the phone',
        () => phone.simulator.events.slice(since).filter((e) => e.kind === 'key' && e.keycode === 30).length >= 2,
      );
      expect(phone.simulator.events.slice(since).filter((e) => e.kind === 'key')).toMatchObject([
        { keycode: 30, action: 0 },
        { keycode: 30, action: 1 },
      ]);
    });
  });

  it('shows who has control and how many watch, as viewers come and go', async () => {
    await withPlayer(CONTROL_TOKEN, async (page) => {
      const presence = page.locator('#presence');
      await showsText(presence, 'You have control · 1 watching');
      const watcher = await openPlayer(browser, phone.base, VIEWER_TOKEN);
      try {
        await showsText(watcher.locator('#presence'), 'View only · 2 watching');
        await showsText(presence, 'You have control · 2 watching');
        const second = await openPlayer(browser, phone.base, CONTROL_TOKEN);
        await showsText(presence, 'You have control (1 more can) · 3 watching');
        await second.close();
        await showsText(presence, 'You have control · 2 watching');
      } finally {
        await watcher.close();
      }
      await showsText(presence, 'You have control · 1 watching');
    });
  });

  it('turns the phone: the picture follows without a reload, and taps land where they are aimed on the turned screen', async () => {
    await withPlayer(CONTROL_TOKEN, async (page) => {
      const turnedTo = async (rotation: number, turn: () => Promise<void>) => {
        const since = phone.simulator.events.length;
        await turn();
        const surface = await waitFor(`the phone turned to ${String(rotation)}`, () =>
          Promise.resolve(phone.simulator.events.slice(since).find((e) => e.event === 'surface')),
        );
        expect(phone.simulator.events.slice(since).find((e) => e.kind === 'rotate')).toMatchObject({ rotation });
        expect(surface).toMatchObject({ rotation });
        const size = { width: Number(surface.width), height: Number(surface.height) };
        // The page plays the turned picture (the same page: no reload) ...
        const picture = await waitFor('the turned picture in the page', async () => {
          const shown = await pictureInPage(page);
          return shown.videoWidth === size.width && shown.videoHeight === size.height ? shown : undefined;
        });
        // ... and a tap aimed at a pixel of the turned screen (where the browser draws it) lands on it.
        const before = touches().length;
        const target = { x: Math.round(size.width * 0.2), y: Math.round(size.height * 0.7) };
        const point = {
          x: picture.left + (target.x + 0.5) * picture.scale,
          y: picture.top + (target.y + 0.5) * picture.scale,
        };
        await page.mouse.click(point.x, point.y);
        await waitUntil('the tap at the phone', () => touches().length >= before + 2);
        const down = touches()[before];
        expect(Math.abs(Number(down?.x) * size.width - (target.x + 0.5))).toBeLessThan(1.5);
        expect(Math.abs(Number(down?.y) * size.height - (target.y + 0.5))).toBeLessThan(1.5);
        return size;
      };
      const navigations: string[] = [];
      page.on('framenavigated', (frame) => navigations.push(frame.url()));
      // The Rotate button, then its shortcut, then back round to where the phone started.
      expect(await turnedTo(1, () => page.locator('#rotate').click())).toEqual({ width: HEIGHT, height: WIDTH });
      expect(await turnedTo(2, () => page.keyboard.press('Alt+KeyR'))).toEqual({ width: WIDTH, height: HEIGHT });
      expect(await turnedTo(3, () => page.locator('#rotate').click())).toEqual({ width: HEIGHT, height: WIDTH });
      expect(await turnedTo(0, () => page.locator('#rotate').click())).toEqual({ width: WIDTH, height: HEIGHT });
      expect(navigations).toEqual([]);
      expect(await page.locator('#rotate').getAttribute('title')).toBe('Rotate (Alt+R)');
    });
  });

  it('on a phone browser: fitted to the screen, two fingers arrive as two pointers, and full screen on a tap', async () => {
    // Chromium's mobile emulation of a 393x851 phone screen with touch (a Pixel 5's).
    const mobile = { viewport: { width: 393, height: 851 }, deviceScaleFactor: 2.75, isMobile: true, hasTouch: true };
    await withPlayer(
      CONTROL_TOKEN,
      async (page) => {
        // The whole picture on the screen, as wide as the screen (the phone is taller than 393:851 is wide).
        const shown = await pictureInPage(page);
        const picture = { width: shown.videoWidth * shown.scale, height: shown.videoHeight * shown.scale };
        expect(picture.width).toBeCloseTo(393, 0);
        expect(picture.height).toBeLessThanOrEqual(851);

        const since = touches().length;
        const a = await pagePoint(page, 0.3, 0.4);
        const b = await pagePoint(page, 0.7, 0.6);
        const cdp = await page.context().newCDPSession(page);
        const fingers = (dy: number) => [
          { x: a.x, y: a.y + dy, id: 1 },
          { x: b.x, y: b.y - dy, id: 2 },
        ];
        await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: fingers(0) });
        for (const dy of [10, 20, 30])
          await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: fingers(dy) });
        await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
        await waitUntil(
          'both fingers up',
          () =>
            touches()
              .slice(since)
              .filter((t) => t.action === 1).length >= 2,
        );
        const gesture = touches().slice(since);
        const downs = gesture.filter((t) => t.action === 0);
        expect(downs.map((t) => t.pointerId).sort()).toEqual([0, 1]);
        const first = downs.find((t) => Math.abs(Number(t.x) - 0.3) < 0.01);
        const second = downs.find((t) => Math.abs(Number(t.x) - 0.7) < 0.01);
        expect(first).toBeDefined();
        expect(second).toBeDefined();
        expect(Number(first?.y)).toBeCloseTo(0.4, 2);
        expect(Number(second?.y)).toBeCloseTo(0.6, 2);
        // Both moved, apart (one down the screen, one up), and both lifted.
        const moved = (pointerId: unknown) => gesture.filter((t) => t.action === 2 && t.pointerId === pointerId);
        expect(moved(first?.pointerId).length).toBeGreaterThan(0);
        expect(moved(second?.pointerId).length).toBeGreaterThan(0);
        expect(Number(moved(first?.pointerId).at(-1)?.y)).toBeGreaterThan(0.4);
        expect(Number(moved(second?.pointerId).at(-1)?.y)).toBeLessThan(0.6);
        expect(
          gesture
            .filter((t) => t.action === 1)
            .map((t) => t.pointerId)
            .sort(),
        ).toEqual([0, 1]);

        await page.locator('#fullscreen').tap();
        await waitFor('full screen', async () => ((await isFullscreen(page)) ? true : undefined));
        // The button says so once the browser's fullscreenchange event has run (after fullscreenElement is set).
        await waitFor('the button pressed', async () =>
          (await page.locator('#fullscreen').getAttribute('aria-pressed')) === 'true' ? true : undefined,
        );
      },
      undefined,
      mobile,
    );
  });

  it('on a still screen asks for nothing: the picture stays, and nothing is encoded again', async () => {
    await withPlayer(CONTROL_TOKEN, async (page) => {
      phone.simulator.command('pause');
      try {
        // The moving screen's last frames settle (a join's keyframe, a late frame).
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const encoded = await phone.metric('cloudphone_frames_encoded_total');
        const keyframes = await phone.metric('cloudphone_keyframes_total');
        const lastShown = (await shownFrames(page)).at(-1)?.frame;
        // Longer than Chromium waits for a next frame before it sends a PLI of its own (3 s).
        await new Promise((resolve) => setTimeout(resolve, 7000));
        expect(await phone.metric('cloudphone_frames_encoded_total')).toBe(encoded);
        expect(await phone.metric('cloudphone_keyframes_total')).toBe(keyframes);
        expect((await shownFrames(page)).at(-1)?.frame).toBe(lastShown);
        // Chromium did ask (a PLI after 3 s without a new frame), and the sidecar saw it needed nothing.
        expect(await phone.metric('cloudphone_webrtc_keyframes_wanted_total{cause="still-screen"}')).toBeGreaterThan(0);
        expect(await page.locator('#status').textContent()).toBe('');
      } finally {
        phone.simulator.command('resume');
      }
      const before = (await shownFrames(page)).length;
      await framesShown(page, before + 10);
    });
  });

  it('a view-only token plays but cannot touch the phone', async () => {
    await withPlayer(VIEWER_TOKEN, async (page) => {
      const before = touches().length;
      const point = await pagePoint(page, 0.5, 0.5);
      await page.mouse.click(point.x, point.y);
      // The page does not send; and when a page is made to send anyway, the sidecar refuses (see
      // webrtc-viewers.test.ts). Give a touch the time it would need to arrive, then check none did.
      await page.locator('#overlay', { hasText: 'view only' }).waitFor();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(touches().length).toBe(before);
      // No phone keys to press: the bar is there, hidden.
      expect(await page.locator('#keys').count()).toBe(1);
      expect(await page.locator('#keys').isHidden()).toBe(true);
    });
  });

  it('sends its offer with the first candidate and trickles the later ones, which the sidecar takes', async () => {
    const whep: { method: string; status: number; body: string }[] = [];
    const watch = (page: Page): void => {
      page.on('response', (response) => {
        const request = response.request();
        if (new URL(request.url()).pathname.startsWith('/whep'))
          whep.push({ method: request.method(), status: response.status(), body: request.postData() ?? '' });
      });
    };
    await withPlayer(
      CONTROL_TOKEN,
      async () => {
        await waitUntil('a trickled candidate', () => whep.some((r) => r.method === 'PATCH'));
        const post = whep.find((r) => r.method === 'POST');
        expect(post?.status).toBe(201);
        // Chromium finds a candidate per address and per m-line before bundling: the offer went out with the
        // first, and the PATCHes carry the others, none of them again.
        const offered = post?.body.match(/^a=candidate:.*$/gm) ?? [];
        expect(offered.length).toBeGreaterThanOrEqual(1);
        const patches = whep.filter((r) => r.method === 'PATCH');
        for (const patch of patches) {
          expect(patch.status).toBe(204);
          expect(patch.body).toMatch(/^a=mid:\S+\r\na=candidate:/);
          for (const line of patch.body.match(/^a=candidate:.*$/gm) ?? []) expect(offered).not.toContain(line);
        }
      },
      watch,
    );
  });
});
