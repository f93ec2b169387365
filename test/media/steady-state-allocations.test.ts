// Zero heap allocations per frame in steady state, measured: the sidecar runs as its own process under the
// allocation counter (native/test/alloc_counter.c, LD_PRELOAD), streams a 720x1280 RGBA phone to a real
// SRT receiver and an RTMP server (ffmpeg), and two counter reports taken hundreds of frames apart must show
// no new allocation on the threads a frame passes through: cp-pipeline (socket, mapping, libyuv, x264, whose
// worker threads inherit the name, and the copies into each output's ring) and cp-srt (the mpegts muxer and
// the SRT sends); cp-rtmp shows only what libavformat's RTMP protocol allocates for each picture it sends,
// and cp-record what its MP4 muxer allocates for each fragment.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { waitFor } from '../cluster/wait-for.ts';
import {
  NATIVE_BUILD,
  SidecarProcess,
  Simulator,
  SrtReceiver,
  freeTcpPort,
  freeUdpPort,
  rtmpListener,
  sidecarConfig,
  stopChild,
  tempDir,
} from './media-peers.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups.length = 0;
});

function readCounts(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const at = line.lastIndexOf(' ');
    if (at > 0) counts.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return counts;
}

it('encodes and sends hundreds of frames without one heap allocation on the frame path', async () => {
  const shared = tempDir('cloudphone-alloc-');
  cleanups.push(shared.remove);
  const report = join(shared.path, 'allocations.txt');
  const srtPort = await freeUdpPort();
  const rx = new SrtReceiver({ port: srtPort, width: 360, height: 640 });
  cleanups.push(() => rx.stop());
  // ffmpeg as the RTMP server, taking the push and discarding it.
  const rtmpPort = await freeTcpPort();
  const rtmpServer = rtmpListener(`rtmp://127.0.0.1:${String(rtmpPort)}/app/key-0123`, [
    '-c',
    'copy',
    '-f',
    'null',
    '-',
  ]);
  cleanups.push(() => stopChild(rtmpServer));
  writeFileSync(join(shared.path, 'stream-key'), 'key-0123');
  const recordings = join(shared.path, 'recordings');
  mkdirSync(recordings);
  const sidecar = new SidecarProcess({
    config: sidecarConfig({
      sharedDir: shared.path,
      srtUrl: `srt://127.0.0.1:${String(srtPort)}`,
      // A fixed bitrate: the steady state of a stream, not a ramp.
      video: { fps: 30, bitrate: { targetKbps: 3000, minKbps: 3000, maxKbps: 3000 } },
      rtmp: { url: `rtmp://127.0.0.1:${String(rtmpPort)}/app`, streamKeyFile: join(shared.path, 'stream-key') },
      // One segment for the whole count: what is measured is the steady state of writing one (a segment's
      // beginning allocates the muxer, once a minute by default).
      recording: { directory: recordings, segmentSeconds: 600, maxBytes: 256 * 1024 * 1024 },
    }),
    configFile: join(shared.path, 'config.json'),
    metricsPort: await freeTcpPort(),
    env: {
      LD_PRELOAD: join(NATIVE_BUILD, 'libcloudphone-alloc-counter.so'),
      CLOUDPHONE_ALLOC_REPORT: report,
      // libsrt grows its send buffer, 32 packets at a time, whenever a keyframe needs more room than it ever
      // did (it never shrinks): counted apart, as "cp-srt!", so that growth is told from per-frame work.
      CLOUDPHONE_ALLOC_EXCUSE: 'CSndBuffer8increase',
    },
  });
  cleanups.push(() => sidecar.stop());
  const sim = new Simulator({ dir: shared.path, width: 720, height: 1280, format: 'rgba' });
  cleanups.push(() => sim.stop());

  const encodedAtLeast = (count: number) => async () => {
    const encoded = await sidecar.metric('cloudphone_frames_encoded_total');
    return encoded !== undefined && encoded >= count ? encoded : undefined;
  };
  // Warm-up, 5 s: x264 fills its frame pool, the muxer writes its first tables, libsrt sizes its send buffer
  // for a few keyframes.
  await waitFor('150 frames encoded and received', async () =>
    (await encodedAtLeast(150)()) && rx.stamps.length >= 60 ? true : undefined,
  );
  await new Promise((resolve) => setTimeout(resolve, 400)); // two counter reports, so the file is current
  const before = readCounts(report);
  const rtmpSentBefore = (await sidecar.metric('cloudphone_rtmp_access_units_sent_total')) ?? 0;
  const recordedBefore = (await sidecar.metric('cloudphone_recording_access_units_written_total')) ?? 0;
  const segmentsBefore = (await sidecar.metric('cloudphone_recording_segments_total')) ?? 0;
  const encodedBefore = (await sidecar.metric('cloudphone_frames_encoded_total')) ?? 0;
  await waitFor('300 more frames', encodedAtLeast(encodedBefore + 300));
  const stampsBefore = rx.stamps.length;
  await new Promise((resolve) => setTimeout(resolve, 400));
  const after = readCounts(report);
  const rtmpSent = ((await sidecar.metric('cloudphone_rtmp_access_units_sent_total')) ?? 0) - rtmpSentBefore;
  const recorded = ((await sidecar.metric('cloudphone_recording_access_units_written_total')) ?? 0) - recordedBefore;
  const segments = ((await sidecar.metric('cloudphone_recording_segments_total')) ?? 0) - segmentsBefore;

  // The counter is working: the JavaScript thread (Node names it MainThread) allocates all the time.
  expect((after.get('MainThread') ?? 0) - (before.get('MainThread') ?? 0)).toBeGreaterThan(0);
  expect(before.has('cp-pipeline')).toBe(true);
  expect(before.has('cp-srt')).toBe(true);
  for (const thread of ['cp-pipeline', 'cp-srt']) {
    expect({ thread, allocations: (after.get(thread) ?? 0) - (before.get(thread) ?? 0) }).toEqual({
      thread,
      allocations: 0,
    });
  }
  // The RTMP push: libavformat's RTMP protocol builds each FLV tag into a packet it allocates and frees
  // (ff_rtmp_packet_create, one a picture), and one more for each acknowledgement the server sends. Nothing
  // more: handed Annex-B instead of AVCC, the FLV muxer would convert every picture into buffers of its own.
  expect(rtmpSent).toBeGreaterThan(250);
  const rtmpAllocations = (after.get('cp-rtmp') ?? 0) - (before.get('cp-rtmp') ?? 0);
  expect(rtmpAllocations).toBeLessThanOrEqual(rtmpSent + 10);
  // Recording: libavformat's MP4 muxer builds each fragment (a second at most) in a buffer it opens for that
  // fragment and grows by half again as pictures arrive: about 15 allocations a fragment here, none per
  // picture (given AVCC and an avcC record, it writes pictures as they are). Allowed: 20 a fragment; one
  // allocation per picture more would pass that by far.
  expect(recorded).toBeGreaterThan(250);
  expect(segments).toBe(0);
  const fragments = recorded / 30 + 1;
  expect((after.get('cp-record') ?? 0) - (before.get('cp-record') ?? 0)).toBeLessThanOrEqual(20 * fragments);
  // And the frames really went out while we counted.
  expect(rx.stamps.length).toBeGreaterThan(stampsBefore - 1);
  expect(rx.stamps.filter((s) => s.frame === null)).toEqual([]);
});
