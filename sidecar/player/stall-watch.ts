// Tells a still screen from a stalled stream, so the player asks for a keyframe only when one would help.
// The sidecar announces each picture it sends (FrameTiming, by RTP timestamp) on the data channel; the page
// sees each picture it shows (requestVideoFrameCallback). A still phone sends nothing, and the last picture it
// announced is the last one shown: nothing to ask for, and nothing is encoded again. A stream is stalled when
// a picture was announced but nothing newer than what is on screen has shown for `patienceMs`: then the
// decoder has lost the picture (or the packets were lost for good), and a keyframe brings it back.

/** Whether RTP timestamp a is at or after b, with 32-bit wraparound (RFC 1982 serial numbers). */
function atOrAfter(a: number, b: number): boolean {
  return (a - b) >>> 0 < 0x80000000;
}

export class StallWatch {
  readonly #patienceMs: number;
  #newestAnnounced: number | undefined;
  #newestShown: number | undefined;
  /** Since when an announced picture newer than the screen has waited with no progress; undefined: none waits. */
  #waitingSince: number | undefined;

  constructor(patienceMs = 1000) {
    this.#patienceMs = patienceMs;
  }

  /** The sidecar sent the picture with this RTP timestamp. */
  announced(rtpTimestamp: number, nowMs: number): void {
    if (this.#newestAnnounced !== undefined && !atOrAfter(rtpTimestamp, this.#newestAnnounced)) return;
    this.#newestAnnounced = rtpTimestamp;
    // The data channel can lose the race with the video: the picture may be on screen already.
    if (this.#newestShown !== undefined && atOrAfter(this.#newestShown, rtpTimestamp)) return;
    this.#waitingSince ??= nowMs;
  }

  /** The page showed the picture with this RTP timestamp. */
  shown(rtpTimestamp: number, nowMs: number): void {
    if (this.#newestShown !== undefined && !atOrAfter(rtpTimestamp, this.#newestShown)) return;
    this.#newestShown = rtpTimestamp;
    // Caught up (a picture the sidecar did not announce, such as a still screen's repeated keyframe, is newer
    // than every announcement): nothing waits. Else progress: the wait starts again.
    const caughtUp = this.#newestAnnounced === undefined || atOrAfter(rtpTimestamp, this.#newestAnnounced);
    this.#waitingSince = caughtUp ? undefined : nowMs;
  }

  /** True when a keyframe should be asked for now; then not again for another patienceMs. */
  keyframeDue(nowMs: number): boolean {
    if (this.#waitingSince === undefined || nowMs - this.#waitingSince < this.#patienceMs) return false;
    this.#waitingSince = nowMs;
    return true;
  }
}
