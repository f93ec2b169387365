// Debian's Chromium, driven by playwright-core, opening the sidecar's player page: the browser a person
// would use. A probe injected into the page draws each presented frame to a canvas and reads the stamp back,
// so tests and the benchmark know which frame the browser showed and when.

import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export interface ShownFrame {
  frame: number;
  captureNs: number;
  /** When the browser expected it on screen, Unix epoch milliseconds (performance.timeOrigin based). */
  shownAtMs: number;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
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
 * Reads the stamp (native/src/stamp/stamp.h: 4 rows of 32 blocks, marker 0xC1D0, frame number, capture time,
 * CRC-16/CCITT) from every frame the page's video presents, into window.shownFrames.
 */
function installStampProbe(): void {
  const crc16 = (bytes: Uint8Array): number => {
    let crc = 0xffff;
    for (const byte of bytes) {
      crc ^= byte << 8;
      for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
  };
  const shown: ShownFrame[] = [];
  (window as unknown as { shownFrames: ShownFrame[] }).shownFrames = shown;
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });
  const video = document.querySelector('video');
  if (!context || !video) throw new Error('the player page has no video');
  const onFrame = (_now: number, metadata: VideoFrameCallbackMetadata): void => {
    const width = metadata.width;
    const block = Math.max(4, Math.floor(width / 32));
    canvas.width = width;
    canvas.height = block * 4;
    context.drawImage(video, 0, 0, width, metadata.height, 0, 0, width, metadata.height);
    const pixels = context.getImageData(0, 0, width, block * 4).data;
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 128; i++) {
      const bx = (i % 32) * block;
      const by = Math.floor(i / 32) * block;
      let sum = 0;
      let count = 0;
      for (let y = by + block / 4; y < by + block - block / 4; y++)
        for (let x = bx + block / 4; x < bx + block - block / 4; x++) {
          const p = (Math.floor(y) * width + Math.floor(x)) * 4;
          sum += 0.299 * (pixels[p] ?? 0) + 0.587 * (pixels[p + 1] ?? 0) + 0.114 * (pixels[p + 2] ?? 0);
          count++;
        }
      if (sum / count >= 128) bytes[i >> 3] = (bytes[i >> 3] ?? 0) | (1 << (7 - (i % 8)));
    }
    const view = new DataView(bytes.buffer);
    if (view.getUint16(0) === 0xc1d0 && crc16(bytes.subarray(2, 14)) === view.getUint16(14)) {
      shown.push({
        frame: view.getUint32(2),
        captureNs: Number(view.getBigUint64(6)),
        shownAtMs: performance.timeOrigin + metadata.expectedDisplayTime,
      });
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

export async function openPlayer(browser: Browser, base: string, token: string): Promise<Page> {
  // Wider than the phone: the picture is pillarboxed, with bars a click can miss the phone on.
  const page = await browser.newPage({ viewport: { width: 720, height: 960 } });
  await page.addInitScript({
    content: `window.addEventListener('DOMContentLoaded', ${installStampProbe.toString()});`,
  });
  await page.goto(`${base}/#token=${token}`);
  return page;
}

export async function shownFrames(page: Page): Promise<ShownFrame[]> {
  return page.evaluate(() => (window as unknown as { shownFrames?: ShownFrame[] }).shownFrames ?? []);
}

/** Where in the page a point of the phone's screen (normalized) is, given the letterboxed video. */
export async function pagePoint(page: Page, x: number, y: number): Promise<{ x: number; y: number }> {
  return page.evaluate(
    ([px, py]) => {
      const video = document.querySelector('video');
      if (!video) throw new Error('no video');
      const rect = video.getBoundingClientRect();
      const scale = Math.min(rect.width / video.videoWidth, rect.height / video.videoHeight);
      const left = rect.left + (rect.width - video.videoWidth * scale) / 2;
      const top = rect.top + (rect.height - video.videoHeight * scale) / 2;
      return { x: left + (px ?? 0) * video.videoWidth * scale, y: top + (py ?? 0) * video.videoHeight * scale };
    },
    [x, y],
  );
}
