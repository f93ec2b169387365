// Whether an Annex-B access unit carries an SPS, so a keyframe that lacks one (a phone's MediaCodec sends
// SPS/PPS only once) can be given the cached parameter sets before it goes to a viewer that just joined.

const SPS = 7;

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
