// Whether an Annex-B access unit carries an SPS, so a keyframe that lacks one (a phone's MediaCodec sends
// SPS/PPS only once) can be given the cached parameter sets before it goes to a peer that just joined; and
// the RTP timestamp every WebRTC sink sends a picture with, so they all agree.

import type { AccessUnit } from '../native.ts';

const SPS = 7;
const RTP_TIMESTAMP_RANGE = 2 ** 32;

export function hasSps(accessUnit: Uint8Array): boolean {
  // SPS, when present, comes before the first slice: looking at the first NAL units is enough.
  const end = Math.min(accessUnit.length - 3, 4096);
  for (let i = 0; i < end; i++) {
    if (accessUnit[i] === 0 && accessUnit[i + 1] === 0 && accessUnit[i + 2] === 1) {
      const type = (accessUnit[i + 3] ?? 0) & 0x1f;
      if (type === SPS) return true;
      if (type >= 1 && type <= 5) return false;
      i += 2;
    }
  }
  return false;
}

/** level_idc of the first SPS in Annex-B parameter sets (the byte after profile_idc and its constraint flags). */
export function spsLevel(parameterSets: Uint8Array): number | undefined {
  for (let i = 0; i + 6 < parameterSets.length; i++) {
    if (parameterSets[i] === 0 && parameterSets[i + 1] === 0 && parameterSets[i + 2] === 1) {
      if (((parameterSets[i + 3] ?? 0) & 0x1f) === SPS) return parameterSets[i + 6];
      i += 2;
    }
  }
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
