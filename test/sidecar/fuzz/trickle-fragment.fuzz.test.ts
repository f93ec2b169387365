// trickleCandidates over what a hostile viewer can PATCH: fragments built from a model of their lines (so the
// expected candidates are known), the same with characters overwritten, and noise. What it accepts is also handed
// to a real libdatachannel PeerConnection's own candidate parser, which must take it (a PeerConnection without a
// remote description parses a candidate and then refuses it for that reason alone, and sends nothing anywhere).
import { isIP } from 'node:net';
import fc from 'fast-check';
import ndc from 'node-datachannel';
import { afterAll, describe, expect, it } from 'vitest';
import { trickleCandidates, type TrickledCandidate } from '../../../sidecar/src/webrtc/trickle-fragment.ts';
import { WhepError } from '../../../sidecar/src/webrtc/whep-error.ts';
import { FUZZ_TIMEOUT_MS, fuzzRuns } from './fuzz-runs.ts';

type AddressKind = 'ip' | 'mdns' | 'hostname';
interface CandidateModel {
  kind: 'candidate';
  address: string;
  addressKind: AddressKind;
  line: string;
}
type FragmentLine = CandidateModel | { kind: 'mid'; mid: string; usable: boolean } | { kind: 'other'; line: string };

const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const address: fc.Arbitrary<{ address: string; addressKind: AddressKind }> = fc.oneof(
  fc.oneof(ipv4, ipv6).map((a) => ({ address: a, addressKind: 'ip' as const })),
  fc.uuid().map((u) => ({ address: `${u}.local`, addressKind: 'mdns' as const })),
  fc.domain().map((d) => ({ address: d, addressKind: isIP(d) === 0 ? ('hostname' as const) : ('ip' as const) })),
);
const extensions = fc.array(
  fc.oneof(
    fc.nat({ max: 9 }).map((g) => `generation ${String(g)}`),
    fc.constantFrom('network-cost 999', 'network-id 1', 'tcptype active', 'ufrag Rn0Y'),
    fc.tuple(ipv4, fc.nat({ max: 65_535 })).map(([a, p]) => `raddr ${a} rport ${String(p)}`),
  ),
  { maxLength: 3 },
);
const candidate: fc.Arbitrary<CandidateModel> = fc
  .record({
    foundation: fc.stringMatching(/^[A-Za-z0-9+/]{1,32}$/),
    component: fc.integer({ min: 1, max: 2 }),
    transport: fc.constantFrom('udp', 'UDP', 'tcp'),
    priority: fc.integer({ min: 0, max: 0xffff_ffff }),
    address,
    port: fc.nat({ max: 65_535 }),
    type: fc.constantFrom('host', 'srflx', 'prflx', 'relay'),
    extensions,
  })
  .map((c) => ({
    kind: 'candidate' as const,
    ...c.address,
    line: [
      `a=candidate:${c.foundation}`,
      c.component,
      c.transport,
      c.priority,
      c.address.address,
      c.port,
      'typ',
      c.type,
      ...c.extensions,
    ].join(' '),
  }));
const line: fc.Arbitrary<FragmentLine> = fc.oneof(
  { arbitrary: candidate, weight: 4 },
  fc.constantFrom('0', '1', 'video').map((mid) => ({ kind: 'mid' as const, mid, usable: true })),
  fc.string({ maxLength: 40 }).map((mid) => ({
    kind: 'mid' as const,
    mid,
    usable: /^[A-Za-z0-9_-]{1,32}$/.test(mid),
  })),
  fc
    .constantFrom('a=ice-options:trickle', 'a=end-of-candidates', 'm=audio 9 RTP/AVP 0', 'a=group:BUNDLE 0 1', '')
    .map((l) => ({ kind: 'other' as const, line: l })),
);
const fragment = fc.array(line, { maxLength: 10 });

function textOf(lines: FragmentLine[]): string {
  return lines.map((l) => (l.kind === 'mid' ? `a=mid:${l.mid}` : l.line)).join('\r\n');
}

/** What the fragment should give: each IP candidate with the mid before it; an mDNS one skipped; else a refusal. */
function expectedOf(lines: FragmentLine[]): TrickledCandidate[] | 'refused' {
  const result: TrickledCandidate[] = [];
  let mid: string | undefined;
  for (const l of lines) {
    if (l.kind === 'mid') {
      if (!l.usable) return 'refused';
      mid = l.mid;
    } else if (l.kind === 'candidate') {
      if (mid === undefined || l.addressKind === 'hostname' || l.line.length > 512) return 'refused';
      if (l.addressKind === 'ip') result.push({ candidate: l.line.slice(2), mid });
    }
  }
  return result;
}

const pc = new ndc.PeerConnection('fuzz', { iceServers: [] });
afterAll(() => {
  pc.close();
});

/** libdatachannel's own parser takes the candidate (it then refuses it only for want of a remote description). */
function libdatachannelParses(c: TrickledCandidate): boolean {
  try {
    pc.addRemoteCandidate(c.candidate, c.mid);
    return true;
  } catch (error) {
    return !String(error).includes('Invalid candidate format');
  }
}

function readSafely(text: string): TrickledCandidate[] | WhepError {
  let result: TrickledCandidate[] | WhepError;
  try {
    result = trickleCandidates(text);
  } catch (error) {
    expect(error).toBeInstanceOf(WhepError);
    result = error as WhepError;
  }
  if (result instanceof WhepError) {
    expect(result.status).toBe(400);
    expect(result.message).toMatch(/^[a-zA-Z0-9 =.]+$/);
    return result;
  }
  for (const c of result) {
    expect(c.candidate).toMatch(/^candidate:[\x21-\x7e][\x20-\x7e]{0,508}$/);
    expect(isIP(c.candidate.split(' ')[4] ?? '')).not.toBe(0);
    expect(c.mid).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
    expect(libdatachannelParses(c)).toBe(true);
  }
  return result;
}

describe('trickleCandidates under fuzzing', { timeout: FUZZ_TIMEOUT_MS }, () => {
  it('gives the IP candidates of a fragment built from a model, skips mDNS names, refuses the rest', () => {
    fc.assert(
      fc.property(fragment, fc.constantFrom('\r\n', '\n'), (lines, newline) => {
        const result = readSafely(textOf(lines).replaceAll('\r\n', newline));
        const expected = expectedOf(lines);
        if (expected === 'refused') expect(result).toBeInstanceOf(WhepError);
        else expect(result).toEqual(expected);
      }),
      fuzzRuns(),
    );
  });

  it('never throws anything but a refusal, and passes only candidates libdatachannel parses, for mangled fragments and noise', () => {
    const mangled = fc
      .tuple(
        fragment,
        fc.array(fc.tuple(fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 })), {
          minLength: 1,
          maxLength: 5,
        }),
      )
      .map(([lines, writes]) => {
        let text = textOf(lines);
        for (const [at, chars] of writes) {
          const i = at % (text.length + 1);
          text = text.slice(0, i) + chars + text.slice(i + 1);
        }
        return text;
      });
    fc.assert(
      fc.property(fc.oneof(mangled, fc.string({ unit: 'binary', maxLength: 600 })), (text) => {
        readSafely(text);
      }),
      fuzzRuns(),
    );
  });
});
