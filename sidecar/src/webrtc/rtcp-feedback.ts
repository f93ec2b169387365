// Reads what a WebRTC viewer's RTCP says about the picture and the path: picture loss (PLI, FIR), the
// receiver's bandwidth estimate (REMB), loss (receiver report blocks) and the packets it asked for again
// (generic NACKs). A pure function of the bytes: anything malformed ends the walk, never throws (viewers are
// untrusted). libdatachannel's NACK responder answers the NACKs natively; they reach here too, and say what
// was lost before it was repaired (a report's fraction lost counts a repaired packet as received).

export interface RtcpFeedback {
  /** A PLI or FIR: the viewer lost the picture and needs a keyframe. */
  pictureLost: boolean;
  /** The latest REMB estimate in bits per second, if any. */
  rembBps?: number;
  /** The latest receiver report's fraction of packets lost since the previous one, 0 to 1. */
  fractionLost?: number;
  /** Interarrival jitter from the latest report block, in RTP timestamp units (90 kHz). */
  jitter?: number;
  /** The latest report block's extended highest sequence number received (wraps count above 16 bits). */
  highestSequence?: number;
  /** The sequence numbers the generic NACKs in this packet ask for again (at most 17 per NACK item). */
  nackedSequences?: number[];
}

const SR = 200;
const RR = 201;
const RTPFB = 205;
const NACK = 1;
const PSFB = 206;
const PLI = 1;
const FIR = 4;
const AFB = 15;
const REMB = 0x52454d42; // "REMB"
// Header, sender and media SSRCs, "REMB", then the SSRC count and the estimate; the list of SSRCs may be empty.
const REMB_MIN_BYTES = 20;
// What one RTCP packet may name as lost: a UDP datagram holds at most a few hundred NACK items.
const MAX_NACKED = 4096;

export function readRtcpFeedback(packet: Uint8Array): RtcpFeedback {
  const feedback: RtcpFeedback = { pictureLost: false };
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  let offset = 0;
  while (offset + 4 <= packet.byteLength) {
    const first = view.getUint8(offset);
    if (first >> 6 !== 2) break;
    const count = first & 0x1f;
    const type = view.getUint8(offset + 1);
    const end = offset + (view.getUint16(offset + 2) + 1) * 4;
    if (end > packet.byteLength) break;
    if (type === PSFB && (count === PLI || count === FIR)) feedback.pictureLost = true;
    if (type === PSFB && count === AFB && end - offset >= REMB_MIN_BYTES && view.getUint32(offset + 12) === REMB) {
      const exponent = view.getUint8(offset + 17) >> 2;
      const mantissa = ((view.getUint8(offset + 17) & 0x03) << 16) | view.getUint16(offset + 18);
      feedback.rembBps = mantissa * 2 ** exponent;
    }
    if (type === RTPFB && count === NACK) {
      // After the header and two SSRCs, pairs of (packet id, bitmask of the 16 that follow it).
      const nacked = (feedback.nackedSequences ??= []);
      for (let fci = offset + 12; fci + 4 <= end && nacked.length < MAX_NACKED; fci += 4) {
        const id = view.getUint16(fci);
        const mask = view.getUint16(fci + 2);
        nacked.push(id);
        for (let bit = 0; bit < 16; bit++) if (mask & (1 << bit)) nacked.push((id + bit + 1) & 0xffff);
      }
    }
    if (type === RR || type === SR) {
      const blocks = offset + (type === SR ? 28 : 8);
      if (count > 0 && blocks + 24 <= end) {
        feedback.fractionLost = view.getUint8(blocks + 4) / 256;
        feedback.highestSequence = view.getUint32(blocks + 8);
        feedback.jitter = view.getUint32(blocks + 12);
      }
    }
    offset = end;
  }
  return feedback;
}
