// What bitrate one WebRTC peer's path can take (a viewer's, or the WHIP server's), from what its RTCP says and
// what was sent to it; and the policy across viewers.
//
// Why our own estimator: the feedback a sender usually steers by is transport-wide congestion control (TWCC),
// and it needs a sequence number of ours in every RTP packet's header, which libdatachannel's packetizer
// cannot add (node-datachannel exposes no per-packet hook). What the browser does send is receiver reports
// (loss) and REMB, its own delay-based estimate. REMB cannot lead: Chromium raises it by about 8 % a second
// and never past 1.5x what it receives, so a sender that stays under it takes half a minute to go from 1 to
// 8 Mbit/s, and sits at its floor when the phone's picture is simple. So:
//
// - Loss finds the link: the share of packets of about the last second that the receiver NACKed (each
//   once), or its reports' fraction lost if higher. Over 10 % lost in a second, or over 2 % that came with a
//   climb (sending more than in the last clean second) or near the link found before, the link is taken to
//   carry what got through (sent x (1 - loss), and at least what the last clean seconds carried), and the
//   estimate falls to 90 % of that. Other loss of 2-10 % holds the estimate: loss that stays whatever the rate
//   is chance, which NACKs repair, not a reason to fall.
// - After a cut it holds three seconds, and on while the loss dies down: what comes back then is about the
//   seconds before (Chromium NACKs a packet until it comes, and each NACK is answered natively).
// - REMB is a congestion signal, not a ceiling: when it falls by more than 15 % from its recent peak to under
//   what is sent, the receiver saw its queue grow, and the estimate falls to what it says.
// - Otherwise the estimate climbs: by 30 % a second while no link is known (1 to 8 Mbit/s in 8 s), by 15 %
//   while under 90 % of the known link, by 2 % a second past that; a second sent cleanly above the link raises
//   it. Five clean seconds well above where loss began forget the link (a cap was lifted): the fast climb again.
// - It climbs only when the path was used: when the encoder sent at least half the estimate (a still or simple
//   picture proves nothing about the link).
//
// A pure state machine fed once a second, so tests drive it number by number.

import type { RtcpFeedback } from './rtcp-feedback.ts';
import type { ViewerRole } from './viewer-tokens.ts';

export interface BitrateRange {
  minKbps: number;
  targetKbps: number;
  maxKbps: number;
}

const HIGH_LOSS = 0.1;
const LOW_LOSS = 0.02;
const BELOW_LINK = 0.9;
const ABOVE_CLEAN = 1.05;
const MIN_CARRIED = 0.5;
const RECENT_TICKS = 4;
const PROBE_GROWTH = 1.3;
const APPROACH_GROWTH = 1.15;
const NEAR_LINK_GROWTH = 1.02;
const REMB_DROP = 0.85;
const REMB_PEAK_TICKS = 5;
const TICKS_TO_FORGET_LINK = 5;
const HOLD_TICKS_AFTER_BACKOFF = 3;
// A cut while the last one's aftermath lasts goes at most this far below the link the last one found.
const SECOND_CUT = 0.7;

export class ViewerBitrate {
  readonly #range: BitrateRange;
  #estimateKbps: number;
  /** What the link carries, found where loss began and raised by what it carried cleanly since. */
  #linkKbps: number | undefined;
  /** The rate at which loss last began, and how many clean seconds have since gone by well above it. */
  #lossBeganKbps: number | undefined;
  #cleanTicksAboveLoss = 0;
  /** What was sent in the latest second with under 2 % lost. */
  #cleanKbps: number | undefined;
  #holdTicks = 0;
  /** A cut was made and the loss since has not yet fallen under 2 %. */
  #afterCut = false;
  #previousLoss = 0;
  /** What was sent each of the last few seconds, NaN for a second with loss. */
  readonly #recent: number[] = [];
  #lossSum = 0;
  #reports = 0;
  #nacked = 0;
  /** Per RTP sequence number, the mark of the last second it was NACKed in (no set to allocate). */
  readonly #nackedInTick = new Uint8Array(65536);
  #tickMark = 1;
  #highestSequence: number | undefined;
  /** Packets sent in the latest second: how far back a NACK counts. */
  #recentPackets = 1000;
  #rembKbps: number | undefined;
  readonly #rembPeaks: number[] = [];

  constructor(range: BitrateRange) {
    this.#range = range;
    this.#estimateKbps = range.targetKbps;
  }

  get estimateKbps(): number {
    return this.#estimateKbps;
  }

  /** What the estimator takes the link to carry (kbit/s), found by loss; undefined while none is known. */
  get linkKbps(): number | undefined {
    return this.#linkKbps;
  }

  feed(feedback: RtcpFeedback): void {
    if (feedback.rembBps !== undefined) this.#rembKbps = feedback.rembBps / 1000;
    if (feedback.fractionLost !== undefined) {
      this.#lossSum += feedback.fractionLost;
      this.#reports++;
    }
    if (feedback.highestSequence !== undefined) this.#highestSequence = feedback.highestSequence & 0xffff;
    // Chromium asks for a missing packet again and again until it comes or is too old: each counts once a
    // second, and only while it is among the packets of about the last second (the NACKs that go on for a
    // packet lost before a cut would otherwise keep the loss up long after it).
    for (const sequence of feedback.nackedSequences ?? []) {
      const highest = this.#highestSequence;
      if (highest !== undefined && ((highest - sequence) & 0xffff) > this.#recentPackets) continue;
      if (this.#nackedInTick[sequence] === this.#tickMark) continue;
      this.#nackedInTick[sequence] = this.#tickMark;
      this.#nacked++;
    }
  }

  /**
   * The share of packets lost over the last second, before repair: the packets NACKed (each once) against the
   * packets sent, or the reports' fraction lost when that is higher (a report's fraction lost counts a
   * retransmitted packet as received, so alone it hides a link that loses a third of what it is sent as long
   * as the repairs get through).
   */
  #lossThisTick(sentPackets: number): number {
    const reported = this.#reports > 0 ? this.#lossSum / this.#reports : 0;
    if (sentPackets <= 0) return reported;
    return Math.max(reported, Math.min(1, this.#nacked / sentPackets));
  }

  /**
   * Once a second: folds what arrived since the last tick, and the bytes of media sent to this peer over that
   * second, into the estimate and returns it.
   */
  tick(sent: { bytes: number; packets: number }): number {
    const sentKbps = (sent.bytes * 8) / 1000;
    const loss = this.#lossThisTick(sent.packets);
    this.#recentPackets = Math.max(100, sent.packets);
    // A fall in what the receiver says that leaves it under what we send; not one that follows our own cut.
    const rembDropped = this.#rembDropped() && (this.#rembKbps ?? Infinity) < sentKbps;
    const previousLoss = this.#previousLoss;
    this.#previousLoss = loss;
    if (this.#holdTicks > 0 || (this.#afterCut && loss > LOW_LOSS && loss < previousLoss)) {
      // Right after a cut, what comes back is about the seconds before it: the NACKs of what was lost then, and
      // of its retransmissions (answered natively, each time it is asked for). Held while that dies down.
      this.#holdTicks = Math.max(0, this.#holdTicks - 1);
    } else if (sentKbps > 0 && (this.#congested(sentKbps, loss) || rembDropped)) {
      // What got through; never taken as under half of what was sent, since NACKs of retransmissions and of
      // the second before make the count noisy when the loss is heavy.
      // And never under what the path carried cleanly over the last few seconds: a link with a buffer lets a
      // burst over its rate through and drops only once the buffer is full, so one second can overstate it.
      let carried = Math.max(sentKbps * Math.max(MIN_CARRIED, 1 - loss), this.#recentCleanKbps());
      if (rembDropped && this.#rembKbps !== undefined) carried = Math.min(carried, this.#rembKbps / BELOW_LINK);
      if (this.#afterCut && this.#linkKbps !== undefined) carried = Math.max(carried, SECOND_CUT * this.#linkKbps);
      this.#linkKbps = carried;
      this.#lossBeganKbps = sentKbps;
      this.#estimateKbps = Math.min(this.#estimateKbps, carried * BELOW_LINK);
      this.#holdTicks = HOLD_TICKS_AFTER_BACKOFF;
      this.#afterCut = true;
      this.#cleanTicksAboveLoss = 0;
    } else if (loss < LOW_LOSS && sentKbps >= this.#estimateKbps / 2) {
      this.#climb(sentKbps);
    }
    if (loss < LOW_LOSS && sentKbps > 0) this.#cleanKbps = sentKbps;
    this.#recent.push(loss < LOW_LOSS ? sentKbps : NaN);
    if (this.#recent.length > RECENT_TICKS) this.#recent.shift();
    if (loss < LOW_LOSS && this.#holdTicks === 0) this.#afterCut = false;
    this.#estimateKbps = Math.round(Math.min(this.#range.maxKbps, Math.max(this.#range.minKbps, this.#estimateKbps)));
    this.#lossSum = 0;
    this.#reports = 0;
    this.#nacked = 0;
    this.#tickMark = (this.#tickMark % 255) + 1;
    // The marks come round again after 255 s: start them afresh, or a packet marked then would not count now.
    if (this.#tickMark === 1) this.#nackedInTick.fill(0);
    return this.#estimateKbps;
  }

  /** The mean of what was sent in the clean seconds among the last few, 0 when none was clean. */
  #recentCleanKbps(): number {
    const clean = this.#recent.filter((kbps) => !Number.isNaN(kbps));
    return clean.length > 0 ? clean.reduce((sum, kbps) => sum + kbps, 0) / clean.length : 0;
  }

  /** Loss over 10 %, or over 2 % that came with a climb (past the last clean second's rate) or near the link. */
  #congested(sentKbps: number, loss: number): boolean {
    if (loss > HIGH_LOSS) return true;
    if (loss <= LOW_LOSS) return false;
    const nearLink = this.#linkKbps !== undefined && sentKbps > BELOW_LINK * this.#linkKbps;
    const aboveClean = this.#cleanKbps !== undefined && sentKbps > ABOVE_CLEAN * this.#cleanKbps;
    return nearLink || aboveClean;
  }

  #climb(sentKbps: number): void {
    if (this.#linkKbps !== undefined) {
      // The path carried this cleanly: the link is at least that.
      this.#linkKbps = Math.max(this.#linkKbps, sentKbps);
      if (sentKbps > ABOVE_CLEAN * (this.#lossBeganKbps ?? Infinity)) this.#cleanTicksAboveLoss++;
      if (this.#cleanTicksAboveLoss >= TICKS_TO_FORGET_LINK) {
        this.#linkKbps = undefined;
        this.#lossBeganKbps = undefined;
        this.#cleanTicksAboveLoss = 0;
      }
    }
    if (this.#linkKbps === undefined) this.#estimateKbps *= PROBE_GROWTH;
    // (Less one: the estimate is rounded to whole kbit/s, and must not stay a fraction under the mark.)
    else if (this.#estimateKbps < BELOW_LINK * this.#linkKbps - 1)
      this.#estimateKbps = Math.min(this.#estimateKbps * APPROACH_GROWTH, BELOW_LINK * this.#linkKbps);
    else this.#estimateKbps *= NEAR_LINK_GROWTH;
  }

  /** REMB fell by more than 15 % from its peak over the last few seconds: the receiver saw its queue grow. */
  #rembDropped(): boolean {
    const remb = this.#rembKbps;
    if (remb === undefined) return false;
    const peak = Math.max(remb, ...this.#rembPeaks);
    this.#rembPeaks.push(remb);
    if (this.#rembPeaks.length > REMB_PEAK_TICKS) this.#rembPeaks.shift();
    if (remb >= REMB_DROP * peak) return false;
    // Counted once: the peak starts again from what the receiver says now.
    this.#rembPeaks.length = 0;
    this.#rembPeaks.push(remb);
    return true;
  }
}

/** The bitrate the viewers allow: the weakest control viewer's, else the weakest viewer's; none: undefined. */
export function viewersAllowKbps(viewers: readonly { role: ViewerRole; estimateKbps: number }[]): number | undefined {
  const control = viewers.filter((viewer) => viewer.role === 'control');
  const counted = control.length > 0 ? control : viewers;
  if (counted.length === 0) return undefined;
  return Math.min(...counted.map((viewer) => viewer.estimateKbps));
}
