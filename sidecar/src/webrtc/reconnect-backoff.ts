// How long to wait before the next connection attempt: exponential from initialMs up to maxMs, each delay
// moved by up to ±20 % so that many sidecars that lost one media server do not come back in lockstep.

export interface BackoffSettings {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { initialMs: 500, maxMs: 30_000 };

export class ReconnectBackoff {
  readonly #settings: BackoffSettings;
  readonly #random: () => number;
  #failures = 0;

  constructor(settings: BackoffSettings = DEFAULT_BACKOFF, random: () => number = Math.random) {
    this.#settings = settings;
    this.#random = random;
  }

  /** The delay before the next attempt; each call without a reset() doubles it, up to maxMs. */
  next(): number {
    const { initialMs, maxMs } = this.#settings;
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.#failures, 30));
    this.#failures++;
    const jittered = base * (0.8 + 0.4 * this.#random());
    return Math.round(Math.min(maxMs, jittered));
  }

  /** A connection held: the next failure starts from initialMs again. */
  reset(): void {
    this.#failures = 0;
  }
}
