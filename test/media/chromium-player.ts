// Debian's Chromium, driven by playwright-core, opening the sidecar's player page: the browser a person
// would use. A probe injected into the page draws each presented frame to a canvas and reads the stamp back,
// so tests and the benchmark know which frame the browser showed and when.

import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { stripTypes } from '../../sidecar/src/webrtc/player-assets.ts';
import { readFileSync } from 'node:fs';

export interface ShownFrame {
  frame: number;
  captureNs: number;
  /** When the browser expected it on screen, Unix epoch milliseconds (performance.timeOrigin based). */
  shownAtMs: number;
}

interface PageProbes {
  shownFrames?: ShownFrame[];
  phonePointInPage(point: readonly [number, number]): { x: number; y: number };
  inboundVideoStats(): Promise<InboundVideoStats | undefined>;
  transportBytes(): Promise<{ received: number; sent: number } | undefined>;
  joinSteps: Record<string, number>;
  movesSentAt: number[];
  pastePlainText(text: string): void;
  pictureInPage(): PictureInPage;
  readClipboard(): Promise<string>;
  isFullscreen(): boolean;
}

/** The picture as the page shows it: the video's own size, where its top left is drawn, and the scale. */
export interface PictureInPage {
  videoWidth: number;
  videoHeight: number;
  left: number;
  top: number;
  scale: number;
}

export async function pictureInPage(page: Page): Promise<PictureInPage> {
  return page.evaluate(() => (globalThis as unknown as PageProbes).pictureInPage());
}

/** What the page reads from this computer's clipboard (the context needs the clipboard-read permission). */
export async function readClipboard(page: Page): Promise<string> {
  return page.evaluate(() => (globalThis as unknown as PageProbes).readClipboard());
}

export async function isFullscreen(page: Page): Promise<boolean> {
  return page.evaluate(() => (globalThis as unknown as PageProbes).isFullscreen());
}

/** Chromium's inbound-rtp statistics of the player's video (see browser/page-probes.ts). */
export interface InboundVideoStats {
  packetsReceived: number;
  packetsLost: number;
  nackCount: number;
  pliCount: number;
  framesDecoded: number;
  keyFramesDecoded: number;
  freezeCount: number;
  totalFreezesDuration: number;
}

let probes: string | undefined;

function pageProbes(): string {
  probes ??= stripTypes(readFileSync(new URL('browser/page-probes.ts', import.meta.url), 'utf8'));
  return probes;
}

export const CHROMIUM = '/usr/bin/chromium';

/** Launches Chromium; extraArgs are added to the flags (e.g. to trust one test certificate). */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      ...extraArgs,
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      // Host candidates as addresses, not mDNS names: libdatachannel does not resolve .local names.
      '--disable-features=WebRtcHideLocalIpsWithMdns',
    ],
  });
}

/**
 * Opens a page that plays the phone, with the probes in it, in a browser context of its own (options: a
 * mobile device, permissions); beforeLoad runs before it navigates.
 */
export async function openPage(
  browser: Browser,
  url: string,
  beforeLoad?: (page: Page) => void,
  options?: BrowserContextOptions,
): Promise<Page> {
  // Wider than the phone: the picture is pillarboxed, with bars a click can miss the phone on.
  const page = await browser.newPage({ viewport: { width: 720, height: 960 }, ...options });
  await page.addInitScript({ content: pageProbes() });
  beforeLoad?.(page);
  await page.goto(url);
  return page;
}

/** Opens the sidecar's player page with a token; beforeLoad runs before it navigates (to watch its requests). */
export async function openPlayer(
  browser: Browser,
  base: string,
  token: string,
  beforeLoad?: (page: Page) => void,
  options?: BrowserContextOptions,
): Promise<Page> {
  return openPage(browser, `${base}/#token=${token}`, beforeLoad, options);
}

export async function shownFrames(page: Page): Promise<ShownFrame[]> {
  return page.evaluate(() => (globalThis as unknown as PageProbes).shownFrames ?? []);
}

/**
 * When the page's newest PeerConnection reached each step of joining (ms on the page's clock, from navigation):
 * created, set-local, set-remote, gathering-*, ice-*, connection-*, track, first-frame.
 */
export async function joinSteps(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => ({ ...(globalThis as unknown as PageProbes).joinSteps }));
}

export async function inboundVideoStats(page: Page): Promise<InboundVideoStats | undefined> {
  return page.evaluate(() => (globalThis as unknown as PageProbes).inboundVideoStats());
}

/** Bytes over the page's newest PeerConnection (every packet: RTP, RTCP, SCTP, STUN), both ways, so far. */
export async function transportBytes(page: Page): Promise<{ received: number; sent: number } | undefined> {
  return page.evaluate(() => (globalThis as unknown as PageProbes).transportBytes());
}

/** Pastes text into the page as Ctrl+V would. */
export async function paste(page: Page, text: string): Promise<void> {
  await page.evaluate((pasted) => {
    (globalThis as unknown as PageProbes).pastePlainText(pasted);
  }, text);
}

/** Takes the times the page saw each pointermove with a button held since the last call (epoch ms). */
export async function takeMovesSentAt(page: Page): Promise<number[]> {
  return page.evaluate(() => (globalThis as unknown as PageProbes).movesSentAt.splice(0));
}

/** Where in the page a point of the phone's screen (normalized) is, given the letterboxed video. */
export async function pagePoint(page: Page, x: number, y: number): Promise<{ x: number; y: number }> {
  return page.evaluate((point) => (globalThis as unknown as PageProbes).phonePointInPage(point), [x, y] as const);
}
