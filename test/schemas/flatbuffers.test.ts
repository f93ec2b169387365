// The FlatBuffers code generated for TypeScript and for C++ must speak the same bytes: the sidecar (TS)
// talks to viewers and, through the addon (C++), to phones. The C++ half is test/fixtures/fbs/interop.cpp.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as flatbuffers from 'flatbuffers';
import { beforeAll, describe, expect, it } from 'vitest';
import * as control from '../../generated/ts/fbs/control_generated.ts';
import { Touch, TouchAction } from '../../generated/ts/fbs/input_generated.ts';
import * as viewer from '../../generated/ts/fbs/viewer_generated.ts';

const root = join(import.meta.dirname, '../..');
const interop = join(root, '.cache/test-bin/fbs-interop');

function runInterop(mode: string, input?: Uint8Array): { status: number | null; stdout: Buffer } {
  const result = spawnSync(interop, [mode], { input: input ?? Buffer.alloc(0) });
  return { status: result.status, stdout: result.stdout };
}

function viewerTouch(): Uint8Array {
  const builder = new flatbuffers.Builder(64);
  const touch = Touch.createTouch(builder, TouchAction.Move, 2, 0.25, 0.75, 0.5);
  viewer.Message.finishMessageBuffer(
    builder,
    viewer.Message.createMessage(builder, viewer.Body.cloudphone_input_Touch, touch),
  );
  return builder.asUint8Array();
}

function controlFrameReady(): Uint8Array {
  const builder = new flatbuffers.Builder(64);
  control.FrameReady.startFrameReady(builder);
  control.FrameReady.addGeneration(builder, 3);
  control.FrameReady.addSlot(builder, 1);
  control.FrameReady.addSequence(builder, 123456789012n);
  control.FrameReady.addCaptureTimeNs(builder, 987654321987654321n);
  control.FrameReady.addDamage(builder, control.Rect.createRect(builder, 10, 20, 300, 400));
  const frame = control.FrameReady.endFrameReady(builder);
  control.Message.finishMessageBuffer(builder, control.Message.createMessage(builder, control.Body.FrameReady, frame));
  return builder.asUint8Array();
}

describe('FlatBuffers code generated from schemas/fbs', () => {
  beforeAll(() => {
    mkdirSync(join(root, '.cache/test-bin'), { recursive: true });
    execFileSync('g++', [
      '-std=c++17',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-I',
      join(root, 'generated/cpp'),
      join(root, 'test/fixtures/fbs/interop.cpp'),
      '-o',
      interop,
    ]);
  });

  it('reads back in TypeScript what TypeScript wrote', () => {
    const message = viewer.Message.getRootAsMessage(new flatbuffers.ByteBuffer(viewerTouch()));
    expect(message.bodyType()).toBe(viewer.Body.cloudphone_input_Touch);
    const touch = message.body(new Touch()) as Touch;
    expect([touch.action(), touch.pointerId(), touch.x(), touch.y(), touch.pressure()]).toEqual([
      TouchAction.Move,
      2,
      0.25,
      0.75,
      0.5,
    ]);
  });

  it('marks each protocol with its own file identifier', () => {
    expect(viewer.Message.bufferHasIdentifier(new flatbuffers.ByteBuffer(viewerTouch()))).toBe(true);
    expect(control.Message.bufferHasIdentifier(new flatbuffers.ByteBuffer(viewerTouch()))).toBe(false);
    expect(control.Message.bufferHasIdentifier(new flatbuffers.ByteBuffer(controlFrameReady()))).toBe(true);
  });

  it('has C++ verify and read a viewer message written by TypeScript', () => {
    const result = runInterop('decode-viewer', viewerTouch());
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toBe('Touch action=2 pointer=2 x=0.25 y=0.75 pressure=0.5\n');
  });

  it('has C++ verify and read a control message with 64-bit fields and a struct written by TypeScript', () => {
    const result = runInterop('decode-control', controlFrameReady());
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toBe(
      'FrameReady generation=3 slot=1 sequence=123456789012 capture_time_ns=987654321987654321 damage=10,20,300,400\n',
    );
  });

  it('reads in TypeScript what C++ wrote', () => {
    const touchBytes = runInterop('encode-viewer-touch').stdout;
    const touch = viewer.Message.getRootAsMessage(new flatbuffers.ByteBuffer(touchBytes)).body(new Touch()) as Touch;
    expect([touch.action(), touch.pointerId(), touch.x(), touch.y(), touch.pressure()]).toEqual([
      TouchAction.Move,
      2,
      0.25,
      0.75,
      0.5,
    ]);

    const surfaceBytes = runInterop('encode-control-surface').stdout;
    const message = control.Message.getRootAsMessage(new flatbuffers.ByteBuffer(surfaceBytes));
    expect(message.bodyType()).toBe(control.Body.Surface);
    const surface = message.body(new control.Surface()) as control.Surface;
    expect({
      generation: surface.generation(),
      memory: surface.memory(),
      path: surface.path(),
      width: surface.width(),
      height: surface.height(),
      format: surface.format(),
      stride: surface.stride(),
      slots: surface.slotCount(),
      size: surface.size(),
    }).toEqual({
      generation: 7,
      memory: control.MemoryKind.SharedFile,
      path: 'framebuffer-7',
      width: 1080,
      height: 2400,
      format: control.PixelFormat.RGBA8888,
      stride: 4320,
      slots: 3,
      size: 31104512n,
    });
  });

  it('has the C++ Verifier refuse truncated and corrupted buffers', () => {
    const good = controlFrameReady();
    expect(runInterop('decode-control', good.subarray(0, good.length - 12)).stdout.toString()).toBe('invalid\n');
    const corrupted = Uint8Array.from(good);
    new DataView(corrupted.buffer).setUint32(0, 0xfffffff0, true); // root offset far outside the buffer
    expect(runInterop('decode-control', corrupted).status).toBe(2);
    expect(runInterop('decode-viewer', good).stdout.toString()).toBe('invalid\n'); // wrong file identifier
  });
});
