// One WHEP viewer: its PeerConnection (node-datachannel, so ICE, DTLS, SRTP, the H.264 packetizer, NACK
// answers and sender reports all run on libdatachannel's native threads), the video track the shared
// encode is sent on, and the data channel the viewer opened for input and latency reports.
//
// Lifecycle: created from the offer -> answer (after local ICE gathering, so the answer carries every
// candidate) -> track open (wants a keyframe; nothing is sent to it before one) -> streaming -> closed by
// DELETE, by the peer (failed, closed, or disconnected for longer than DISCONNECT_GRACE_MS), by a
// connect timeout, or by the sidecar stopping. close() is the one teardown path and is idempotent.
//
// Two data channels from the viewer: "cloudphone", ordered and reliable, for input (and the session news the
// sidecar sends), and optionally "cloudphone-stats", unordered without retransmissions, for pings, pongs, frame
// timings, render reports and stats. Statistics never hold input up behind a lost packet; a viewer with only
// the first channel gets everything on it.

import ndc from 'node-datachannel';
import type { Logger } from 'pino';
import { readViewerMessage, type AccessUnit } from '../native.ts';
import { CaptureToDisplayClock } from './capture-to-display-clock.ts';
import { H264Track } from './h264-track.ts';
import { gatherAfter } from './ice-gathering.ts';
import { readRtcpFeedback, type RtcpFeedback } from './rtcp-feedback.ts';
import type { OfferSummary } from './sdp-offer.ts';
import { TokenBucket } from './token-bucket.ts';
import { ViewerMessageWriter, type Audience, type Screen } from './viewer-messages.ts';
import type { ViewerGrant, ViewerRole } from './viewer-tokens.ts';
import { WhepError } from './whep-error.ts';

// A browser connects in a second or two, through TURN in a few; a session that never does gives its slot back
// (mediamtx's WebRTC handshake timeout is the same).
const CONNECT_TIMEOUT_MS = 10_000;
const DISCONNECT_GRACE_MS = 5000;
const PING_INTERVAL_MS = 1000;
const DATA_CHANNEL_LABEL = 'cloudphone';
const STATS_CHANNEL_LABEL = 'cloudphone-stats';
const MAX_REMOTE_CANDIDATES = 32;
// What a player sends besides input, a second (bursts of a quarter of that): a render report per picture shown
// (at most the stream's 60 fps, with room), a pong per ping (one a second), its stats once a second. Anything
// over, and anything at all past MESSAGES_PER_SECOND before it is even read, is dropped and counted.
const RENDER_REPORTS_PER_SECOND = 200;
const PONGS_PER_SECOND = 5;
const STATS_PER_SECOND = 5;
const ROTATIONS_PER_SECOND = 2;
const ROTATION_BURST = 4;

/** Why a viewer's message was not acted on (a metric label). */
export type RefusedReason = 'invalid' | 'role' | 'disabled' | 'rate' | 'text' | 'phone';

/** What the stream allows viewers to send (input in the sidecar config). */
export interface InputPolicy {
  enabled: boolean;
  maxEventsPerSecond: number;
}

export type KeyframeCause = 'join' | 'picture-loss' | 'still-screen';

export interface ViewerSessionEvents {
  /**
   * The viewer can take video and needs a keyframe (join), or its decoder lost the picture (picture-loss); or
   * it asked with a PLI or FIR although its page had shown the newest picture sent to it (still-screen): the
   * browser's wait for a next frame ran out on a phone that shows the same picture. That one needs none.
   */
  onWantsKeyframe(session: ViewerSession, cause: KeyframeCause): void;
  onInput(session: ViewerSession, control: Buffer): void;
  /** The viewer's input ends or breaks off (its data channel closed, or a flood cut it): what it holds down must go up. */
  onInputEnded(session: ViewerSession): void;
  onRefused(session: ViewerSession, reason: RefusedReason, detail: string): void;
  onRtcp(session: ViewerSession, feedback: RtcpFeedback): void;
  onLatency(session: ViewerSession, milliseconds: number): void;
  onClosed(session: ViewerSession, reason: string): void;
}

export interface ViewerSessionOptions {
  id: string;
  /** The viewer's number for the phone's input (what it holds down is kept under it). */
  inputId: number;
  /** What the viewer's token granted: its role, and the token, checked again while the session lasts. */
  grant: ViewerGrant;
  offer: string;
  summary: OfferSummary;
  rtcConfig: ndc.RtcConfig;
  screen: Screen;
  audience: Audience;
  input: InputPolicy;
  log: Logger;
  events: ViewerSessionEvents;
}

function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export class ViewerSession {
  readonly id: string;
  readonly inputId: number;
  readonly grant: ViewerGrant;
  readonly #log: Logger;
  readonly #events: ViewerSessionEvents;
  readonly #pc: ndc.PeerConnection;
  readonly #track: H264Track;
  readonly #writer = new ViewerMessageWriter();
  readonly #clock = new CaptureToDisplayClock();
  readonly #input: InputPolicy;
  readonly #inputLimit: TokenBucket;
  readonly #messageLimit: TokenBucket;
  readonly #renderReportLimit = new TokenBucket(RENDER_REPORTS_PER_SECOND, RENDER_REPORTS_PER_SECOND / 4);
  readonly #pongLimit = new TokenBucket(PONGS_PER_SECOND, PONGS_PER_SECOND);
  readonly #statsLimit = new TokenBucket(STATS_PER_SECOND, STATS_PER_SECOND);
  // Each rotation makes the phone allocate a new surface and the encoder start again: a person turns a phone
  // now and then, a script in a loop would keep both busy.
  readonly #rotateLimit = new TokenBucket(ROTATIONS_PER_SECOND, ROTATION_BURST);
  #channel: ndc.DataChannel | undefined;
  #statsChannel: ndc.DataChannel | undefined;
  #screen: Screen;
  #audience: Audience;
  #closed = false;
  #remoteCandidates = 0;
  /** Messages are being dropped before they are read (what the viewer held was lifted when it began). */
  #flooding = false;
  #pingId = 0;
  #pingTimer: NodeJS.Timeout | undefined;
  #connectTimer: NodeJS.Timeout | undefined;
  #disconnectTimer: NodeJS.Timeout | undefined;
  #framesSent = 0;
  /** RTP timestamps of the newest picture sent to this viewer, and of the newest its page says it showed. */
  #newestSent: number | undefined;
  #newestShown: number | undefined;

  private constructor(options: ViewerSessionOptions) {
    this.id = options.id;
    this.inputId = options.inputId;
    this.grant = options.grant;
    this.#log = options.log.child({ viewer: options.id, role: this.role, token: options.grant.source });
    this.#events = options.events;
    this.#screen = options.screen;
    this.#audience = options.audience;
    this.#input = options.input;
    // Input bursts up to a fifth of a second's worth (input.maxEventsPerSecond).
    const inputPerSecond = options.input.maxEventsPerSecond;
    this.#inputLimit = new TokenBucket(inputPerSecond, inputPerSecond / 5);
    const messagesPerSecond = inputPerSecond + RENDER_REPORTS_PER_SECOND + PONGS_PER_SECOND + STATS_PER_SECOND;
    this.#messageLimit = new TokenBucket(messagesPerSecond, messagesPerSecond);
    this.#pc = new ndc.PeerConnection(`viewer-${options.id}`, options.rtcConfig);
    const { summary } = options;
    this.#track = new H264Track(this.#pc, {
      mid: summary.videoMid,
      payloadType: summary.h264PayloadType,
      fmtp: summary.h264Fmtp,
    });
    this.#wire();
  }

  /** Sets up the connection from the viewer's offer; resolves with the SDP answer. */
  static async answer(options: ViewerSessionOptions): Promise<{ session: ViewerSession; answer: string }> {
    const session = new ViewerSession(options);
    try {
      const answer = await session.#answer(options.offer);
      return { session, answer };
    } catch (error) {
      session.close('negotiation failed');
      throw error;
    }
  }

  get role(): ViewerRole {
    return this.grant.role;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one encoded picture; before the first keyframe since the track opened, nothing is sent. */
  send(unit: AccessUnit, rtpTimestamp: number): void {
    if (this.#closed || !this.#track.send(unit, rtpTimestamp)) return;
    this.#framesSent++;
    this.#newestSent = rtpTimestamp;
    if (unit.captureNs > 0) {
      const captureUs = unit.captureNs / 1000;
      this.#clock.frameSent(rtpTimestamp, captureUs);
      this.#sendStats(this.#writer.frameTiming(rtpTimestamp, captureUs));
    }
  }

  /** Media sent to this viewer since the last call, in bytes and RTP packets. */
  takeSent(): { bytes: number; packets: number } {
    return this.#track.takeSent();
  }

  /** The phone's screen changed size or turned: tell the player, so its touch mapping and controls follow. */
  screenChanged(screen: Screen): void {
    this.#screen = screen;
    this.#sendSession();
  }

  /** Someone joined or left: the page shows how many watch and how many may drive. */
  audienceChanged(audience: Audience): void {
    if (audience.viewers === this.#audience.viewers && audience.controllers === this.#audience.controllers) return;
    this.#audience = audience;
    this.#sendSession();
  }

  /** The phone's clipboard, for a viewer who drives it (view-only viewers never get it: it may be private). */
  clipboard(text: string): void {
    if (this.role === 'control') this.#sendOnChannel(this.#writer.clipboard(text));
  }

  #sendSession(): void {
    this.#sendOnChannel(this.#writer.session(this.role, this.#screen, this.#audience));
  }

  /** A trickled candidate (checked by trickleCandidates); a WhepError 400 past the cap or when libdatachannel refuses it. */
  addRemoteCandidate(candidate: string, mid: string): void {
    if (this.#closed) return;
    // Each candidate costs connectivity checks to an address the viewer chose: a browser sends a handful.
    if (++this.#remoteCandidates > MAX_REMOTE_CANDIDATES)
      throw new WhepError(400, `a session takes at most ${String(MAX_REMOTE_CANDIDATES)} trickled candidates`);
    try {
      this.#pc.addRemoteCandidate(candidate, mid);
    } catch {
      throw new WhepError(400, 'a candidate was refused by the ICE agent');
    }
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pingTimer);
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#disconnectTimer);
    try {
      this.#channel?.close();
      this.#statsChannel?.close();
      this.#track.close();
      this.#pc.close();
    } catch {
      // Already closed by the peer: nothing left to release.
    }
    this.#log.info({ reason, framesSent: this.#framesSent }, 'viewer left');
    this.#events.onClosed(this, reason);
  }

  async #answer(offer: string): Promise<string> {
    await gatherAfter(this.#pc, () => {
      this.#pc.setRemoteDescription(offer, 'offer');
    });
    const answer = this.#pc.localDescription();
    if (answer?.type !== 'answer') throw new Error('libdatachannel made no answer');
    this.#connectTimer = setTimeout(() => {
      this.close('no connection within 10 s');
    }, CONNECT_TIMEOUT_MS);
    return answer.sdp;
  }

  #wire(): void {
    this.#pc.onStateChange(
      this.#guard((state: string) => {
        if (state === 'connected') {
          clearTimeout(this.#connectTimer);
          clearTimeout(this.#disconnectTimer);
          this.#disconnectTimer = undefined;
        } else if (state === 'failed' || state === 'closed') {
          this.close(`connection ${state}`);
        } else if (state === 'disconnected') {
          this.#disconnectTimer ??= setTimeout(() => {
            this.close('disconnected for 5 s');
          }, DISCONNECT_GRACE_MS);
        }
      }),
    );
    this.#track.onOpen(
      this.#guard(() => {
        this.#log.info('viewer connected');
        this.#events.onWantsKeyframe(this, 'join');
      }),
    );
    this.#track.onRtcp(
      this.#guard((packet: Buffer) => {
        const feedback = readRtcpFeedback(packet);
        if (feedback.pictureLost) {
          // Chromium asks after some seconds with no new frame even when it lost nothing; the player's render
          // reports say whether it did. (A viewer that sends none is answered every time.)
          const shownNewest = this.#newestSent !== undefined && this.#newestShown === this.#newestSent;
          this.#events.onWantsKeyframe(this, shownNewest ? 'still-screen' : 'picture-loss');
        }
        this.#events.onRtcp(this, feedback);
      }),
    );
    this.#pc.onDataChannel(
      this.#guard((channel: ndc.DataChannel) => {
        if (channel.getLabel() === STATS_CHANNEL_LABEL && !this.#statsChannel) {
          this.#statsChannel = channel;
          channel.onMessage(
            this.#guard((message: string | Buffer | ArrayBuffer) => {
              this.#onChannelMessage(message, 'stats');
            }),
          );
          return;
        }
        if (channel.getLabel() !== DATA_CHANNEL_LABEL || this.#channel) {
          channel.close();
          return;
        }
        this.#channel = channel;
        const opened = (): void => {
          this.#sendSession();
          this.#ping();
          this.#pingTimer = setInterval(() => {
            this.#ping();
          }, PING_INTERVAL_MS);
        };
        if (channel.isOpen()) opened();
        else channel.onOpen(this.#guard(opened));
        channel.onMessage(
          this.#guard((message: string | Buffer | ArrayBuffer) => {
            this.#onChannelMessage(message, 'input');
          }),
        );
        channel.onClosed(
          this.#guard(() => {
            this.#events.onInputEnded(this);
          }),
        );
      }),
    );
  }

  /**
   * Runs a libdatachannel callback so that an exception in it is logged and the session closed, never left
   * to the native layer (where Node-API would treat it as uncaught).
   */
  #guard<A extends unknown[]>(callback: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        callback(...args);
      } catch (error) {
        this.#log.warn({ error: error instanceof Error ? error.message : String(error) }, 'viewer callback failed');
        this.close('internal error');
      }
    };
  }

  #ping(): void {
    this.#sendStats(this.#writer.ping(++this.#pingId, monotonicUs()));
  }

  /** On the stats channel when the viewer opened one, else on the input channel. */
  #sendStats(bytes: Uint8Array): void {
    this.#sendOnChannel(bytes, this.#statsChannel ?? this.#channel);
  }

  #sendOnChannel(bytes: Uint8Array, channel = this.#channel): void {
    if (!channel || this.#closed) return;
    try {
      if (channel.isOpen()) channel.sendMessageBinary(bytes);
    } catch {
      // The channel closed between the check and the send: the viewer is leaving.
    }
  }

  #onChannelMessage(raw: string | Buffer | ArrayBuffer, channel: 'input' | 'stats'): void {
    // A message libdatachannel delivered after close(): its input must not follow the release.
    if (this.#closed) return;
    if (typeof raw === 'string') {
      this.#events.onRefused(this, 'text', 'text messages are not part of the protocol');
      return;
    }
    // A flood is cut before the native reader spends anything on it. A release in it would be lost, so
    // whatever the viewer holds down is lifted on the phone at once (its later Moves are then refused).
    if (!this.#messageLimit.take()) {
      this.#events.onRefused(this, 'rate', 'over the messages a second a viewer may send');
      if (!this.#flooding && this.role === 'control') this.#events.onInputEnded(this);
      this.#flooding = true;
      return;
    }
    this.#flooding = false;
    const message = readViewerMessage(raw instanceof ArrayBuffer ? new Uint8Array(raw) : raw);
    switch (message.kind) {
      case 'invalid':
        this.#events.onRefused(this, 'invalid', message.reason);
        return;
      case 'keyframe-request':
        // Budgeted per viewer with its PLIs and FIRs (WebRtcViewers).
        this.#events.onWantsKeyframe(this, 'picture-loss');
        return;
      case 'pong':
        if (this.#overRate(this.#pongLimit, 'pongs')) return;
        this.#clock.pong(message.sentUs, message.viewerTimeUs, monotonicUs());
        return;
      case 'render-report': {
        if (this.#overRate(this.#renderReportLimit, 'render reports')) return;
        this.#newestShown = message.rtpTimestamp;
        const latency = this.#clock.latencyMs(message.rtpTimestamp, message.renderedAtUs);
        if (latency !== undefined) this.#events.onLatency(this, latency);
        return;
      }
      case 'stats':
        // The player's own view (fps, loss, RTT), for its overlay; RTCP already tells the sidecar what it needs.
        this.#overRate(this.#statsLimit, 'stats');
        return;
      case 'input':
        // Unordered and lossy: input there could arrive out of order, or an Up not at all.
        if (channel === 'stats') this.#events.onRefused(this, 'invalid', 'input goes on the cloudphone channel');
        else if (this.role !== 'control') this.#events.onRefused(this, 'role', 'view-only viewers cannot send input');
        else if (!this.#input.enabled) this.#events.onRefused(this, 'disabled', 'input is disabled for this stream');
        // A release is never cut for rate: it may be all that stands between the phone and a stuck finger.
        // (One the viewer does not hold is refused by the pipeline, so this lets no flood through.)
        else if (!this.#inputLimit.take() && !message.release)
          this.#events.onRefused(this, 'rate', `over ${String(this.#input.maxEventsPerSecond)} input events a second`);
        else if (message.rotate && !this.#rotateLimit.take())
          this.#events.onRefused(this, 'rate', 'over the rotations a second a viewer may ask for');
        else this.#events.onInput(this, message.control);
        return;
    }
  }

  /** Whether a message is over its kind's rate (then refused and counted). */
  #overRate(limit: TokenBucket, kind: string): boolean {
    if (limit.take()) return false;
    this.#events.onRefused(this, 'rate', `over the ${kind} a second a viewer may send`);
    return true;
  }
}
