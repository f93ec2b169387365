// Encoded pictures reach JavaScript (where the WebRTC sinks live) through the addon's bounded queue: the
// pictures must form a stream a real decoder plays whole and in order, and a JavaScript thread that stalls
// must lose pictures up to a keyframe rather than queue them.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../cluster/wait-for.ts';
import { type AccessUnit, NativePipeline } from '../../sidecar/src/native.ts';
import { NATIVE_BUILD, pipelineOptions, runHostileProducer, Simulator, tempDir } from './media-peers.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups.length = 0;
});

function startPipeline(onUnit: (unit: AccessUnit) => void): { dir: string; pipeline: NativePipeline } {
  const shared = tempDir('cloudphone-units-');
  cleanups.push(shared.remove);
  const pipeline = new NativePipeline(
    pipelineOptions(shared.path, { bitrateKbps: 2000, encoder: 'auto' }),
    () => undefined,
  );
  pipeline.onAccessUnit(onUnit);
  pipeline.start();
  cleanups.push(() => {
    pipeline.stop();
  });
  return { dir: shared.path, pipeline };
}

function phone(dir: string): void {
  const sim = new Simulator({ dir, width: 320, height: 640 });
  cleanups.push(() => sim.stop());
}

/** NAL unit types in an Annex-B access unit. */
function nalTypes(data: Buffer): number[] {
  const types: number[] = [];
  for (let i = 0; i + 3 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) types.push((data[i + 3] ?? 0) & 0x1f);
  }
  return types;
}

describe('encoded pictures for JavaScript', () => {
  it('form a stream that ffmpeg decodes whole and in order, starting at a keyframe with SPS and PPS', async () => {
    const units: AccessUnit[] = [];
    const { dir } = startPipeline((unit) => units.push(unit));
    phone(dir);
    await waitFor('60 pictures', () => Promise.resolve(units.length >= 60 ? true : undefined), 30_000);

    const first = units[0];
    expect(first?.keyframe).toBe(true);
    expect(nalTypes(first?.data ?? Buffer.alloc(0))).toEqual(expect.arrayContaining([7, 8, 5]));
    for (let i = 1; i < units.length; i++) expect(units[i]?.pts90k).toBeGreaterThan(units[i - 1]?.pts90k ?? 0);
    expect(units.every((u) => u.captureNs > 0)).toBe(true);

    const work = tempDir('cloudphone-units-stream-');
    cleanups.push(work.remove);
    const stream = join(work.path, 'stream.h264');
    const decoded = units.slice(0, 60);
    writeFileSync(stream, Buffer.concat(decoded.map((u) => u.data)));
    const stamps = execFileSync(
      'sh',
      [
        '-c',
        `ffmpeg -hide_banner -loglevel error -f h264 -i "$0" -fps_mode passthrough -f rawvideo -pix_fmt gray - | "$1" --width 320 --height 640`,
        stream,
        join(NATIVE_BUILD, 'cloudphone-stamp-reader'),
      ],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { frame: number | null }).frame);
    expect(stamps).toHaveLength(decoded.length);
    expect(stamps.filter((f) => f === null)).toEqual([]);
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]).toBeGreaterThan(stamps[i - 1] ?? 0);
  });

  it('drops pictures while JavaScript stalls, and resumes at a keyframe', async () => {
    const units: AccessUnit[] = [];
    const { dir, pipeline } = startPipeline((unit) => units.push(unit));
    phone(dir);
    await waitFor('10 pictures', () => Promise.resolve(units.length >= 10 ? true : undefined), 30_000);
    // Stall the JavaScript thread for a second: 30 pictures come, 8 fit in the queue.
    const until = Date.now() + 1000;
    while (Date.now() < until) {
      /* busy */
    }
    const stalledAt = units.length;
    await waitFor('pictures after the stall', () => Promise.resolve(units.length >= stalledAt + 12 ? true : undefined));
    expect(pipeline.stats().accessUnitsDroppedForJs).toBeGreaterThan(0);
    // The first picture after the gap (the 8 queued ones came first) is a keyframe.
    const after = units.slice(stalledAt);
    const frameTicks = 90000 / 30;
    const gap = after.findIndex((u, i) => i > 0 && u.pts90k - (after[i - 1]?.pts90k ?? 0) > 3 * frameTicks);
    expect(gap).toBeGreaterThan(0);
    expect(after[gap]?.keyframe).toBe(true);
  });

  it("stamps pictures by the sidecar's clock when a phone lies about capture times, and starts afresh with the next phone", async () => {
    const units: AccessUnit[] = [];
    const { dir, pipeline } = startPipeline((unit) => units.push(unit));
    expect(await runHostileProducer(dir, 'lying-capture-times')).toBe(0);
    // Seven frames stamped in the future, at the ends of int64, before boot and an hour ago.
    await waitFor('the lying frames', () => Promise.resolve(units.length >= 7 ? true : undefined));
    const lied = units.splice(0);
    const nowNs = Number(process.hrtime.bigint());
    // Not believed: no latency figure comes from them (captureNs 0), and their timestamps follow real time.
    expect(lied.map((u) => u.captureNs)).toEqual(lied.map(() => 0));
    for (const unit of lied) expect(Math.abs(unit.pts90k / 90_000 - nowNs / 1e9)).toBeLessThan(10);
    expect(pipeline.stats().captureTimesUnbelieved).toBe(7);

    phone(dir);
    await waitFor('30 pictures of the next phone', () => Promise.resolve(units.length >= 30 ? true : undefined));
    const steps = units.slice(1).map((u, i) => u.pts90k - (units[i]?.pts90k ?? 0));
    steps.sort((a, b) => a - b);
    // At 30 fps a picture is 3000 ticks of 90 kHz after the one before; a stream whose clock a liar ran ahead
    // would crawl one tick a picture.
    const median = steps[Math.floor(steps.length / 2)] ?? 0;
    expect(median).toBeGreaterThan(2000);
    expect(median).toBeLessThan(4500);
    expect(units.every((u) => u.captureNs > 0)).toBe(true);
  });
});
