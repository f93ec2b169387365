// A script for inside the player page, checked against the DOM's types (tsconfig.json here) and kept out of the
// Node.js program: chromium-player.ts strips its types and adds it to the page before the page's own scripts.
// A classic script, not a module: it defines what tests call through page.evaluate on globalThis.

interface ShownFrame {
  frame: number;
  captureNs: number;
  /** When the browser expected it on screen, Unix epoch milliseconds (performance.timeOrigin based). */
  shownAtMs: number;
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
    joinSteps['first-frame'] ??= performance.now();
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

/** Where a normalized point of the phone's screen is in the page, given the letterboxed video. */
function phonePointInPage([px, py]: readonly [number, number]): { x: number; y: number } {
  const video = document.querySelector('video');
  if (!video) throw new Error('no video');
  const rect = video.getBoundingClientRect();
  const scale = Math.min(rect.width / video.videoWidth, rect.height / video.videoHeight);
  const left = rect.left + (rect.width - video.videoWidth * scale) / 2;
  const top = rect.top + (rect.height - video.videoHeight * scale) / 2;
  return { x: left + px * video.videoWidth * scale, y: top + py * video.videoHeight * scale };
}

/** What Chromium's getStats() says about the video the page receives (the fields the tests read). */
interface InboundVideoStats {
  packetsReceived: number;
  packetsLost: number;
  nackCount: number;
  pliCount: number;
  framesDecoded: number;
  keyFramesDecoded: number;
  freezeCount: number;
  totalFreezesDuration: number;
}

/** When (performance.now(), ms) the page's newest PeerConnection reached each step of joining. */
const joinSteps: Record<string, number> = {};

// Every PeerConnection the page makes, so a test can read its statistics, and the steps of its joining.
const peerConnections: RTCPeerConnection[] = [];
const PageRTCPeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends PageRTCPeerConnection {
  constructor(configuration?: RTCConfiguration) {
    super(configuration);
    peerConnections.push(this);
    const step = (name: string): void => {
      joinSteps[name] ??= performance.now();
    };
    step('created');
    this.addEventListener('icegatheringstatechange', () => {
      step(`gathering-${this.iceGatheringState}`);
    });
    this.addEventListener('iceconnectionstatechange', () => {
      step(`ice-${this.iceConnectionState}`);
    });
    this.addEventListener('connectionstatechange', () => {
      step(`connection-${this.connectionState}`);
    });
    this.addEventListener('track', () => {
      step('track');
    });
  }

  override setLocalDescription(description?: RTCLocalSessionDescriptionInit): Promise<void> {
    joinSteps['set-local'] ??= performance.now();
    return super.setLocalDescription(description);
  }

  override setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void> {
    joinSteps['set-remote'] ??= performance.now();
    return super.setRemoteDescription(description);
  }
};

/** The inbound video statistics of the page's newest PeerConnection; undefined before it receives video. */
async function inboundVideoStats(): Promise<InboundVideoStats | undefined> {
  const pc = peerConnections.at(-1);
  if (!pc) return undefined;
  for (const stats of (await pc.getStats()).values() as IterableIterator<Record<string, unknown>>) {
    if (stats.type !== 'inbound-rtp' || stats.kind !== 'video') continue;
    const number = (name: keyof InboundVideoStats): number => Number(stats[name] ?? 0);
    return {
      packetsReceived: number('packetsReceived'),
      packetsLost: number('packetsLost'),
      nackCount: number('nackCount'),
      pliCount: number('pliCount'),
      framesDecoded: number('framesDecoded'),
      keyFramesDecoded: number('keyFramesDecoded'),
      freezeCount: number('freezeCount'),
      totalFreezesDuration: number('totalFreezesDuration'),
    };
  }
  return undefined;
}

/** Bytes both ways over the newest PeerConnection's transport: RTP, RTCP, SCTP and STUN, all of it. */
async function transportBytes(): Promise<{ received: number; sent: number } | undefined> {
  const pc = peerConnections.at(-1);
  if (!pc) return undefined;
  for (const stats of (await pc.getStats()).values() as IterableIterator<Record<string, unknown>>) {
    if (stats.type === 'transport')
      return { received: Number(stats.bytesReceived ?? 0), sent: Number(stats.bytesSent ?? 0) };
  }
  return undefined;
}

/**
 * When the page saw each pointermove with a button held (epoch milliseconds), in the capture phase before the
 * player's own listener sends it as a Move: where the input benchmark starts its clock. Emptied by the caller.
 */
const movesSentAt: number[] = [];
window.addEventListener(
  'pointermove',
  (event) => {
    if (event.buttons) movesSentAt.push(performance.timeOrigin + performance.now());
  },
  { capture: true },
);

/** Pastes plain text into the page as a person's Ctrl+V would (a paste event with the clipboard's data). */
function pastePlainText(text: string): void {
  const data = new DataTransfer();
  data.setData('text/plain', text);
  window.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data }));
}

/** The picture as the page shows it: the video's own size, and where and how large it is drawn (letterboxed). */
function pictureInPage(): { videoWidth: number; videoHeight: number; left: number; top: number; scale: number } {
  const video = document.querySelector('video');
  if (!video) throw new Error('no video');
  const rect = video.getBoundingClientRect();
  const scale = Math.min(rect.width / video.videoWidth, rect.height / video.videoHeight);
  return {
    videoWidth: video.videoWidth,
    videoHeight: video.videoHeight,
    left: rect.left + (rect.width - video.videoWidth * scale) / 2,
    top: rect.top + (rect.height - video.videoHeight * scale) / 2,
    scale,
  };
}

async function readClipboard(): Promise<string> {
  return navigator.clipboard.readText();
}

function isFullscreen(): boolean {
  return document.fullscreenElement !== null;
}

Object.assign(globalThis, {
  pictureInPage,
  readClipboard,
  isFullscreen,
  phonePointInPage,
  inboundVideoStats,
  transportBytes,
  joinSteps,
  movesSentAt,
  pastePlainText,
});
window.addEventListener('DOMContentLoaded', installStampProbe);
