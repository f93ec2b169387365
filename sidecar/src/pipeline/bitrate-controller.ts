// Chooses the encoder's bitrate from SRT's own statistics, within the stream's minKbps..maxKbps: a pure
// function of the samples it is fed, so tests drive it number by number.
//
// Policy: multiplicative decrease when the link shows trouble (more than 2 % of packets lost in the last
// interval, or the send buffer holding more than half the SRT latency), slow additive increase (5 % of the
// range per clean interval) back towards maxKbps otherwise. Starts at targetKbps.

export interface SrtSample {
  connected: boolean;
  packetsSent: number;
  packetsLost: number;
  sendBufferMs: number;
}

export interface BitrateLimits {
  minKbps: number;
  targetKbps: number;
  maxKbps: number;
  latencyMs: number;
}

export class BitrateController {
  readonly #limits: BitrateLimits;
  #current: number;
  #previous: SrtSample | undefined;

  constructor(limits: BitrateLimits) {
    this.#limits = limits;
    this.#current = limits.targetKbps;
  }

  get currentKbps(): number {
    return this.#current;
  }

  /** Feeds one sample (taken about once a second); returns the new bitrate when it changed. */
  update(sample: SrtSample): number | undefined {
    const previous = this.#previous;
    this.#previous = sample;
    if (!sample.connected || !previous?.connected || sample.packetsSent < previous.packetsSent) return undefined;
    const sent = sample.packetsSent - previous.packetsSent;
    const lost = Math.max(0, sample.packetsLost - previous.packetsLost);
    if (sent === 0) return undefined;
    const { minKbps, maxKbps, latencyMs } = this.#limits;
    const congested = lost / sent > 0.02 || sample.sendBufferMs > Math.max(20, latencyMs / 2);
    const next = congested
      ? Math.max(minKbps, Math.round(this.#current * 0.7))
      : Math.min(maxKbps, Math.round(this.#current + (maxKbps - minKbps) * 0.05));
    if (next === this.#current) return undefined;
    this.#current = next;
    return next;
  }
}
