// A token bucket for one viewer's input events: a touch screen moving ten fingers at 120 Hz stays well
// under it; a viewer flooding the phone does not. Excess events are dropped and counted, never queued.

export class InputRateLimit {
  readonly #perSecond: number;
  readonly #burst: number;
  #tokens: number;
  #at = performance.now();

  constructor(perSecond = 1500, burst = 300) {
    this.#perSecond = perSecond;
    this.#burst = burst;
    this.#tokens = burst;
  }

  take(now = performance.now()): boolean {
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#perSecond);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
