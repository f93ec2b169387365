// Capture-to-display latency of one viewer: from the phone's capture time to the moment the viewer's browser
// shows that frame. The frame is known by its RTP timestamp (FrameTiming says which capture time it had);
// the viewer reports when it showed it on its own clock (RenderReport), and Ping/Pong put that clock on the
// sidecar's CLOCK_MONOTONIC, which is the phone's (same kernel). The offset kept is the one measured with
// the shortest round trip among the recent pongs: its error is at most half that round trip.

const FRAMES_REMEMBERED = 256;
const PONGS_REMEMBERED = 8;

export class CaptureToDisplayClock {
  // A ring of (RTP timestamp, capture time) pairs: no allocation per frame.
  readonly #rtp = new Uint32Array(FRAMES_REMEMBERED);
  readonly #captureUs = new Float64Array(FRAMES_REMEMBERED);
  #next = 0;
  readonly #offsets: { rttUs: number; offsetUs: number }[] = [];

  /** A frame was sent with this RTP timestamp; captureUs on the sidecar's monotonic clock. */
  frameSent(rtpTimestamp: number, captureUs: number): void {
    this.#rtp[this.#next] = rtpTimestamp;
    this.#captureUs[this.#next] = captureUs;
    this.#next = (this.#next + 1) % FRAMES_REMEMBERED;
  }

  /** The viewer answered a ping sent at sentUs (ours) at viewerTimeUs (its clock); nowUs is ours. */
  pong(sentUs: number, viewerTimeUs: number, nowUs: number): void {
    const rttUs = nowUs - sentUs;
    if (rttUs < 0 || rttUs > 10_000_000) return;
    this.#offsets.push({ rttUs, offsetUs: viewerTimeUs - (sentUs + rttUs / 2) });
    if (this.#offsets.length > PONGS_REMEMBERED) this.#offsets.shift();
  }

  /** Milliseconds from capture to display, or undefined when the frame or the clock offset is unknown. */
  latencyMs(rtpTimestamp: number, renderedAtUs: number): number | undefined {
    let best: { rttUs: number; offsetUs: number } | undefined;
    for (const sample of this.#offsets) if (!best || sample.rttUs < best.rttUs) best = sample;
    if (!best) return undefined;
    for (let i = 1; i <= FRAMES_REMEMBERED; i++) {
      const slot = (this.#next - i + FRAMES_REMEMBERED) % FRAMES_REMEMBERED;
      const captureUs = this.#captureUs[slot] ?? 0;
      if (captureUs === 0) return undefined;
      if (this.#rtp[slot] === rtpTimestamp) {
        const latencyMs = (renderedAtUs - best.offsetUs - captureUs) / 1000;
        // A report from before the clock settled, or a lie: not a latency.
        return latencyMs >= 0 && latencyMs < 60_000 ? latencyMs : undefined;
      }
    }
    return undefined;
  }
}
