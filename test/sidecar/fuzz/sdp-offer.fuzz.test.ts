// readOffer over what a hostile viewer can POST as an offer: offers built from a model of their H.264 formats (so
// the choice is known exactly), and a real Chromium offer (test/fixtures/sdp) with lines deleted, repeated, moved
// or replaced by hostile ones.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readOffer, type OfferSummary } from '../../../sidecar/src/webrtc/sdp-offer.ts';
import { WhepError } from '../../../sidecar/src/webrtc/whep-error.ts';
import { FUZZ_TIMEOUT_MS, fuzzRuns } from './fuzz-runs.ts';

const CHROMIUM_OFFER = readFileSync(new URL('../../fixtures/sdp/chromium-offer.sdp', import.meta.url), 'utf8');
const CHROMIUM_LINES = CHROMIUM_OFFER.split('\r\n').filter((line) => line.length > 0);

interface Format {
  payloadType: number;
  codec: string;
  packetizationMode?: number;
  profileLevelId?: string;
  /** Whether the payload type is in the m=video line's list, as it must be to be used. */
  listed: boolean;
}

const hex = (length: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });
const profileLevelId = fc.oneof(
  fc.constantFrom('42e01f', '42c01f', '42001f', '4d001f', '640c1f', 'f4001f', '42e034'),
  hex(6),
);
const format: fc.Arbitrary<Format> = fc.record(
  {
    payloadType: fc.oneof(fc.integer({ min: 35, max: 127 }), fc.integer({ min: 0, max: 999 })),
    codec: fc.constantFrom('H264', 'h264', 'VP8', 'VP9', 'AV1', 'rtx', 'red'),
    packetizationMode: fc.constantFrom(0, 1, 2),
    profileLevelId,
    listed: fc.boolean(),
  },
  { requiredKeys: ['payloadType', 'codec', 'listed'] },
);

interface OfferModel {
  formats: Format[];
  mid: string;
  direction: string;
  dataChannel: boolean;
  newline: string;
}

const offerModel: fc.Arbitrary<OfferModel> = fc.record({
  formats: fc.uniqueArray(format, { selector: (f) => f.payloadType, maxLength: 8 }),
  mid: fc.oneof(fc.constantFrom('0', 'video', 'a_b-c'), fc.string({ maxLength: 40 })),
  direction: fc.constantFrom('a=recvonly', 'a=sendrecv', 'a=sendonly', 'a=inactive'),
  dataChannel: fc.boolean(),
  newline: fc.constantFrom('\r\n', '\n'),
});

function offerOf(model: OfferModel): string {
  const listed = model.formats.filter((f) => f.listed).map((f) => String(f.payloadType));
  const lines = ['v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0'];
  lines.push(`m=video 9 UDP/TLS/RTP/SAVPF ${listed.join(' ')}`.trimEnd(), `a=mid:${model.mid}`, model.direction);
  for (const f of model.formats) {
    lines.push(`a=rtpmap:${String(f.payloadType)} ${f.codec}/90000`);
    const params = [
      f.packetizationMode === undefined ? undefined : `packetization-mode=${String(f.packetizationMode)}`,
      f.profileLevelId === undefined ? undefined : `profile-level-id=${f.profileLevelId}`,
    ].filter((p) => p !== undefined);
    if (params.length > 0) lines.push(`a=fmtp:${String(f.payloadType)} ${params.join(';')}`);
  }
  if (model.dataChannel) lines.push('m=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=mid:1');
  return lines.join(model.newline) + model.newline;
}

/** The format the sidecar should answer with: usable H.264 (listed, a real payload type, packetization mode 1), constrained baseline first. */
function expectedFormat(model: OfferModel): Format | undefined {
  const rank = (f: Format): number => {
    const profile = f.profileLevelId ?? '42001f';
    if (profile.startsWith('42e0') || profile.startsWith('42c0')) return 3;
    return profile.startsWith('4200') ? 2 : 1;
  };
  const usable = model.formats.filter(
    (f) => f.codec.toUpperCase() === 'H264' && f.packetizationMode === 1 && f.listed && f.payloadType <= 127,
  );
  return usable.sort((a, b) => rank(b) - rank(a))[0];
}

/** What every answer must satisfy, whatever the offer: a refusal with a status and a fixed reason, or a summary fit to build an answer from. */
function readSafely(offer: string): OfferSummary | WhepError {
  let result: OfferSummary | WhepError;
  try {
    result = readOffer(offer, 0x28);
  } catch (error) {
    expect(error).toBeInstanceOf(WhepError);
    result = error as WhepError;
  }
  if (result instanceof WhepError) {
    expect([400, 406]).toContain(result.status);
    // The reason is the sidecar's own words, never text from the offer (it goes back in the response).
    expect(result.message).toMatch(/^[a-zA-Z0-9 .,=:()-]+$/);
    expect(result.message.length).toBeLessThan(120);
    return result;
  }
  expect(result.videoMid).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
  expect(result.h264PayloadType).toBeGreaterThanOrEqual(0);
  expect(result.h264PayloadType).toBeLessThanOrEqual(127);
  expect(result.h264Fmtp).toMatch(/^profile-level-id=[0-9a-fA-F]{6};packetization-mode=1;level-asymmetry-allowed=1$/);
  const videoLine = offer.split(/\r?\n/).find((line) => line.startsWith('m=video '));
  expect(videoLine?.split(' ').slice(3)).toContain(String(result.h264PayloadType));
  return result;
}

/** A line a hostile offer might carry, about the parts the sidecar reads. */
const hostileLine = fc.oneof(
  fc
    .tuple(fc.integer({ min: -1, max: 1000 }), fc.constantFrom('H264', 'VP8', 'H264/90000 extra', ''))
    .map(([pt, codec]) => `a=rtpmap:${String(pt)} ${codec}/90000`),
  fc
    .tuple(fc.integer({ min: 0, max: 300 }), fc.string({ maxLength: 60 }))
    .map(([pt, p]) => `a=fmtp:${String(pt)} ${p}`),
  fc.string({ maxLength: 40 }).map((mid) => `a=mid:${mid}`),
  fc.constantFrom('m=video 9 UDP/TLS/RTP/SAVPF 102', 'm=video', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel'),
  fc.constantFrom('a=sendonly', 'a=inactive', 'a=recvonly', 'v=0', '\r', '\u0000', 'a=fmtp:102', 'a=rtpmap:102'),
  fc.string({ maxLength: 80 }),
);

type Edit =
  | { op: 'delete' | 'repeat' | 'move'; at: number; to: number }
  | { op: 'replace' | 'insert'; at: number; line: string };
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constantFrom('delete' as const, 'repeat' as const, 'move' as const), at: fc.nat(), to: fc.nat() }),
  fc.record({ op: fc.constantFrom('replace' as const, 'insert' as const), at: fc.nat(), line: hostileLine }),
);

function edited(lines: string[], edits: Edit[]): string {
  const result = [...lines];
  for (const e of edits) {
    const at = e.at % (result.length + 1);
    const line = result[at] ?? '';
    if ('line' in e) result.splice(at, e.op === 'replace' ? 1 : 0, e.line);
    else if (e.op === 'delete') result.splice(at, 1);
    else if (e.op === 'repeat') result.splice(at, 0, line);
    else result.splice(e.to % (result.length + 1), 0, ...result.splice(at, 1));
  }
  return result.join('\r\n') + '\r\n';
}

describe('readOffer under fuzzing', { timeout: FUZZ_TIMEOUT_MS }, () => {
  it('answers the real Chromium offer with its constrained-baseline H.264 and its data channel', () => {
    expect(readOffer(CHROMIUM_OFFER, 0x28)).toEqual({
      videoMid: '0',
      h264PayloadType: 108,
      h264Fmtp: 'profile-level-id=42e028;packetization-mode=1;level-asymmetry-allowed=1',
      hasDataChannel: true,
    });
  });

  it('picks the format an offer built from a model should get, or refuses it for the right reason', () => {
    fc.assert(
      fc.property(offerModel, (model) => {
        const result = readSafely(offerOf(model));
        const midUsable = /^[A-Za-z0-9_-]{1,32}$/.test(model.mid);
        const directionUsable = model.direction === 'a=recvonly' || model.direction === 'a=sendrecv';
        const expected = expectedFormat(model);
        if (!midUsable || !directionUsable) expect(result).toMatchObject({ status: 400 });
        else if (!expected) expect(result).toMatchObject({ status: 406 });
        else
          expect(result).toMatchObject({
            videoMid: model.mid,
            h264PayloadType: expected.payloadType,
            hasDataChannel: model.dataChannel,
          });
      }),
      fuzzRuns(),
    );
  });

  it('never throws anything but a refusal, and answers only with what the offer allows, for a mangled Chromium offer', () => {
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 12 }), (edits) => {
        readSafely(edited(CHROMIUM_LINES, edits));
      }),
      fuzzRuns(),
    );
  });

  it('never throws anything but a refusal for noise after v=0', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 2000 }), (text) => {
        readSafely(`v=0\r\n${text}`);
      }),
      fuzzRuns(),
    );
  });
});
