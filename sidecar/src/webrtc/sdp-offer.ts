// Reads the parts of a viewer's SDP offer the answer depends on: the video m-section's mid and the H.264
// payload type to send with, and the data channel. Picks packetization-mode=1 (what the packetizer makes)
// and prefers constrained baseline, the profile x264 ultrafast produces. Anything else is a WhepError 400
// or 406, with a reason that names the problem, never the offer's text.

import { WhepError } from './whep-error.ts';

export interface OfferSummary {
  videoMid: string;
  h264PayloadType: number;
  /** The fmtp the answer uses for that payload type. */
  h264Fmtp: string;
  /** The viewer offered an SCTP data channel (needed for input and latency reports). */
  hasDataChannel: boolean;
}

// RTP's payload type is 7 bits.
const MAX_PAYLOAD_TYPE = 127;

interface H264Format {
  payloadType: number;
  fmtp: string;
}

function sections(sdp: string): string[][] {
  const lines = sdp.split(/\r?\n/).filter((line) => line.length > 0);
  const result: string[][] = [[]];
  for (const line of lines) {
    if (line.startsWith('m=')) result.push([]);
    result[result.length - 1]?.push(line);
  }
  return result;
}

/** The payload types the m= line lists (only those may be used), each a real one (0-127). */
function listedPayloadTypes(mLine: string): Set<number> {
  const formats = mLine.split(' ').slice(3);
  return new Set(
    formats
      .filter((f) => /^\d{1,3}$/.test(f))
      .map(Number)
      .filter((pt) => pt <= MAX_PAYLOAD_TYPE),
  );
}

function h264Formats(section: string[]): H264Format[] {
  const listed = listedPayloadTypes(section[0] ?? '');
  const formats: H264Format[] = [];
  for (const line of section) {
    const rtpmap = /^a=rtpmap:(\d{1,3}) H264\/90000$/i.exec(line);
    if (!rtpmap?.[1] || !listed.has(Number(rtpmap[1]))) continue;
    const payloadType = Number(rtpmap[1]);
    const fmtpLine = section.find((l) => l.startsWith(`a=fmtp:${String(payloadType)} `));
    formats.push({ payloadType, fmtp: fmtpLine ? fmtpLine.slice(fmtpLine.indexOf(' ') + 1) : '' });
  }
  return formats;
}

function preference(format: H264Format): number {
  const fmtp = format.fmtp.toLowerCase();
  if (!fmtp.includes('packetization-mode=1')) return -1;
  const profile = /profile-level-id=([0-9a-f]{6})/.exec(fmtp)?.[1] ?? '42001f';
  if (profile.startsWith('42e0') || profile.startsWith('42c0')) return 3;
  if (profile.startsWith('4200')) return 2;
  return 1;
}

/**
 * profile-level-id with its level raised to the level of what is sent, when that is higher: the offer's
 * profile (what the viewer asked for) with a level that says the truth about the stream's size and rate.
 */
export function withLevel(profileLevelId: string, sentLevel: number | undefined): string {
  const offered = Number.parseInt(profileLevelId.slice(4, 6), 16);
  if (sentLevel === undefined || sentLevel <= offered || sentLevel > 0xff) return profileLevelId;
  return `${profileLevelId.slice(0, 4)}${sentLevel.toString(16).padStart(2, '0')}`;
}

/** Reads a viewer's offer; sentLevel is the H.264 level_idc of the stream now (its SPS), if known. */
export function readOffer(sdp: string, sentLevel?: number): OfferSummary {
  if (!sdp.startsWith('v=0')) throw new WhepError(400, 'the body is not an SDP offer');
  const media = sections(sdp).slice(1);
  const video = media.filter((section) => section[0]?.startsWith('m=video '));
  if (video.length !== 1 || !video[0]) throw new WhepError(400, 'the offer must have exactly one video section');
  const section = video[0];
  if (section.some((line) => line === 'a=sendonly' || line === 'a=inactive'))
    throw new WhepError(400, 'the video section must be recvonly or sendrecv');
  const mid = section.find((line) => line.startsWith('a=mid:'))?.slice(6);
  if (!mid || !/^[A-Za-z0-9_-]{1,32}$/.test(mid)) throw new WhepError(400, 'the video section has no usable mid');
  const best = h264Formats(section)
    .filter((format) => preference(format) >= 0)
    .sort((a, b) => preference(b) - preference(a))[0];
  if (!best) throw new WhepError(406, 'the offer has no H.264 with packetization-mode=1');
  const level = withLevel(/profile-level-id=([0-9a-f]{6})/i.exec(best.fmtp)?.[1] ?? '42e01f', sentLevel);
  return {
    videoMid: mid,
    h264PayloadType: best.payloadType,
    h264Fmtp: `profile-level-id=${level};packetization-mode=1;level-asymmetry-allowed=1`,
    hasDataChannel: media.some((m) => m[0]?.startsWith('m=application ') && m[0].includes('webrtc-datachannel')),
  };
}
