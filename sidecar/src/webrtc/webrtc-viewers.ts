// Every WHEP viewer of this phone: one encode, sent to all of them (each viewer's packetizer, NACK history
// and SRTP run natively in libdatachannel). Admits viewers up to the cap (the last slot kept for a control
// viewer), asks for a keyframe when a viewer joins or loses the picture (within a budget per viewer: a control
// viewer's wish is urgent, a view-only viewer's waits for the next keyframe; see keyframe-scheduler.ts),
// forwards control viewers' input to the phone, and says which bitrate the viewers allow (the weakest control
// viewer's; see viewer-bitrate.ts).

import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AccessUnit } from '../native.ts';
import type { Audience, Screen } from './viewer-messages.ts';
import { rtcConfig, type IceSettings } from './ice-config.ts';
import { readOffer } from './sdp-offer.ts';
import { keyframeWishBudget } from './keyframe-scheduler.ts';
import type { TokenBucket } from './token-bucket.ts';
import { ViewerBitrate, viewersAllowKbps, type BitrateRange } from './viewer-bitrate.ts';
import {
  ViewerSession,
  type InputPolicy,
  type KeyframeCause,
  type RefusedReason,
  type ViewerSessionEvents,
} from './viewer-session.ts';
import type { ViewerGrant, ViewerRole } from './viewer-tokens.ts';
import { WhepError } from './whep-error.ts';

/** How a viewer's keyframe wish was handled (a metric label). */
export type KeyframeWishOutcome = 'requested' | 'waits' | 'over-budget' | 'not-needed';

/** What the viewers need from the media pipeline. */
export interface ViewerPipeline {
  /** urgent: a keyframe now (rate-limited by the caller); otherwise the next one the stream makes will do. */
  requestKeyframe(urgent: boolean): void;
  /** viewer: the session's inputId. Throws when the phone refuses the event. */
  sendInput(viewer: number, control: Uint8Array): void;
  /** Everything the viewer holds down goes up on the phone. */
  releaseInput(viewer: number): void;
  screen(): Screen;
  /** The H.264 level_idc of the stream's current SPS; undefined before the first surface. */
  h264Level(): number | undefined;
}

export interface ViewerMetrics {
  viewers(role: ViewerRole, count: number): void;
  refused(reason: RefusedReason): void;
  keyframeWanted(cause: KeyframeCause): void;
  keyframeWish(role: ViewerRole, outcome: KeyframeWishOutcome): void;
  latency(viewer: string, milliseconds: number): void;
  viewerLeft(viewer: string): void;
  revoked(count: number): void;
}

export interface WebRtcViewersOptions {
  maxViewers: number;
  ice: IceSettings;
  bitrate: BitrateRange;
  input: InputPolicy;
  pipeline: ViewerPipeline;
  metrics: ViewerMetrics;
  log: Logger;
}

interface Entry {
  session: ViewerSession;
  bitrate: ViewerBitrate;
  keyframeWishes: TokenBucket;
}

export class WebRtcViewers {
  readonly #options: WebRtcViewersOptions;
  readonly #entries = new Map<string, Entry>();
  #pending = 0;
  #pendingViewOnly = 0;
  #closed = false;
  #lastInputId = 0;

  constructor(options: WebRtcViewersOptions) {
    this.#options = options;
  }

  get count(): number {
    return this.#entries.size + this.#pending;
  }

  sessions(): ViewerSession[] {
    return [...this.#entries.values()].map((entry) => entry.session);
  }

  /** Admits a viewer from its SDP offer and what its token granted: its session id and the SDP answer. */
  async open(offer: string, grant: ViewerGrant): Promise<{ id: string; answer: string }> {
    const { role } = grant;
    if (this.#closed) throw new WhepError(503, 'the sidecar is stopping');
    const { maxViewers } = this.#options;
    if (this.count >= maxViewers)
      throw new WhepError(503, `this phone already has ${String(maxViewers)} viewers`, { 'Retry-After': '5' });
    // However many watch, the person who drives the phone can still get in.
    if (role === 'view' && this.#viewOnlyCount() >= maxViewers - 1)
      throw new WhepError(
        503,
        `this phone already has ${String(maxViewers - 1)} view-only viewers (its last slot is kept for a control viewer)`,
        { 'Retry-After': '5' },
      );
    const summary = readOffer(offer, this.#options.pipeline.h264Level());
    if (!summary.hasDataChannel && role === 'control')
      throw new WhepError(400, 'a control viewer must offer a data channel (labelled cloudphone) for its input');
    const id = randomUUID();
    this.#pending++;
    if (role === 'view') this.#pendingViewOnly++;
    try {
      const { session, answer } = await ViewerSession.answer({
        id,
        inputId: ++this.#lastInputId,
        grant,
        offer,
        summary,
        rtcConfig: rtcConfig(this.#options.ice, id),
        screen: this.#options.pipeline.screen(),
        audience: this.#audience(),
        input: this.#options.input,
        log: this.#options.log,
        events: this.#events,
      });
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- close() may have run during the await
      if (this.#closed) {
        session.close('the sidecar is stopping');
        throw new WhepError(503, 'the sidecar is stopping');
      }
      this.#entries.set(id, {
        session,
        bitrate: new ViewerBitrate(this.#options.bitrate),
        keyframeWishes: keyframeWishBudget(),
      });
      this.#countRoles();
      return { id, answer };
    } finally {
      this.#pending--;
      if (role === 'view') this.#pendingViewOnly--;
    }
  }

  get(id: string): ViewerSession | undefined {
    return this.#entries.get(id)?.session;
  }

  /** Whether any viewer is admitted (the sidecar prepares pictures for WebRTC only then). */
  get active(): boolean {
    return this.#entries.size > 0;
  }

  /**
   * Sends one encoded picture to every viewer, prepared once for all WebRTC sinks by the sidecar (parameter
   * sets in front of a keyframe, the RTP timestamp); on the JavaScript thread, from the pipeline's queue.
   */
  accessUnit(unit: AccessUnit, rtpTimestamp: number): void {
    for (const { session } of this.#entries.values()) session.send(unit, rtpTimestamp);
  }

  screenChanged(screen: Screen): void {
    for (const { session } of this.#entries.values()) session.screenChanged(screen);
  }

  /** The phone's clipboard changed: to the viewers who drive it. */
  clipboard(text: string): void {
    for (const { session } of this.#entries.values()) session.clipboard(text);
  }

  /** Once a second: each viewer's estimate moves, and the policy picks what the viewers allow. */
  allowedKbps(): number | undefined {
    const estimates = [...this.#entries.values()].map(({ session, bitrate }) => ({
      role: session.role,
      estimateKbps: bitrate.tick(session.takeSent()),
    }));
    return viewersAllowKbps(estimates);
  }

  /** Ends, at once, every session whose token no longer grants what it did (rotated, released, unconfirmed). */
  revokeUnless(accepts: (grant: ViewerGrant) => boolean): void {
    let revoked = 0;
    for (const { session } of [...this.#entries.values()]) {
      if (accepts(session.grant)) continue;
      session.close('its token was revoked');
      revoked++;
    }
    if (revoked > 0) this.#options.metrics.revoked(revoked);
  }

  close(): void {
    this.#closed = true;
    for (const { session } of [...this.#entries.values()]) session.close('the sidecar is stopping');
    // No ndc.cleanup() here: after it, a later PeerConnection in the same process (tests start many sidecars)
    // left libdatachannel to crash at process exit (seen here). Its threads end with the process.
  }

  #viewOnlyCount(): number {
    let count = this.#pendingViewOnly;
    for (const { session } of this.#entries.values()) if (session.role === 'view') count++;
    return count;
  }

  #audience(): Audience {
    let controllers = 0;
    for (const { session } of this.#entries.values()) if (session.role === 'control') controllers++;
    return { viewers: this.#entries.size, controllers };
  }

  /** Someone joined or left: the metrics, and every page's count of who watches. */
  #countRoles(): void {
    const audience = this.#audience();
    this.#options.metrics.viewers('control', audience.controllers);
    this.#options.metrics.viewers('view', audience.viewers - audience.controllers);
    for (const { session } of this.#entries.values()) session.audienceChanged(audience);
  }

  readonly #events: ViewerSessionEvents = {
    onWantsKeyframe: (session, cause) => {
      const { metrics, pipeline } = this.#options;
      metrics.keyframeWanted(cause);
      const entry = this.#entries.get(session.id);
      if (cause === 'still-screen' || !entry) {
        metrics.keyframeWish(session.role, 'not-needed');
      } else if (!entry.keyframeWishes.take()) {
        metrics.keyframeWish(session.role, 'over-budget');
      } else {
        const urgent = session.role === 'control';
        metrics.keyframeWish(session.role, urgent ? 'requested' : 'waits');
        pipeline.requestKeyframe(urgent);
      }
    },
    onInput: (session, control) => {
      try {
        this.#options.pipeline.sendInput(session.inputId, control);
      } catch (error) {
        this.#events.onRefused(session, 'phone', error instanceof Error ? error.message : String(error));
      }
    },
    onRefused: (session, reason, detail) => {
      this.#options.metrics.refused(reason);
      this.#options.log.debug({ viewer: session.id, reason, detail }, 'viewer message refused');
    },
    onRtcp: (session, feedback) => {
      this.#entries.get(session.id)?.bitrate.feed(feedback);
    },
    onLatency: (session, milliseconds) => {
      this.#options.metrics.latency(session.id, milliseconds);
    },
    onInputEnded: (session) => {
      this.#options.pipeline.releaseInput(session.inputId);
    },
    onClosed: (session) => {
      this.#options.pipeline.releaseInput(session.inputId);
      this.#entries.delete(session.id);
      this.#options.metrics.viewerLeft(session.id);
      this.#countRoles();
    },
  };
}
