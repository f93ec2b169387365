// When the one encoder makes a keyframe for whoever wants one. Two kinds of wish:
// - urgent (a control viewer joining or losing the picture, the WHIP server's PLI): a keyframe now, at most
//   one per minIntervalMs (a wish inside the interval is not lost: one goes out when it ends);
// - whenDue (a view-only viewer joining or losing the picture): it rides on the next keyframe the stream makes
//   anyway (periodic, or for someone urgent). Only when none has come for waitMs is one made for it, at most
//   once per waitMs. So view-only viewers cannot raise the rate of keyframes the control viewer gets: with
//   periodic keyframes (keyframeIntervalSeconds > 0) waitMs is longer than the period and they add none;
//   without, they add at most one per waitMs.
// Each viewer's wishes are limited before they get here (keyframeWishBudget, one per viewer and one for the
// WHIP server).

import { TokenBucket } from './token-bucket.ts';

export interface KeyframeSchedulerOptions {
  minIntervalMs: number;
  waitMs: number;
  /** Milliseconds on a monotonic clock (tests move it). */
  now?: () => number;
}

/**
 * One viewer's keyframe wishes (its join, PLIs, FIRs, KeyframeRequests): one a second, two at once (a join and
 * the loss right after it). A decoder that lost the picture is served by one; more are a broken or hostile
 * viewer's, dropped and counted.
 */
export function keyframeWishBudget(): TokenBucket {
  return new TokenBucket(1, 2);
}

/** How long a view-only viewer waits for a keyframe the stream makes anyway. */
export function viewOnlyWaitMs(keyframeIntervalSeconds: number, intraRefresh: boolean): number {
  // With intra refresh the periodic "keyframes" are refresh waves, not IDRs a joiner can start from.
  if (keyframeIntervalSeconds === 0 || intraRefresh) return 2000;
  // Past the period, with room for the periodic IDR to come through the encoder before the wait runs out.
  return keyframeIntervalSeconds * 1000 + 500;
}

export class KeyframeScheduler {
  readonly #request: () => void;
  readonly #minIntervalMs: number;
  readonly #waitMs: number;
  readonly #now: () => number;
  #requestedAt = -Infinity;
  /** The stream starts with a keyframe (the encoder's first picture, a new surface's): count from here. */
  #keyframeAt: number;
  #urgentTimer: NodeJS.Timeout | undefined;
  #dueTimer: NodeJS.Timeout | undefined;

  constructor(request: () => void, options: KeyframeSchedulerOptions) {
    this.#request = request;
    this.#minIntervalMs = options.minIntervalMs;
    this.#waitMs = options.waitMs;
    this.#now = options.now ?? (() => performance.now());
    this.#keyframeAt = this.#now();
  }

  urgent(): void {
    const wait = this.#requestedAt + this.#minIntervalMs - this.#now();
    if (wait <= 0) {
      this.#send();
      return;
    }
    this.#urgentTimer ??= setTimeout(() => {
      this.#urgentTimer = undefined;
      this.#send();
    }, wait);
  }

  whenDue(): void {
    if (this.#dueTimer) return;
    const last = Math.max(this.#keyframeAt, this.#requestedAt);
    const wait = last + this.#waitMs - this.#now();
    if (wait <= 0) {
      this.#send();
      return;
    }
    this.#dueTimer = setTimeout(() => {
      this.#dueTimer = undefined;
      this.#send();
    }, wait);
  }

  /** The encoder made a keyframe (periodic or asked for): everyone waiting for one has it. */
  keyframeSent(): void {
    this.#keyframeAt = this.#now();
    clearTimeout(this.#dueTimer);
    this.#dueTimer = undefined;
  }

  close(): void {
    clearTimeout(this.#urgentTimer);
    clearTimeout(this.#dueTimer);
    this.#urgentTimer = undefined;
    this.#dueTimer = undefined;
  }

  #send(): void {
    this.#requestedAt = this.#now();
    this.#request();
  }
}
