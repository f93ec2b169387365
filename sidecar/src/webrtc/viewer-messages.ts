// Builds the data-channel messages the sidecar sends to a viewer (cloudphone.viewer in schemas/fbs). One
// builder, reused: FrameTiming goes out with every frame and must not allocate a builder each time.
// What viewers send is read natively (readViewerMessage in native.ts), never here.

import { Builder } from 'flatbuffers';
import {
  Body,
  Clipboard,
  FrameTiming,
  Message,
  Ping,
  Role,
  Session,
} from '../../../generated/ts/fbs/viewer_generated.ts';
import type { Rotation } from '../../../generated/ts/fbs/input_generated.ts';
import type { ViewerRole } from './viewer-tokens.ts';

/** The phone's screen as viewers see it: the upright picture's size, and how the phone is turned (0 to 3). */
export interface Screen {
  width: number;
  height: number;
  rotation: number;
}

/** Who watches the phone: every viewer, and those with the control role. */
export interface Audience {
  viewers: number;
  controllers: number;
}

export class ViewerMessageWriter {
  readonly #builder = new Builder(128);

  session(role: ViewerRole, screen: Screen, audience: Audience): Uint8Array {
    const b = this.#start();
    const body = Session.createSession(
      b,
      role === 'control' ? Role.Control : Role.View,
      screen.width,
      screen.height,
      screen.rotation as Rotation,
      audience.viewers,
      audience.controllers,
    );
    return this.#finish(Body.Session, body);
  }

  clipboard(text: string): Uint8Array {
    const b = this.#start();
    return this.#finish(Body.Clipboard, Clipboard.createClipboard(b, b.createString(text)));
  }

  ping(id: number, sentUs: number): Uint8Array {
    const b = this.#start();
    return this.#finish(Body.Ping, Ping.createPing(b, id, BigInt(Math.round(sentUs))));
  }

  frameTiming(rtpTimestamp: number, captureUs: number): Uint8Array {
    const b = this.#start();
    return this.#finish(
      Body.FrameTiming,
      FrameTiming.createFrameTiming(b, rtpTimestamp, BigInt(Math.round(captureUs))),
    );
  }

  #start(): Builder {
    this.#builder.clear();
    return this.#builder;
  }

  /** A view of the builder's bytes, valid until the next message is built: send it at once. */
  #finish(type: Body, body: number): Uint8Array {
    const b = this.#builder;
    b.finish(Message.createMessage(b, type, body), 'CPVW');
    return b.asUint8Array();
  }
}
