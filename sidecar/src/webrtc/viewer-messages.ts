// Builds the data-channel messages the sidecar sends to a viewer (cloudphone.viewer in schemas/fbs). One
// builder, reused: FrameTiming goes out with every frame and must not allocate a builder each time.
// What viewers send is read natively (readViewerMessage in native.ts), never here.

import { Builder } from 'flatbuffers';
import { Body, FrameTiming, Message, Ping, Role, Session } from '../../../generated/ts/fbs/viewer_generated.ts';
import type { ViewerRole } from './viewer-tokens.ts';

export class ViewerMessageWriter {
  readonly #builder = new Builder(128);

  session(role: ViewerRole, width: number, height: number): Uint8Array {
    const b = this.#start();
    const body = Session.createSession(b, role === 'control' ? Role.Control : Role.View, width, height);
    return this.#finish(Body.Session, body);
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
