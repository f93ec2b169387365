// Recording into a directory, with the sidecar's own entry point in a child process beside a simulated phone:
// every segment is read by ffprobe and decoded on its own by ffmpeg, the segments joined by ffmpeg's concat
// demuxer decode as one run of consecutive frames, SIGTERM finishes the last segment whole, SIGKILL loses at
// most its last fragment (the next start keeps the rest), retention holds the directory within its size and
// age, and a real full file system (a tmpfs) stops recording without stopping the stream, until it grows.

import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../cluster/wait-for.ts';
import { fileStamps, freeTcpPort, sidecarConfig, SidecarProcess, Simulator, tempDir } from './media-peers.ts';

const WIDTH = 480;
const HEIGHT = 864;
const FPS = 30;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups.length = 0;
});

interface RecordingPhone {
  sidecar: SidecarProcess;
  simulator: Simulator;
  metric: (name: string) => Promise<number>;
}

/** A simulated phone and a sidecar process recording into directory with these settings. */
async function recordingPhone(directory: string, recording: Record<string, unknown>): Promise<RecordingPhone> {
  const shared = tempDir('cloudphone-recording-shared-');
  const sidecar = new SidecarProcess({
    config: sidecarConfig({
      sharedDir: shared.path,
      video: { fps: FPS, keyframeIntervalSeconds: 1, bitrate: { minKbps: 500, targetKbps: 1000, maxKbps: 1000 } },
      recording: { directory, ...recording },
    }),
    configFile: join(shared.path, 'config.json'),
    metricsPort: await freeTcpPort(),
  });
  const simulator = new Simulator({ dir: shared.path, width: WIDTH, height: HEIGHT, fps: FPS });
  cleanups.push(async () => {
    await simulator.stop();
    await sidecar.stop();
    shared.remove();
  });
  const metric = async (name: string): Promise<number> => (await sidecar.metric(name)) ?? 0;
  await waitFor('the phone to record', async () =>
    (await metric('cloudphone_recording_active')) === 1 ? true : undefined,
  );
  return { sidecar, simulator, metric };
}

function files(directory: string): string[] {
  return readdirSync(directory).sort();
}

function probe(file: string): { codec: string; width: number; height: number; frames: number; firstKey: boolean } {
  const json = JSON.parse(
    execFileSync(
      'ffprobe',
      ['-v', 'error', '-select_streams', 'v:0', '-count_frames'].concat([
        '-show_entries',
        'stream=codec_name,width,height,nb_read_frames',
        '-of',
        'json',
        file,
      ]),
      { encoding: 'utf8' },
    ),
  ) as { streams: { codec_name: string; width: number; height: number; nb_read_frames: string }[] };
  const stream = json.streams[0];
  return {
    codec: stream?.codec_name ?? '',
    width: stream?.width ?? 0,
    height: stream?.height ?? 0,
    frames: Number(stream?.nb_read_frames ?? 0),
    firstKey: firstFrameIsKey(file),
  };
}

function firstFrameIsKey(file: string): boolean {
  const flags = execFileSync(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=flags', '-read_intervals', '%+#1'].concat([
      '-of',
      'csv=p=0',
      file,
    ]),
    { encoding: 'utf8' },
  );
  return flags.trim().startsWith('K');
}

/** What ffmpeg says when decoding the whole file: empty when it decodes cleanly. */
function decodeErrors(file: string): string {
  return execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function consecutive(frames: (number | null)[]): boolean {
  return frames.every((frame, i) => frame !== null && (i === 0 || frame === (frames[i - 1] ?? NaN) + 1));
}

describe('recording', () => {
  it('writes segments that each play on their own and join into one run of frames; SIGTERM finishes the last', async () => {
    const out = tempDir('cloudphone-recording-');
    cleanups.push(() => {
      out.remove();
    });
    const phone = await recordingPhone(out.path, { segmentSeconds: 2, maxBytes: 256 * 1024 * 1024 });
    await waitFor(
      'three segments',
      async () => ((await phone.metric('cloudphone_recording_segments_total')) >= 3 ? true : undefined),
      30_000,
    );
    const written = await phone.metric('cloudphone_recording_access_units_written_total');
    await phone.sidecar.stop(); // SIGTERM
    await phone.simulator.stop();

    const names = files(out.path);
    expect(
      names.every((name) => /^\d{8}T\d{6}\.\d{3}Z\.mp4$/.test(name)),
      names.join(' '),
    ).toBe(true);
    expect(names.length).toBeGreaterThanOrEqual(4);
    const all: (number | null)[] = [];
    for (const [i, name] of names.entries()) {
      const file = join(out.path, name);
      const info = probe(file);
      expect(info).toMatchObject({ codec: 'h264', width: WIDTH, height: HEIGHT, firstKey: true });
      expect(decodeErrors(file)).toBe('');
      // Alone, from its first picture: every stamp reads back, one after another.
      const frames = (await fileStamps(file, WIDTH, HEIGHT)).map((s) => s.frame);
      expect(frames.length).toBe(info.frames);
      expect(consecutive(frames), `${name}: ${frames.join(',')}`).toBe(true);
      // A segment ends at the keyframe asked for when its 2 s were up (the last one at SIGTERM).
      if (i < names.length - 1) {
        expect(frames.length).toBeGreaterThanOrEqual(2 * FPS);
        expect(frames.length).toBeLessThanOrEqual(2 * FPS + 8);
      }
      all.push(...frames);
    }
    // Nothing lost between segments, and the last one holds everything written before SIGTERM.
    expect(consecutive(all)).toBe(true);
    expect(all.length).toBeGreaterThanOrEqual(written);

    // Joined by the concat demuxer, without re-encoding: one file, every picture in order.
    const list = join(out.path, 'list.txt');
    writeFileSync(list, names.map((name) => `file '${join(out.path, name)}'\n`).join(''));
    const joined = join(out.path, 'joined.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy', joined]);
    const joinedFrames = (await fileStamps(joined, WIDTH, HEIGHT)).map((s) => s.frame);
    expect(joinedFrames).toEqual(all);
    const times = execFileSync(
      'ffprobe',
      ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', joined],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n')
      .map(Number);
    expect(times.every((t, i) => i === 0 || t > (times[i - 1] ?? Infinity))).toBe(true);
  });

  it('begins a new segment when the surface changes size, each segment one size', async () => {
    const out = tempDir('cloudphone-recording-');
    cleanups.push(() => {
      out.remove();
    });
    const phone = await recordingPhone(out.path, { segmentSeconds: 600, maxBytes: 256 * 1024 * 1024 });
    await waitFor('a second recorded', async () =>
      (await phone.metric('cloudphone_recording_access_units_written_total')) >= FPS ? true : undefined,
    );
    phone.simulator.command(`resize ${String(HEIGHT)} ${String(WIDTH)}`);
    await waitFor('the first segment to end', async () =>
      (await phone.metric('cloudphone_recording_segments_total')) >= 1 ? true : undefined,
    );
    const written = await phone.metric('cloudphone_recording_access_units_written_total');
    await waitFor('a second more', async () =>
      (await phone.metric('cloudphone_recording_access_units_written_total')) >= written + FPS ? true : undefined,
    );
    await phone.sidecar.stop();
    const names = files(out.path);
    expect(names).toHaveLength(2);
    const [first, second] = names.map((name) => probe(join(out.path, name)));
    expect(first).toMatchObject({ width: WIDTH, height: HEIGHT, firstKey: true });
    expect(second).toMatchObject({ width: HEIGHT, height: WIDTH, firstKey: true });
    for (const name of names) expect(decodeErrors(join(out.path, name))).toBe('');
  });

  it('loses at most the last fragment to SIGKILL: the next start keeps the unfinished segment up to there', async () => {
    const out = tempDir('cloudphone-recording-');
    cleanups.push(() => {
      out.remove();
    });
    const phone = await recordingPhone(out.path, { segmentSeconds: 600, maxBytes: 256 * 1024 * 1024 });
    await waitFor('four seconds recorded', async () =>
      (await phone.metric('cloudphone_recording_access_units_written_total')) >= 4 * FPS ? true : undefined,
    );
    const written = await phone.metric('cloudphone_recording_access_units_written_total');
    process.kill(phone.sidecar.pid, 'SIGKILL');
    await waitFor('the sidecar to die', () => {
      try {
        process.kill(phone.sidecar.pid, 0);
        return Promise.resolve(undefined);
      } catch {
        return Promise.resolve(true);
      }
    });
    const left = files(out.path);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\d{8}T\d{6}\.\d{3}Z\.mp4\.part$/);

    // The next sidecar on the same directory adopts it before it records anything of its own.
    const next = await recordingPhone(out.path, { segmentSeconds: 600, maxBytes: 256 * 1024 * 1024 });
    const kept = left[0]?.replace(/\.part$/, '') ?? '';
    expect(files(out.path)).toContain(kept);
    const file = join(out.path, kept);
    expect(decodeErrors(file)).toBe('');
    const frames = (await fileStamps(file, WIDTH, HEIGHT)).map((s) => s.frame);
    expect(consecutive(frames)).toBe(true);
    // Fragments last at most a second: what was written before the kill is there, but for at most that.
    expect(frames.length).toBeGreaterThanOrEqual(written - FPS);
    expect(frames.length).toBeLessThanOrEqual(written + FPS);
    expect(await next.metric('cloudphone_recording_active')).toBe(1);
  });

  it('keeps the directory within maxBytes all along, removing the oldest segments first', async () => {
    const out = tempDir('cloudphone-recording-');
    cleanups.push(() => {
      out.remove();
    });
    const maxBytes = 1024 * 1024;
    const phone = await recordingPhone(out.path, { segmentSeconds: 1, maxBytes });
    const seen = new Set<string>();
    let largest = 0;
    // Every file of the directory, the one being written included, every 20 ms.
    const sampler = setInterval(() => {
      let total = 0;
      for (const name of files(out.path)) {
        seen.add(name.replace(/\.part$/, ''));
        try {
          total += statSync(join(out.path, name)).size;
        } catch {
          // removed between the listing and the stat
        }
      }
      largest = Math.max(largest, total);
    }, 20);
    cleanups.push(() => {
      clearInterval(sampler);
    });
    await waitFor(
      'six segments removed',
      async () => ((await phone.metric('cloudphone_recording_segments_removed_total')) >= 6 ? true : undefined),
      60_000,
    );
    clearInterval(sampler);
    expect(largest).toBeLessThanOrEqual(maxBytes);
    expect(largest).toBeGreaterThan(maxBytes / 2); // it used the room it had
    const kept = files(out.path).filter((name) => name.endsWith('.mp4'));
    const all = [...seen].sort();
    // What is left is the newest: every segment older than the oldest kept is gone.
    expect(kept.length).toBeGreaterThan(0);
    expect(all.slice(all.indexOf(kept[0] ?? ''))).toEqual(expect.arrayContaining(kept));
    expect(all.indexOf(kept[0] ?? '')).toBeGreaterThanOrEqual(6);
    const stored = await phone.metric('cloudphone_recording_stored_bytes');
    expect(stored).toBeLessThanOrEqual(maxBytes);
  });

  it('removes segments that ended longer ago than maxAgeSeconds', async () => {
    const out = tempDir('cloudphone-recording-');
    cleanups.push(() => {
      out.remove();
    });
    const phone = await recordingPhone(out.path, { segmentSeconds: 1, maxBytes: 256 * 1024 * 1024, maxAgeSeconds: 2 });
    await waitFor(
      'three segments removed by age',
      async () => ((await phone.metric('cloudphone_recording_segments_removed_total')) >= 3 ? true : undefined),
      30_000,
    );
    const now = Date.now();
    for (const name of files(out.path).filter((n) => n.endsWith('.mp4'))) {
      // Checked every second: a segment may outlive its age by that much (and the listing's own time).
      expect(now - statSync(join(out.path, name)).mtimeMs).toBeLessThan(2000 + 1500);
    }
  });

  it('stops recording on a full volume, keeping what it wrote and the stream going, and resumes when it grows', async () => {
    const out = tempDir('cloudphone-recording-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0777', 'tmpfs', out.path]);
    cleanups.push(() => {
      execFileSync('umount', [out.path]);
      out.remove();
    });
    // Retention allows far more than the volume holds: the file system fills first, as on a shared volume.
    const phone = await recordingPhone(out.path, { segmentSeconds: 1, maxBytes: 256 * 1024 * 1024 });
    await waitFor(
      'recording to stop',
      async () => ((await phone.metric('cloudphone_recording_failures_total')) >= 1 ? true : undefined),
      30_000,
    );
    expect(await phone.metric('cloudphone_recording_active')).toBe(0);
    // The stream goes on.
    const encoded = await phone.metric('cloudphone_frames_encoded_total');
    await waitFor('frames encoded while stopped', async () =>
      (await phone.metric('cloudphone_frames_encoded_total')) > encoded + FPS ? true : undefined,
    );
    // Every file left is a whole segment: the one cut short ends at its last whole fragment.
    const names = files(out.path);
    expect(names.length).toBeGreaterThan(0);
    expect(
      names.every((name) => name.endsWith('.mp4')),
      names.join(' '),
    ).toBe(true);
    for (const name of names) {
      expect(decodeErrors(join(out.path, name))).toBe('');
      expect(consecutive((await fileStamps(join(out.path, name), WIDTH, HEIGHT)).map((s) => s.frame))).toBe(true);
    }

    execFileSync('mount', ['-o', 'remount,size=64m', out.path]);
    await waitFor(
      'recording to resume',
      async () => ((await phone.metric('cloudphone_recording_active')) === 1 ? true : undefined),
      30_000,
    );
    const segments = await phone.metric('cloudphone_recording_segments_total');
    await waitFor('a segment after resuming', async () =>
      (await phone.metric('cloudphone_recording_segments_total')) > segments ? true : undefined,
    );
  });
});
