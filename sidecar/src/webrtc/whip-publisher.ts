// Pushes the phone's stream to a media server with WHIP (RFC 9725): a send-only PeerConnection (the same
// H.264 track, packetizer, NACK answers and sender reports as a WHEP viewer's), its offer POSTed with the
// bearer token, the 201's answer applied, DELETE on the resource when the push ends.
//
// It keeps pushing: a refused token, an HTTP error, an unreachable server, ICE that never connects, a
// connection that fails, stays disconnected for 5 s or, having sent RTCP, goes silent for 10 s — each ends
// the attempt and the next one starts after an exponential backoff (reset once a connection held 10 s).
// The token file is read on every attempt, so a rotated Secret is picked up without a restart. The token
// and the URL's query are never logged.
//
// 307/308 redirects (a load balancer's) are followed up to 3 times; the token only goes along to the
// configured host name (see tokenMayGoTo).
//
// Non-trickle: the offer carries every local candidate (the server needs no PATCH). ICE servers a server
// announces in Link headers arrive after gathering and are not used; configure them in webrtc.iceServers.

import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import ndc from 'node-datachannel';
import type { Logger } from 'pino';
import type { AccessUnit } from '../native.ts';
import { H264Track } from './h264-track.ts';
import { gatherAfter } from './ice-gathering.ts';
import { ReconnectBackoff, type BackoffSettings } from './reconnect-backoff.ts';
import { readRtcpFeedback } from './rtcp-feedback.ts';
import { ViewerBitrate, type BitrateRange } from './viewer-bitrate.ts';

const REQUEST_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 15_000;
const DISCONNECT_GRACE_MS = 5000;
const RTCP_SILENCE_MS = 10_000;
const HELD_CONNECTION_MS = 10_000;
const MAX_ANSWER_BYTES = 64 * 1024;
const MAX_REDIRECTS = 3;
// Constrained baseline, packetization-mode 1: what the encoder makes and the packetizer sends.
const PAYLOAD_TYPE = 96;
const FMTP = 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1';

/** How one attempt ended before it carried video (a metric label). */
export type WhipAttemptResult = 'connected' | 'refused' | 'http' | 'network' | 'ice' | 'token';

export interface WhipMetrics {
  whipAttempt(result: WhipAttemptResult): void;
  whipConnected(connected: boolean): void;
}

export interface WhipPublisherOptions {
  url: string;
  tokenFile?: string;
  /** The ICE configuration of one attempt (its own TURN REST credentials, named by the attempt). */
  rtcConfig: (attempt: string) => ndc.RtcConfig;
  bitrate: BitrateRange;
  /** Rate-limited by the caller. */
  requestKeyframe(): void;
  metrics: WhipMetrics;
  log: Logger;
  backoff?: BackoffSettings;
}

class AttemptFailed extends Error {
  readonly result: WhipAttemptResult;
  constructor(result: WhipAttemptResult, message: string) {
    super(message);
    this.result = result;
  }
}

/** One attempt's connection: what close-down needs to release. */
interface Push {
  pc: ndc.PeerConnection;
  track: H264Track;
  /** The session resource the server made (Location of the 201, after any redirects). */
  resource?: URL;
  authorization?: string;
  connectedAt?: number;
  lastRtcpAt?: number;
  timers: NodeJS.Timeout[];
  disconnectTimer?: NodeJS.Timeout;
  ended: boolean;
}

/**
 * Whether the bearer token may go to a URL a redirect or a Location header points at: only to the configured
 * endpoint's host name (any port, e.g. a media server behind a proxy on the same host), never from https
 * down to http. A redirect to another host gets the request without the token, as fetch itself would do.
 */
function tokenMayGoTo(endpoint: URL, target: URL): boolean {
  if (target.hostname !== endpoint.hostname) return false;
  return endpoint.protocol === 'http:' || target.protocol === 'https:';
}

/** The URL without its query or user info: what may be logged. */
function loggable(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

export class WhipPublisher {
  readonly #options: WhipPublisherOptions;
  readonly #endpoint: URL;
  readonly #log: Logger;
  readonly #backoff: ReconnectBackoff;
  readonly #bitrate: ViewerBitrate;
  #push: Push | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: WhipPublisherOptions) {
    this.#options = options;
    this.#endpoint = new URL(options.url);
    this.#log = options.log.child({ whip: loggable(this.#endpoint) });
    this.#backoff = new ReconnectBackoff(options.backoff);
    this.#bitrate = new ViewerBitrate(options.bitrate);
  }

  start(): void {
    void this.#attempt();
  }

  get connected(): boolean {
    return this.#push?.connectedAt !== undefined;
  }

  /** Sends one encoded picture (prepared by the sidecar, as for viewers) to the server, when connected. */
  accessUnit(unit: AccessUnit, rtpTimestamp: number): void {
    const push = this.#push;
    if (push?.connectedAt === undefined || !push.track.open) return;
    push.track.send(unit, rtpTimestamp);
  }

  /** Once a second: the bitrate the server's RTCP allows; undefined while not connected. */
  allowedKbps(): number | undefined {
    const push = this.#push;
    return push?.connectedAt !== undefined ? this.#bitrate.tick(push.track.takeSent()) : undefined;
  }

  /** Ends the push (DELETE on the resource, at most 2 s) and stops trying. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const push = this.#push;
    if (push) await this.#end(push, 'the sidecar is stopping');
  }

  async #attempt(): Promise<void> {
    if (this.#closed) return;
    let push: Push | undefined;
    try {
      const authorization = await this.#authorization();
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- close() may have run during the await
      if (this.#closed) return;
      push = this.#newPush();
      this.#push = push;
      push.authorization = authorization;
      const offer = await this.#gather(push);
      const answer = await this.#post(push, offer, authorization);
      if (push.ended) {
        // Ended (the sidecar stopping) while the POST was on its way: the server made a session all the same.
        await this.#deleteResource(push, 'ended during the POST');
        return;
      }
      try {
        push.pc.setRemoteDescription(answer, 'answer');
      } catch (error) {
        throw new AttemptFailed('http', `the answer was refused: ${error instanceof Error ? error.message : ''}`);
      }
      push.timers.push(
        setTimeout(() => {
          if (push && push.connectedAt === undefined)
            this.#fail(push, new AttemptFailed('ice', 'no ICE connection in 15 s'));
        }, CONNECT_TIMEOUT_MS),
      );
    } catch (error) {
      const failure =
        error instanceof AttemptFailed
          ? error
          : new AttemptFailed('network', error instanceof Error ? error.message : String(error));
      if (push?.ended) void this.#deleteResource(push, failure.message);
      else if (push) this.#fail(push, failure);
      else this.#retryAfter(failure);
    }
  }

  async #authorization(): Promise<string | undefined> {
    const file = this.#options.tokenFile;
    if (file === undefined) return undefined;
    let token: string;
    try {
      token = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    } catch (error) {
      throw new AttemptFailed(
        'token',
        `cannot read the token file: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    if (token.length === 0 || /[\r\n]/.test(token))
      throw new AttemptFailed('token', 'the token file is empty or has several lines');
    return `Bearer ${token}`;
  }

  #newPush(): Push {
    const pc = new ndc.PeerConnection('whip', this.#options.rtcConfig(`whip-${randomUUID()}`));
    const track = new H264Track(pc, { mid: '0', payloadType: PAYLOAD_TYPE, fmtp: FMTP });
    const push: Push = { pc, track, timers: [], ended: false };
    const guard =
      <A extends unknown[]>(callback: (...args: A) => void) =>
      (...args: A) => {
        if (push.ended) return;
        try {
          callback(...args);
        } catch (error) {
          this.#fail(push, new AttemptFailed('network', error instanceof Error ? error.message : String(error)));
        }
      };
    pc.onStateChange(
      guard((state: string) => {
        if (state === 'connected') this.#connected(push);
        else if (state === 'failed' || state === 'closed')
          this.#fail(push, new AttemptFailed('ice', `connection ${state}`));
        else if (state === 'disconnected')
          push.disconnectTimer ??= setTimeout(() => {
            this.#fail(push, new AttemptFailed('ice', 'disconnected for 5 s'));
          }, DISCONNECT_GRACE_MS);
      }),
    );
    track.onOpen(
      guard(() => {
        this.#options.requestKeyframe();
      }),
    );
    track.onRtcp(
      guard((packet: Buffer) => {
        push.lastRtcpAt = performance.now();
        const feedback = readRtcpFeedback(packet);
        if (feedback.pictureLost) this.#options.requestKeyframe();
        this.#bitrate.feed(feedback);
      }),
    );
    return push;
  }

  async #gather(push: Push): Promise<string> {
    await gatherAfter(push.pc, () => {
      push.pc.setLocalDescription('offer');
    });
    const offer = push.pc.localDescription();
    if (offer?.type !== 'offer') throw new AttemptFailed('network', 'libdatachannel made no offer');
    return offer.sdp;
  }

  async #post(push: Push, offer: string, authorization: string | undefined): Promise<string> {
    let target = this.#endpoint;
    let response: Response;
    for (let redirects = 0; ; redirects++) {
      const headers: Record<string, string> = { 'content-type': 'application/sdp' };
      if (authorization && tokenMayGoTo(this.#endpoint, target)) headers.authorization = authorization;
      try {
        response = await fetch(target, {
          method: 'POST',
          headers,
          body: offer,
          redirect: 'manual',
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
      } catch (error) {
        const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : '';
        throw new AttemptFailed(
          'network',
          `POST failed: ${error instanceof Error ? error.message : ''} ${cause}`.trim(),
        );
      }
      if (response.status !== 307 && response.status !== 308) break;
      await response.body?.cancel();
      const location = response.headers.get('location');
      if (redirects === MAX_REDIRECTS || !location) throw new AttemptFailed('http', 'too many or empty redirects');
      try {
        target = new URL(location, target);
      } catch {
        throw new AttemptFailed('http', 'a redirect to something that is not a URL');
      }
      this.#log.info({ to: loggable(target) }, 'whip endpoint redirected');
    }
    const body = await readLimited(response, MAX_ANSWER_BYTES);
    if (response.status === 401 || response.status === 403)
      throw new AttemptFailed('refused', `the server refused the token (${String(response.status)})`);
    if (response.status !== 201)
      throw new AttemptFailed('http', `the server answered ${String(response.status)}: ${printable(body)}`);
    const location = response.headers.get('location');
    if (!location) throw new AttemptFailed('http', 'the 201 has no Location header');
    try {
      push.resource = new URL(location, target);
    } catch {
      throw new AttemptFailed('http', 'the Location header is not a URL');
    }
    if (!(response.headers.get('content-type') ?? '').toLowerCase().startsWith('application/sdp'))
      throw new AttemptFailed('http', 'the answer is not application/sdp');
    if (!body.startsWith('v=0')) throw new AttemptFailed('http', 'the answer is not SDP');
    return body;
  }

  #connected(push: Push): void {
    if (push.connectedAt !== undefined) {
      clearTimeout(push.disconnectTimer);
      push.disconnectTimer = undefined;
      return;
    }
    push.connectedAt = performance.now();
    this.#options.metrics.whipAttempt('connected');
    this.#options.metrics.whipConnected(true);
    this.#log.info('whip push connected');
    push.timers.push(
      setInterval(() => {
        const now = performance.now();
        if (push.lastRtcpAt !== undefined && now - push.lastRtcpAt > RTCP_SILENCE_MS)
          this.#fail(push, new AttemptFailed('ice', 'no RTCP from the server for 10 s'));
        if (push.connectedAt !== undefined && now - push.connectedAt > HELD_CONNECTION_MS) this.#backoff.reset();
      }, 1000),
    );
  }

  /** Ends this attempt's connection and schedules the next attempt. */
  #fail(push: Push, failure: AttemptFailed): void {
    if (push.ended) return;
    const wasConnected = push.connectedAt !== undefined;
    void this.#end(push, failure.message);
    if (!wasConnected) {
      this.#retryAfter(failure);
      return;
    }
    const delay = this.#scheduleAttempt();
    this.#log.warn({ reason: failure.message, retryInMs: delay }, 'whip push lost');
  }

  /** An attempt that never carried video: counted by how it failed, and tried again later. */
  #retryAfter(failure: AttemptFailed): void {
    this.#options.metrics.whipAttempt(failure.result);
    if (this.#closed) return;
    const delay = this.#scheduleAttempt();
    this.#log.warn({ result: failure.result, reason: failure.message, retryInMs: delay }, 'whip push failed');
  }

  #scheduleAttempt(): number {
    const delay = this.#backoff.next();
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      void this.#attempt();
    }, delay);
    return delay;
  }

  /** Releases one attempt: its timers, the server's resource (DELETE, at most 2 s) and the PeerConnection. */
  async #end(push: Push, reason: string): Promise<void> {
    if (push.ended) return;
    push.ended = true;
    for (const timer of push.timers) clearTimeout(timer);
    clearTimeout(push.disconnectTimer);
    if (this.#push === push) this.#push = undefined;
    if (push.connectedAt !== undefined) this.#options.metrics.whipConnected(false);
    try {
      push.track.close();
      push.pc.close();
    } catch {
      // Already closed by the peer.
    }
    await this.#deleteResource(push, reason);
  }

  /** Gives the server's session resource back (DELETE, at most 2 s); a failure only delays the server's cleanup. */
  async #deleteResource(push: Push, reason: string): Promise<void> {
    const resource = push.resource;
    if (!resource) return;
    push.resource = undefined;
    try {
      const headers: Record<string, string> = {};
      if (push.authorization && tokenMayGoTo(this.#endpoint, resource)) headers.authorization = push.authorization;
      const response = await fetch(resource, { method: 'DELETE', headers, signal: AbortSignal.timeout(2000) });
      await response.body?.cancel();
    } catch (error) {
      this.#log.debug({ reason, error: error instanceof Error ? error.message : String(error) }, 'whip DELETE failed');
    }
  }
}

/** The response body as text, at most limit bytes (a hostile server cannot make the sidecar buffer more). */
async function readLimited(response: Response, limit: number): Promise<string> {
  const reader: ReadableStreamDefaultReader<Uint8Array> | undefined = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      throw new AttemptFailed('http', `the answer is larger than ${String(limit)} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** At most 120 printable characters of a server's error body, for the log. */
function printable(body: string): string {
  return body
    .replace(/[^\x20-\x7e]+/g, ' ')
    .slice(0, 120)
    .trim();
}
