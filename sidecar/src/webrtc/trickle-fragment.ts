// Reads a viewer's trickle-ICE fragment (RFC 8840, application/trickle-ice-sdpfrag) into the candidates to hand
// to libdatachannel. Each candidate line is checked against RFC 8839's grammar first: libdatachannel throws on a
// malformed one (which would be a 500) and resolves a host name in one with a DNS lookup the viewer chose, so
// only IP addresses pass. A browser's mDNS name (<uuid>.local, which libdatachannel cannot resolve) is skipped
// rather than refused: browsers send them in ordinary use. Anything else is a WhepError 400 naming the problem.

import { isIP } from 'node:net';
import { WhepError } from './whep-error.ts';

export interface TrickledCandidate {
  /** The attribute without its "a=" ("candidate:..."), as libdatachannel takes it. */
  candidate: string;
  mid: string;
}

const MAX_LINE = 512;
const MID = /^[A-Za-z0-9_-]{1,32}$/;
const FOUNDATION = /^[A-Za-z0-9+/]{1,32}$/;
const TYPES = new Set(['host', 'srflx', 'prflx', 'relay']);
const TOKEN = /^[\x21-\x7e]{1,256}$/;
const MDNS_NAME = /^[0-9a-f-]{1,64}\.local$/i;

function isInteger(text: string, max: number, min = 0): boolean {
  if (!/^\d{1,10}$/.test(text)) return false;
  const value = Number(text);
  return value >= min && value <= max;
}

/** The address of a candidate attribute ("candidate:..."), checked with the rest; a WhepError 400 says what is wrong. */
function checkedAddress(attribute: string): string {
  const fields = attribute.slice('candidate:'.length).split(' ');
  const [foundation = '', component = '', transport = '', priority = '', address = '', port = '', typ, type = ''] =
    fields;
  const refuse = (problem: string): never => {
    throw new WhepError(400, problem);
  };
  if (!FOUNDATION.test(foundation)) refuse('a candidate has no valid foundation');
  if (!isInteger(component, 256, 1)) refuse('a candidate has no valid component id');
  if (!/^(udp|tcp)$/i.test(transport)) refuse('a candidate transport must be UDP or TCP');
  if (!isInteger(priority, 0xffff_ffff)) refuse('a candidate has no valid priority');
  if (!isInteger(port, 65_535)) refuse('a candidate has no valid port');
  if (typ !== 'typ' || !TYPES.has(type)) refuse('a candidate has no valid type');
  const extensions = fields.slice(8);
  if (extensions.length % 2 !== 0 || !extensions.every((token) => TOKEN.test(token)))
    refuse('a candidate extension is malformed');
  for (let i = 0; i < extensions.length; i += 2) {
    const value = extensions[i + 1] ?? '';
    if (extensions[i] === 'raddr' && isIP(value) === 0 && !MDNS_NAME.test(value))
      refuse('a candidate related address must be an IP address');
    if (extensions[i] === 'rport' && !isInteger(value, 65_535)) refuse('a candidate related port is not valid');
  }
  if (isIP(address) === 0 && !MDNS_NAME.test(address)) refuse('a candidate address must be an IP address');
  return address;
}

/** The candidates of a fragment, each with the mid it follows; throws a WhepError 400 for a malformed one. */
export function trickleCandidates(fragment: string): TrickledCandidate[] {
  const result: TrickledCandidate[] = [];
  let mid: string | undefined;
  for (const line of fragment.split(/\r?\n/)) {
    if (line.startsWith('a=mid:')) {
      mid = line.slice('a=mid:'.length);
      if (!MID.test(mid)) throw new WhepError(400, 'an a=mid line has no usable mid');
    } else if (line.startsWith('a=candidate:')) {
      if (mid === undefined) throw new WhepError(400, 'a candidate comes before any a=mid line');
      if (line.length > MAX_LINE) throw new WhepError(400, 'a candidate line is longer than 512 bytes');
      const attribute = line.slice(2);
      if (!MDNS_NAME.test(checkedAddress(attribute))) result.push({ candidate: attribute, mid });
    }
  }
  return result;
}
