// Whether an Annex-B access unit carries an SPS, so a keyframe that lacks one (a phone's MediaCodec sends
// SPS/PPS only once) can be given the cached parameter sets before it goes to a peer that just joined; and
// the RTP timestamp every WebRTC sink sends a picture with, so they all agree.

import type { AccessUnit } from '../native.ts';

const SPS = 7;
const RTP_TIMESTAMP_RANGE = 2 ** 32;

/** The offset of each NAL unit's header byte (after a 00 00 01 start code), among the first `limit` bytes. */
function* nalHeaders(bytes: Uint8Array, limit = bytes.length): Generator<number> {
  const end = Math.min(bytes.length - 3, limit);
  for (let i = 0; i < end; i++) {
    if (bytes[i] === 0 && bytes[i + 1] === 0 && bytes[i + 2] === 1) {
      yield i + 3;
      i += 2;
    }
  }
}

export function hasSps(accessUnit: Uint8Array): boolean {
  // SPS, when present, comes before the first slice: looking at the first NAL units is enough.
  for (const at of nalHeaders(accessUnit, 4096)) {
    const type = (accessUnit[at] ?? 0) & 0x1f;
    if (type === SPS) return true;
    if (type >= 1 && type <= 5) return false;
  }
  return false;
}

/** level_idc of the first SPS in Annex-B parameter sets (the byte after profile_idc and its constraint flags). */
export function spsLevel(parameterSets: Uint8Array): number | undefined {
  for (const at of nalHeaders(parameterSets))
    if (((parameterSets[at] ?? 0) & 0x1f) === SPS) return parameterSets[at + 3];
  return undefined;
}

/** The unit itself, or for a keyframe without SPS/PPS a copy with the cached sets in front. */
export function withParameterSets(unit: AccessUnit, parameterSets: () => Buffer): AccessUnit {
  if (!unit.keyframe || hasSps(unit.data)) return unit;
  const sets = parameterSets();
  return sets.length > 0 ? { ...unit, data: Buffer.concat([sets, unit.data]) } : unit;
}

/** The 90 kHz presentation time, wrapped to RTP's 32 bits. */
export function rtpTimestampOf(unit: AccessUnit): number {
  return unit.pts90k % RTP_TIMESTAMP_RANGE;
}
