// What bitrate one WebRTC viewer's path can take, from its RTCP: its REMB estimate when it sends one, else
// loss-based AIMD on its receiver reports (more than 10 % lost: x0.85; under 2 %: +5 % of the range).
// And the policy across viewers: the stream follows the weakest control viewer (the person using the
// phone); view-only viewers count only when no control viewer is connected. A pure state machine, fed once
// a second, so tests drive it number by number.

import type { RtcpFeedback } from './rtcp-feedback.ts';
import type { ViewerRole } from './viewer-tokens.ts';

export interface BitrateRange {
  minKbps: number;
  targetKbps: number;
  maxKbps: number;
}

export class ViewerBitrate {
  readonly #range: BitrateRange;
  #estimateKbps: number;
  #rembKbps: number | undefined;
  #worstLoss = 0;
  #reports = 0;

  constructor(range: BitrateRange) {
    this.#range = range;
    this.#estimateKbps = range.targetKbps;
  }

  get estimateKbps(): number {
    return this.#estimateKbps;
  }

  feed(feedback: RtcpFeedback): void {
    if (feedback.rembBps !== undefined) this.#rembKbps = feedback.rembBps / 1000;
    if (feedback.fractionLost !== undefined) {
      this.#worstLoss = Math.max(this.#worstLoss, feedback.fractionLost);
      this.#reports++;
    }
  }

  /** Once a second: folds what arrived since the last tick into the estimate and returns it. */
  tick(): number {
    const { minKbps, maxKbps } = this.#range;
    if (this.#reports > 0) {
      if (this.#worstLoss > 0.1) this.#estimateKbps *= 0.85;
      else if (this.#worstLoss < 0.02) this.#estimateKbps += (maxKbps - minKbps) * 0.05;
    }
    // REMB is the receiver's own estimate of its path: never send more than 90 % of it.
    if (this.#rembKbps !== undefined) this.#estimateKbps = Math.min(this.#estimateKbps, this.#rembKbps * 0.9);
    this.#estimateKbps = Math.round(Math.min(maxKbps, Math.max(minKbps, this.#estimateKbps)));
    this.#worstLoss = 0;
    this.#reports = 0;
    return this.#estimateKbps;
  }
}

/** The bitrate the viewers allow: the weakest control viewer's, else the weakest viewer's; none: undefined. */
export function viewersAllowKbps(viewers: readonly { role: ViewerRole; estimateKbps: number }[]): number | undefined {
  const control = viewers.filter((viewer) => viewer.role === 'control');
  const counted = control.length > 0 ? control : viewers;
  if (counted.length === 0) return undefined;
  return Math.min(...counted.map((viewer) => viewer.estimateKbps));
}
