// The player's side of the data channel (cloudphone.viewer in schemas/fbs): reads what the sidecar sends,
// builds what the player sends. The sidecar verifies everything it receives; the player only reads
// messages from the sidecar it connected to.

import { Builder, ByteBuffer } from 'flatbuffers';
import {
  Body,
  Clipboard,
  FrameTiming,
  KeyframeRequest,
  Message,
  Ping,
  Pong,
  RenderReport,
  Role,
  Session,
  Stats,
} from '../../generated/ts/fbs/viewer_generated.ts';
import type { Rotation, TouchAction } from '../../generated/ts/fbs/input_generated.ts';
import { Key, Rotate, Scroll, Text, Touch } from '../../generated/ts/fbs/input_generated.ts';

export type SidecarMessage =
  | {
      kind: 'session';
      control: boolean;
      width: number;
      height: number;
      /** How the phone is turned (Android's Surface.ROTATION_*, 0 to 3); the picture is upright. */
      rotation: number;
      /** Viewers watching, this one included, and how many of them may drive the phone. */
      viewers: number;
      controllers: number;
    }
  | { kind: 'clipboard'; text: string }
  | { kind: 'ping'; id: number; sentUs: bigint }
  | { kind: 'frame-timing'; rtpTimestamp: number; captureUs: number };

export function readSidecarMessage(bytes: Uint8Array): SidecarMessage | undefined {
  const message = Message.getRootAsMessage(new ByteBuffer(bytes));
  switch (message.bodyType()) {
    case Body.Session: {
      const session = message.body(new Session()) as Session;
      return {
        kind: 'session',
        control: session.role() === Role.Control,
        width: session.width(),
        height: session.height(),
        rotation: session.rotation(),
        viewers: session.viewers(),
        controllers: session.controllers(),
      };
    }
    case Body.Clipboard: {
      const clipboard = message.body(new Clipboard()) as Clipboard;
      return { kind: 'clipboard', text: clipboard.text() ?? '' };
    }
    case Body.Ping: {
      const ping = message.body(new Ping()) as Ping;
      return { kind: 'ping', id: ping.id(), sentUs: ping.sentUs() };
    }
    case Body.FrameTiming: {
      const timing = message.body(new FrameTiming()) as FrameTiming;
      return { kind: 'frame-timing', rtpTimestamp: timing.rtpTimestamp(), captureUs: Number(timing.captureTimeUs()) };
    }
    default:
      return undefined;
  }
}

export interface PlayerStats {
  framesDecoded: number;
  framesDropped: number;
  fps: number;
  jitterMs: number;
  packetsLost: number;
  rttMs: number;
  bitrateKbps: number;
}

export class PlayerMessages {
  readonly #b = new Builder(256);

  pong(id: number, sentUs: bigint, viewerTimeUs: number): Uint8Array {
    return this.#finish(Body.Pong, Pong.createPong(this.#start(), id, sentUs, viewerTimeUs));
  }

  renderReport(rtpTimestamp: number, renderedAtUs: number): Uint8Array {
    return this.#finish(Body.RenderReport, RenderReport.createRenderReport(this.#start(), rtpTimestamp, renderedAtUs));
  }

  keyframeRequest(): Uint8Array {
    return this.#finish(Body.KeyframeRequest, KeyframeRequest.createKeyframeRequest(this.#start()));
  }

  stats(s: PlayerStats): Uint8Array {
    const b = this.#start();
    const body = Stats.createStats(
      b,
      s.framesDecoded,
      s.framesDropped,
      s.fps,
      s.jitterMs,
      s.packetsLost,
      s.rttMs,
      s.bitrateKbps,
    );
    return this.#finish(Body.Stats, body);
  }

  touch(action: TouchAction, pointerId: number, x: number, y: number, pressure: number): Uint8Array {
    const body = Touch.createTouch(this.#start(), action, pointerId, x, y, pressure);
    return this.#finish(Body.cloudphone_input_Touch, body);
  }

  key(down: boolean, keycode: number, repeat: number, metaState: number): Uint8Array {
    const body = Key.createKey(this.#start(), down ? 0 : 1, keycode, repeat, metaState);
    return this.#finish(Body.cloudphone_input_Key, body);
  }

  text(text: string): Uint8Array {
    const b = this.#start();
    const body = Text.createText(b, b.createString(text));
    return this.#finish(Body.cloudphone_input_Text, body);
  }

  /** Asks the phone to turn to this rotation (0 to 3); it may, or may not. */
  rotate(rotation: number): Uint8Array {
    const body = Rotate.createRotate(this.#start(), (rotation & 3) as Rotation);
    return this.#finish(Body.cloudphone_input_Rotate, body);
  }

  scroll(x: number, y: number, horizontal: number, vertical: number): Uint8Array {
    return this.#finish(Body.cloudphone_input_Scroll, Scroll.createScroll(this.#start(), x, y, horizontal, vertical));
  }

  #start(): Builder {
    this.#b.clear();
    return this.#b;
  }

  #finish(type: Body, body: number): Uint8Array {
    this.#b.finish(Message.createMessage(this.#b, type, body), 'CPVW');
    // A copy: RTCDataChannel.send may hold the bytes after the builder is reused.
    return this.#b.asUint8Array().slice();
  }
}
