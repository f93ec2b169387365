// Turns keyframe wishes (a viewer joined, a PLI or FIR, a KeyframeRequest message) into encoder requests at
// most once per interval: a viewer on a lossy path must not turn the stream into keyframes only. A wish
// inside the interval is not lost: one request goes out when the interval ends, so a joiner always gets
// its IDR.

export class KeyframeLimiter {
  readonly #request: () => void;
  readonly #intervalMs: number;
  #lastAt = -Infinity;
  #deferred: NodeJS.Timeout | undefined;

  constructor(request: () => void, intervalMs = 250) {
    this.#request = request;
    this.#intervalMs = intervalMs;
  }

  want(): void {
    const wait = this.#lastAt + this.#intervalMs - performance.now();
    if (wait <= 0) {
      this.#send();
      return;
    }
    this.#deferred ??= setTimeout(() => {
      this.#deferred = undefined;
      this.#send();
    }, wait);
  }

  close(): void {
    clearTimeout(this.#deferred);
    this.#deferred = undefined;
  }

  #send(): void {
    this.#lastAt = performance.now();
    this.#request();
  }
}
