// One outgoing H.264 video track on a node-datachannel PeerConnection, as both a WHEP viewer's session and
// the WHIP publisher use it: the packetizer, sender reports and NACK answers run on libdatachannel's
// threads; nothing is sent before the track is open, and after it opens nothing before a keyframe (a
// decoder cannot start on anything else).

import { randomInt } from 'node:crypto';
import ndc from 'node-datachannel';
import type { AccessUnit } from '../native.ts';

// The largest RTP payload: with the headers, SRTP's tag and a TURN relay's, well under any path's MTU.
const MAX_FRAGMENT_BYTES = 1200;
// Packets kept for retransmission: a 1080p IDR at 8 Mbit/s is a few hundred packets, with room to spare.
const NACK_HISTORY_PACKETS = 2048;

export interface H264TrackOptions {
  mid: string;
  payloadType: number;
  fmtp: string;
}

export class H264Track {
  readonly #track: ndc.Track;
  readonly #rtpConfig: ndc.RtpPacketizationConfig;
  #open = false;
  #waitingForKeyframe = true;
  #sentBytes = 0;
  #sentPackets = 0;

  constructor(pc: ndc.PeerConnection, options: H264TrackOptions) {
    const ssrc = randomInt(1, 2 ** 31);
    const video = new ndc.Video(options.mid, 'SendOnly');
    video.addH264Codec(options.payloadType, options.fmtp);
    video.addSSRC(ssrc, 'cloudphone', 'cloudphone', 'screen');
    this.#track = pc.addTrack(video);
    this.#rtpConfig = new ndc.RtpPacketizationConfig(ssrc, 'cloudphone', options.payloadType, 90000);
    const packetizer = new ndc.H264RtpPacketizer('StartSequence', this.#rtpConfig, MAX_FRAGMENT_BYTES);
    packetizer.addToChain(new ndc.RtcpSrReporter(this.#rtpConfig));
    packetizer.addToChain(new ndc.RtcpNackResponder(NACK_HISTORY_PACKETS));
    this.#track.setMediaHandler(packetizer);
  }

  /** The track is open (DTLS done): the peer can take video and needs a keyframe first. */
  onOpen(callback: () => void): void {
    this.#track.onOpen(() => {
      this.#open = true;
      this.#waitingForKeyframe = true;
      callback();
    });
  }

  /** RTCP the media handlers did not consume: PLI, FIR, REMB, receiver reports. */
  onRtcp(callback: (packet: Buffer) => void): void {
    this.#track.onMessage(callback);
  }

  get open(): boolean {
    return this.#open;
  }

  /** Sends one picture at the given RTP timestamp; true when it went out (open, and a keyframe came first). */
  send(unit: AccessUnit, rtpTimestamp: number): boolean {
    if (!this.#open) return false;
    if (this.#waitingForKeyframe) {
      if (!unit.keyframe) return false;
      this.#waitingForKeyframe = false;
    }
    this.#rtpConfig.timestamp = rtpTimestamp;
    const sent = this.#track.sendMessageBinary(unit.data);
    if (sent) {
      this.#sentBytes += unit.data.byteLength;
      // Fragments of MAX_FRAGMENT_BYTES, and a packet of its own for each of the few small NAL units in front
      // (access unit delimiter, parameter sets): an estimate, within a few packets a picture.
      this.#sentPackets += Math.ceil(unit.data.byteLength / MAX_FRAGMENT_BYTES) + (unit.keyframe ? 3 : 1);
    }
    return sent;
  }

  /** Media sent since the last call, in bytes and (about) in RTP packets: for the bitrate estimate. */
  takeSent(): { bytes: number; packets: number } {
    const sent = { bytes: this.#sentBytes, packets: this.#sentPackets };
    this.#sentBytes = 0;
    this.#sentPackets = 0;
    return sent;
  }

  close(): void {
    this.#open = false;
    this.#track.close();
  }
}
