// The player page: a WHEP client for this sidecar. It plays the phone's screen fitted to the window (or the
// whole screen), follows the phone when it turns, sends touches, keys, text and rotation requests when its
// token has the control role, puts what the phone copied into this computer's clipboard, shows who watches and
// who drives, reports when each frame was shown (the sidecar turns that into capture-to-display latency), shows
// fps, bitrate, RTT and latency in an overlay, and reconnects on its own. The token comes from the URL
// fragment (#token=...), which never reaches a server log.

import { InputCapture } from './input-capture.ts';
import { PlayerMessages, readSidecarMessage, type PlayerStats } from './channel-messages.ts';
import { phoneKeyButtons, rotateButton } from './phone-keys.ts';
import { StallWatch } from './stall-watch.ts';

const video = document.getElementById('screen') as HTMLVideoElement;
const overlay = document.getElementById('overlay') as HTMLDivElement;
const status = document.getElementById('status') as HTMLDivElement;
const keys = document.getElementById('keys') as HTMLDivElement;
const keyboard = document.getElementById('keyboard') as HTMLTextAreaElement;
const presence = document.getElementById('presence') as HTMLSpanElement;
const fullscreen = document.getElementById('fullscreen') as HTMLButtonElement;
const notice = document.getElementById('notice') as HTMLDivElement;
const clipboardPanel = document.getElementById('clipboard') as HTMLDivElement;
const clipboardText = document.getElementById('clipboard-text') as HTMLTextAreaElement;
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
const messages = new PlayerMessages();

interface Connection {
  pc: RTCPeerConnection;
  /** Input, in order and reliably; the sidecar's session news. */
  channel: RTCDataChannel;
  /** Pings, pongs, frame timings, render reports and stats: unordered, never retransmitted, so a lost one
   * is simply gone and input never waits behind one. */
  statsChannel: RTCDataChannel;
  session: string | undefined;
  control: boolean;
  /** How the phone is turned now (0 to 3), for the next rotation request. */
  rotation: number;
  // Sidecar clock -> this page's clock (microseconds), from pings: offset = ours - theirs - one way.
  offsetUs: number | undefined;
  captures: Map<number, number>;
  /** A still screen needs nothing; a stalled stream a keyframe. */
  stalls: StallWatch;
  lastBytes: number;
  lastStatsAt: number;
}

let current: Connection | undefined;
let retryMs = 500;
const shown = { fps: 0, kbps: 0, rttMs: 0, captureToDisplayMs: NaN };

function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

function send(bytes: Uint8Array): void {
  const channel = current?.channel;
  if (channel?.readyState === 'open') channel.send(bytes as Uint8Array<ArrayBuffer>);
}

/** Statistics go on their own channel when it is open (an older sidecar closes it: then on the input one). */
function sendStats(bytes: Uint8Array): void {
  const channel = current?.statsChannel.readyState === 'open' ? current.statsChannel : current?.channel;
  if (channel?.readyState === 'open') channel.send(bytes as Uint8Array<ArrayBuffer>);
}

/** ICE servers from the WHEP endpoint's Link headers (RFC 9725 section 4.6). */
function iceServers(links: string | null): RTCIceServer[] {
  const servers: RTCIceServer[] = [];
  for (const link of (links ?? '').split(/,(?=\s*<)/)) {
    const url = /<([^>]+)>/.exec(link)?.[1];
    if (!url || !link.includes('rel="ice-server"')) continue;
    const username = /username="([^"]*)"/.exec(link)?.[1];
    const credential = /credential="([^"]*)"/.exec(link)?.[1];
    servers.push({ urls: url, ...(username !== undefined ? { username, credential } : {}) });
  }
  return servers;
}

async function whep(method: string, path: string, body?: string, type?: string): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  if (type) headers['Content-Type'] = type;
  // A DELETE outlives the page that sends it (a tab closing ends its session).
  return fetch(path, { method, headers, body, keepalive: method === 'DELETE' });
}

async function connect(): Promise<void> {
  status.textContent = 'connecting';
  const options = await whep('OPTIONS', '/whep');
  const pc = new RTCPeerConnection({ iceServers: iceServers(options.headers.get('Link')) });
  pc.addTransceiver('video', { direction: 'recvonly' });
  const channel = pc.createDataChannel('cloudphone');
  channel.binaryType = 'arraybuffer';
  const statsChannel = pc.createDataChannel('cloudphone-stats', { ordered: false, maxRetransmits: 0 });
  statsChannel.binaryType = 'arraybuffer';
  const connection: Connection = {
    pc,
    channel,
    statsChannel,
    session: undefined,
    control: false,
    rotation: 0,
    offsetUs: undefined,
    captures: new Map(),
    stalls: new StallWatch(),
    lastBytes: 0,
    lastStatsAt: performance.now(),
  };
  current = connection;
  pc.ontrack = (event) => {
    video.srcObject = event.streams[0] ?? new MediaStream([event.track]);
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'connected') {
      status.textContent = '';
      retryMs = 500;
    }
    if (pc.connectionState === 'failed' || pc.connectionState === 'closed') reconnect('connection lost');
  };
  channel.onmessage = (event: MessageEvent<ArrayBuffer>) => {
    onSidecarMessage(connection, new Uint8Array(event.data));
  };
  statsChannel.onmessage = channel.onmessage;
  channel.onclose = () => {
    if (current === connection) reconnect('data channel closed');
  };
  // Trickle ICE: the offer goes out with the first candidate (gathering the rest takes Chromium over 100 ms,
  // most of a join); candidates found after it follow in PATCH requests once the session exists.
  const trickle = new CandidateTrickle();
  pc.onicecandidate = (event) => {
    if (event.candidate?.candidate) trickle.add(event.candidate);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await firstCandidate(pc);
  const offer = pc.localDescription?.sdp;
  trickle.startCollecting();
  const response = await whep('POST', '/whep', offer, 'application/sdp');
  if (response.status !== 201) throw new Error(`${String(response.status)} ${(await response.text()).trim()}`);
  connection.session = response.headers.get('Location') ?? undefined;
  await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  if (connection.session) trickle.sendTo(connection.session);
}

/** Resolves at the first local candidate, when gathering ends, or after a second, whichever comes first. */
async function firstCandidate(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete' || /^a=candidate:/m.test(pc.localDescription?.sdp ?? '')) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 1000);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    pc.addEventListener('icecandidate', done, { once: true });
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') done();
    });
  });
}

/**
 * Local candidates found after the offer was read: held until the session's URL is known, then sent as
 * trickle-ICE fragments (RFC 8840) with PATCH, each as it comes.
 */
class CandidateTrickle {
  #collecting = false;
  #session: string | undefined;
  readonly #held: RTCIceCandidate[] = [];

  startCollecting(): void {
    this.#collecting = true;
  }

  add(candidate: RTCIceCandidate): void {
    // Before the offer was read, the candidate is in it already.
    if (!this.#collecting) return;
    if (this.#session) this.#patch([candidate]);
    else this.#held.push(candidate);
  }

  sendTo(session: string): void {
    this.#session = session;
    if (this.#held.length > 0) this.#patch(this.#held.splice(0));
  }

  #patch(candidates: RTCIceCandidate[]): void {
    const lines: string[] = [];
    for (const candidate of candidates) lines.push(`a=mid:${candidate.sdpMid ?? '0'}`, `a=${candidate.candidate}`);
    if (this.#session)
      void whep('PATCH', this.#session, `${lines.join('\r\n')}\r\n`, 'application/trickle-ice-sdpfrag').catch(
        () => undefined,
      );
  }
}

function reconnect(reason: string): void {
  const old = current;
  current = undefined;
  if (old) {
    old.pc.close();
    if (old.session) void whep('DELETE', old.session).catch(() => undefined);
  }
  status.textContent = `${reason}; reconnecting in ${String(Math.round(retryMs / 100) / 10)} s`;
  setTimeout(() => {
    connect().catch((error: unknown) => {
      reconnect(error instanceof Error ? error.message : String(error));
    });
  }, retryMs);
  retryMs = Math.min(retryMs * 2, 10_000);
}

function onSidecarMessage(connection: Connection, bytes: Uint8Array): void {
  const message = readSidecarMessage(bytes);
  if (!message) return;
  switch (message.kind) {
    case 'session':
      connection.control = message.control;
      connection.rotation = message.rotation;
      keys.hidden = !message.control; // a view-only viewer has no keys to press
      presence.textContent = presenceText(message.control, message.viewers, message.controllers);
      document.title = `cloudphone ${String(message.width)}x${String(message.height)}${message.control ? '' : ' (view only)'}`;
      break;
    case 'clipboard':
      void takePhoneClipboard(message.text);
      break;
    case 'ping': {
      const at = nowUs();
      sendStats(messages.pong(message.id, message.sentUs, at));
      // One way is about half the RTT the browser measures; good to a millisecond on a short path.
      connection.offsetUs = at - Number(message.sentUs) - (shown.rttMs * 1000) / 2;
      break;
    }
    case 'frame-timing':
      connection.stalls.announced(message.rtpTimestamp, performance.now());
      connection.captures.set(message.rtpTimestamp, message.captureUs);
      if (connection.captures.size > 256) {
        const oldest = connection.captures.keys().next().value;
        if (oldest !== undefined) connection.captures.delete(oldest);
      }
      break;
  }
}

function onFrame(_now: number, metadata: VideoFrameCallbackMetadata): void {
  const connection = current;
  if (connection) {
    const rtpTimestamp = metadata.rtpTimestamp;
    if (rtpTimestamp !== undefined) {
      connection.stalls.shown(rtpTimestamp, performance.now());
      const shownAtUs = (performance.timeOrigin + metadata.expectedDisplayTime) * 1000;
      sendStats(messages.renderReport(rtpTimestamp, shownAtUs));
      const captureUs = connection.captures.get(rtpTimestamp);
      if (captureUs !== undefined && connection.offsetUs !== undefined)
        shown.captureToDisplayMs = (shownAtUs - connection.offsetUs - captureUs) / 1000;
    }
  }
  video.requestVideoFrameCallback(onFrame);
}

async function report(): Promise<void> {
  const connection = current;
  if (connection?.pc.connectionState !== 'connected') return;
  const stats: PlayerStats = {
    framesDecoded: 0,
    framesDropped: 0,
    fps: 0,
    jitterMs: 0,
    packetsLost: 0,
    rttMs: 0,
    bitrateKbps: 0,
  };
  const report = await connection.pc.getStats();
  report.forEach((entry: Record<string, unknown>) => {
    const number = (key: string): number => (typeof entry[key] === 'number' ? entry[key] : 0);
    if (entry.type === 'inbound-rtp' && entry.kind === 'video') {
      stats.framesDecoded = number('framesDecoded');
      stats.framesDropped = number('framesDropped');
      stats.fps = number('framesPerSecond');
      stats.jitterMs = number('jitter') * 1000;
      stats.packetsLost = Math.max(0, number('packetsLost'));
      const bytes = number('bytesReceived');
      const seconds = (performance.now() - connection.lastStatsAt) / 1000;
      stats.bitrateKbps = ((bytes - connection.lastBytes) * 8) / 1000 / Math.max(seconds, 0.001);
      connection.lastBytes = bytes;
      connection.lastStatsAt = performance.now();
    }
    if (entry.type === 'candidate-pair' && entry.nominated === true && entry.state === 'succeeded')
      stats.rttMs = number('currentRoundTripTime') * 1000;
  });
  sendStats(messages.stats(stats));
  shown.fps = stats.fps;
  shown.kbps = stats.bitrateKbps;
  shown.rttMs = stats.rttMs;
  overlay.textContent =
    `${String(video.videoWidth)}x${String(video.videoHeight)}  ${stats.fps.toFixed(0)} fps  ${(stats.bitrateKbps / 1000).toFixed(2)} Mbit/s\n` +
    `rtt ${stats.rttMs.toFixed(1)} ms  capture-to-display ${Number.isNaN(shown.captureToDisplayMs) ? '-' : shown.captureToDisplayMs.toFixed(1)} ms` +
    (connection.control ? '' : '\nview only');
  // A picture the sidecar sent has not shown for a second: the decoder lost it and the browser did not say so.
  // A still screen (nothing sent since the picture on screen) asks nothing, so nothing is encoded again.
  if (connection.stalls.keyframeDue(performance.now())) send(messages.keyframeRequest());
}

/** Input goes out only while this viewer has control. */
function sendInput(bytes: Uint8Array): void {
  if (current?.control) send(bytes);
}

/** Asks the phone for the next quarter turn; the picture follows when (and if) the phone turns. */
function rotate(): void {
  if (current) sendInput(messages.rotate((current.rotation + 1) % 4));
}

/** Whether this viewer drives the phone, how many watch, and whether someone else may drive it too. */
function presenceText(control: boolean, viewers: number, controllers: number): string {
  const watching = `${String(viewers)} watching`;
  if (control) {
    const others = controllers - 1;
    return others > 0
      ? `You have control (${String(others)} more can) · ${watching}`
      : `You have control · ${watching}`;
  }
  return controllers > 0 ? `View only · ${watching}` : `View only · nobody has control · ${watching}`;
}

let noticeTimer: ReturnType<typeof setTimeout> | undefined;
function showNotice(text: string): void {
  notice.textContent = text;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    notice.hidden = true;
  }, 2500);
}

/**
 * What was copied on the phone goes into this computer's clipboard where the page may write it (the browser
 * asks or allows); where it may not, it is shown for the user to copy.
 */
async function takePhoneClipboard(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    clipboardPanel.hidden = true;
    showNotice('Copied on the phone: it is in your clipboard');
  } catch {
    clipboardText.value = text;
    clipboardPanel.hidden = false;
  }
}

(document.getElementById('clipboard-copy') as HTMLButtonElement).addEventListener('click', () => {
  // A click is the user's gesture the clipboard wants. Where even that is refused, the text stays selected in
  // the panel, which takes its own keys: the system's copy shortcut copies it.
  navigator.clipboard.writeText(clipboardText.value).then(
    () => {
      clipboardPanel.hidden = true;
      input.focusKeyboard();
    },
    () => {
      clipboardText.focus();
      clipboardText.select();
      showNotice('Press Ctrl+C (⌘C) to copy it');
    },
  );
});
(document.getElementById('clipboard-close') as HTMLButtonElement).addEventListener('click', () => {
  clipboardPanel.hidden = true;
  input.focusKeyboard();
});

/** On a phone or tablet in full screen, the browser keeps to the phone's orientation as it turns. */
function keepOrientation(): void {
  if (!document.fullscreenElement || video.videoWidth === 0) return;
  const orientation = screen.orientation as ScreenOrientation & { lock?: (to: string) => Promise<void> };
  // Desktop browsers refuse the lock; that is fine.
  orientation.lock?.(video.videoWidth > video.videoHeight ? 'landscape' : 'portrait').catch(() => undefined);
}

fullscreen.hidden = !document.fullscreenEnabled;
fullscreen.addEventListener('click', () => {
  const change = document.fullscreenElement
    ? document.exitFullscreen()
    : document.documentElement.requestFullscreen({ navigationUI: 'hide' }).then(keepOrientation);
  change.catch((error: unknown) => {
    showNotice(`Full screen refused: ${error instanceof Error ? error.message : String(error)}`);
  });
});
document.addEventListener('fullscreenchange', () => {
  fullscreen.setAttribute('aria-pressed', String(document.fullscreenElement !== null));
});
video.addEventListener('resize', keepOrientation);

const input = new InputCapture(video, keyboard, messages, sendInput, rotate);
phoneKeyButtons(keys, (keycode, down) => {
  sendInput(messages.key(down, keycode, 0, 0));
  input.focusKeyboard();
});
rotateButton(keys, () => {
  rotate();
  input.focusKeyboard();
});
// A closed tab or a page navigated away ends its session at once, so the others' count of who watches is
// right and a control slot frees up (without it, the sidecar learns only when ICE gives up, seconds later).
window.addEventListener('pagehide', () => {
  const session = current?.session;
  if (session) void whep('DELETE', session).catch(() => undefined);
});
video.requestVideoFrameCallback(onFrame);
setInterval(() => void report(), 1000);
connect().catch((error: unknown) => {
  reconnect(error instanceof Error ? error.message : String(error));
});
