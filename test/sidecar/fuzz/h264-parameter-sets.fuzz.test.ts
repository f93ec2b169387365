// The H.264 readers the sidecar runs over access units, which come from the phone's own encoder when it sends
// H.264 (a hostile phone's bytes): Annex-B streams built from a model of their NAL units, the same with bytes
// overwritten, and noise.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasSps, spsLevel } from '../../../sidecar/src/webrtc/h264-parameter-sets.ts';
import { FUZZ_TIMEOUT_MS, fuzzRuns } from './fuzz-runs.ts';

interface Nal {
  type: number;
  payload: Uint8Array;
  longStartCode: boolean;
}

const nal: fc.Arbitrary<Nal> = fc.record({
  type: fc.oneof(fc.constantFrom(1, 5, 6, 7, 8, 9), fc.integer({ min: 0, max: 31 })),
  // Payload bytes never form a start code (00 00 0x, as emulation prevention guarantees in a real stream).
  payload: fc.uint8Array({ minLength: 3, maxLength: 40 }).map((b) => b.map((x) => x || 1)),
  longStartCode: fc.boolean(),
});

function annexB(nals: Nal[]): Uint8Array {
  return Uint8Array.from(
    nals.flatMap((n) => [...(n.longStartCode ? [0, 0, 0, 1] : [0, 0, 1]), 0x60 | n.type, ...n.payload]),
  );
}

describe('H.264 parameter-set readers under fuzzing', { timeout: FUZZ_TIMEOUT_MS }, () => {
  it('find the SPS and its level where a model of the NAL units puts them', () => {
    fc.assert(
      fc.property(fc.array(nal, { maxLength: 8 }), (nals) => {
        const bytes = annexB(nals);
        const firstSliceOrSps = nals.find((n) => n.type === 7 || (n.type >= 1 && n.type <= 5));
        expect(hasSps(bytes)).toBe(firstSliceOrSps?.type === 7);
        const sps = nals.find((n) => n.type === 7);
        expect(spsLevel(bytes)).toBe(sps ? sps.payload[2] : undefined);
      }),
      fuzzRuns(),
    );
  });

  it('never throw, and answer in range, for overwritten streams and noise', () => {
    const overwritten = fc
      .tuple(
        fc.array(nal, { maxLength: 8 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      )
      .map(([nals, writes]) => {
        const bytes = annexB(nals);
        for (const [at, value] of writes) if (bytes.length > 0) bytes[at % bytes.length] = value;
        return bytes;
      });
    fc.assert(
      fc.property(fc.oneof(overwritten, fc.uint8Array({ maxLength: 300 })), (bytes) => {
        expect(typeof hasSps(bytes)).toBe('boolean');
        const level = spsLevel(bytes);
        if (level !== undefined) expect(Number.isInteger(level) && level >= 0 && level <= 255).toBe(true);
      }),
      fuzzRuns(),
    );
  });
});
