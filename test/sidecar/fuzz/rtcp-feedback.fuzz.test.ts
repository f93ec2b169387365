// readRtcpFeedback over what a hostile viewer can send as RTCP: compounds built field by field (so the expected
// reading is known exactly), the same cut short or with bytes overwritten, and plain noise.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readRtcpFeedback, type RtcpFeedback } from '../../../sidecar/src/webrtc/rtcp-feedback.ts';
import { FUZZ_TIMEOUT_MS, fuzzRuns } from './fuzz-runs.ts';

interface ReportBlock {
  fractionLost: number;
  jitter: number;
}

type RtcpPart =
  | { kind: 'pli' | 'fir' | 'sdes' | 'bye' }
  | { kind: 'nack'; items: { id: number; mask: number }[] }
  | { kind: 'remb'; exponent: number; mantissa: number; ssrcs: number }
  | { kind: 'sr' | 'rr'; blocks: ReportBlock[] }
  | { kind: 'other-psfb'; format: number; words: number }
  | { kind: 'twcc'; words: number };

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const block = fc.record({ fractionLost: fc.integer({ min: 0, max: 255 }), jitter: u32 });
const part: fc.Arbitrary<RtcpPart> = fc.oneof(
  fc.constantFrom<RtcpPart>({ kind: 'pli' }, { kind: 'fir' }, { kind: 'sdes' }, { kind: 'bye' }),
  fc.record({
    kind: fc.constant('nack' as const),
    items: fc.array(fc.record({ id: fc.integer({ min: 0, max: 0xffff }), mask: fc.integer({ min: 0, max: 0xffff }) }), {
      minLength: 1,
      maxLength: 4,
    }),
  }),
  fc.record({
    kind: fc.constant('remb' as const),
    exponent: fc.integer({ min: 0, max: 63 }),
    mantissa: fc.integer({ min: 0, max: 0x3_ffff }),
    ssrcs: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({ kind: fc.constantFrom('sr' as const, 'rr' as const), blocks: fc.array(block, { maxLength: 3 }) }),
  fc.record({
    kind: fc.constant('other-psfb' as const),
    format: fc.constantFrom(2, 3, 5, 6, 7, 14, 31),
    words: fc.integer({ min: 0, max: 4 }),
  }),
  fc.record({ kind: fc.constant('twcc' as const), words: fc.integer({ min: 1, max: 6 }) }),
);

/** One RTCP packet: version 2, the count or format, the type, the length in words minus one. */
function packet(countOrFormat: number, type: number, body: number[]): number[] {
  const words = body.length / 4;
  return [0x80 | countOrFormat, type, (words >> 8) & 0xff, words & 0xff, ...body];
}

function word(value: number): number[] {
  return [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

function encodePart(p: RtcpPart): number[] {
  const ssrcs = [...word(0x1234_5678), ...word(0x9abc_def0)];
  const blocks = (list: ReportBlock[]): number[] =>
    list.flatMap((b) => [...word(1), b.fractionLost, 0, 0, 3, ...word(7), ...word(b.jitter), ...word(0), ...word(0)]);
  switch (p.kind) {
    case 'pli':
      return packet(1, 206, ssrcs);
    case 'fir':
      return packet(4, 206, [...ssrcs, ...word(0x9abc_def0), 5, 0, 0, 0]);
    case 'nack':
      return packet(1, 205, [
        ...ssrcs,
        ...p.items.flatMap((item) => [item.id >> 8, item.id & 0xff, item.mask >> 8, item.mask & 0xff]),
      ]);
    case 'sdes':
      return packet(1, 202, [...word(1), 1, 2, 0x61, 0x62, 0, 0, 0, 0]);
    case 'bye':
      return packet(1, 203, word(1));
    case 'remb': {
      const estimate = [p.ssrcs, (p.exponent << 2) | (p.mantissa >> 16), (p.mantissa >> 8) & 0xff, p.mantissa & 0xff];
      const fci = [0x52, 0x45, 0x4d, 0x42, ...estimate, ...Array.from({ length: p.ssrcs }, () => word(2)).flat()];
      return packet(15, 206, [...word(0x1234_5678), ...word(0), ...fci]);
    }
    case 'sr':
      return packet(p.blocks.length, 200, [
        ...word(1),
        ...word(2),
        ...word(3),
        ...word(4),
        ...word(5),
        ...word(6),
        ...blocks(p.blocks),
      ]);
    case 'rr':
      return packet(p.blocks.length, 201, [...word(1), ...blocks(p.blocks)]);
    case 'other-psfb':
      return packet(p.format, 206, [...ssrcs, ...Array.from({ length: p.words * 4 }, (_, i) => i)]);
    case 'twcc':
      return packet(15, 205, [...ssrcs, ...Array.from({ length: p.words * 4 }, (_, i) => 0xff - i)]);
  }
}

/**
 * What the parts say, read as the sidecar means to: the latest REMB, the latest report's first block, every
 * packet the NACKs name (each item's packet id, then those its bitmask marks).
 */
function expectedReading(parts: RtcpPart[]): RtcpFeedback {
  const expected: RtcpFeedback = { pictureLost: parts.some((p) => p.kind === 'pli' || p.kind === 'fir') };
  for (const p of parts) {
    if (p.kind === 'remb') expected.rembBps = p.mantissa * 2 ** p.exponent;
    if (p.kind === 'nack')
      for (const { id, mask } of p.items) {
        (expected.nackedSequences ??= []).push(id);
        for (let bit = 0; bit < 16; bit++)
          if (mask & (1 << bit)) expected.nackedSequences.push((id + bit + 1) & 0xffff);
      }
    if ((p.kind === 'sr' || p.kind === 'rr') && p.blocks[0]) {
      expected.fractionLost = p.blocks[0].fractionLost / 256;
      expected.jitter = p.blocks[0].jitter;
      expected.highestSequence = 7;
    }
  }
  return expected;
}

function expectSane(feedback: RtcpFeedback): void {
  expect(typeof feedback.pictureLost).toBe('boolean');
  if (feedback.rembBps !== undefined) expect(feedback.rembBps).toBeGreaterThanOrEqual(0);
  if (feedback.rembBps !== undefined) expect(Number.isFinite(feedback.rembBps)).toBe(true);
  if (feedback.fractionLost !== undefined) expect(feedback.fractionLost >= 0 && feedback.fractionLost < 1).toBe(true);
  if (feedback.jitter !== undefined) expect(Number.isInteger(feedback.jitter) && feedback.jitter >= 0).toBe(true);
  for (const sequence of feedback.nackedSequences ?? []) expect(sequence >= 0 && sequence <= 0xffff).toBe(true);
}

const compound = fc.array(part, { minLength: 1, maxLength: 8 });

describe('readRtcpFeedback under fuzzing', { timeout: FUZZ_TIMEOUT_MS }, () => {
  it('reads every well-formed compound as its parts say', () => {
    fc.assert(
      fc.property(compound, (parts) => {
        const bytes = Uint8Array.from(parts.flatMap(encodePart));
        expect(readRtcpFeedback(bytes)).toEqual(expectedReading(parts));
      }),
      fuzzRuns(),
    );
  });

  it('reads a compound cut anywhere as the packets wholly before the cut', () => {
    fc.assert(
      fc.property(compound, fc.nat(), (parts, at) => {
        const encoded = parts.map(encodePart);
        const cut = at % (encoded.flat().length + 1);
        let whole = 0;
        for (let length = 0; whole < encoded.length; whole++) {
          length += encoded[whole]?.length ?? 0;
          if (length > cut) break;
        }
        const bytes = Uint8Array.from(encoded.flat().slice(0, cut));
        expect(readRtcpFeedback(bytes)).toEqual(expectedReading(parts.slice(0, whole)));
      }),
      fuzzRuns(),
    );
  });

  it('never throws and answers in range for a compound with bytes overwritten, or for noise', () => {
    const overwritten = fc
      .tuple(compound, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }))
      .map(([parts, writes]) => {
        const bytes = Uint8Array.from(parts.flatMap(encodePart));
        for (const [at, value] of writes) bytes[at % bytes.length] = value;
        return bytes;
      });
    fc.assert(
      fc.property(fc.oneof(overwritten, fc.uint8Array({ maxLength: 256 })), (bytes) => {
        // A view into a larger buffer, as libdatachannel hands packets over: offsets must be the view's own.
        const backing = new Uint8Array(bytes.length + 8).fill(0xee);
        backing.set(bytes, 4);
        expectSane(readRtcpFeedback(backing.subarray(4, 4 + bytes.length)));
      }),
      fuzzRuns(),
    );
  });
});
