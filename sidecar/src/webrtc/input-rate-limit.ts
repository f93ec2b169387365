// A token bucket for one viewer's input events (input.maxEventsPerSecond; the default, 1500, keeps a touch
// screen moving ten fingers at 120 Hz under it), with bursts of a fifth of a second's worth: a viewer flooding
// the phone does not get through. Excess events are dropped and counted, never queued.

export class InputRateLimit {
  readonly #perSecond: number;
  readonly #burst: number;
  #tokens: number;
  #at = performance.now();

  constructor(perSecond: number) {
    this.#perSecond = perSecond;
    this.#burst = Math.max(1, Math.round(perSecond / 5));
    this.#tokens = this.#burst;
  }

  take(now = performance.now()): boolean {
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#perSecond);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
