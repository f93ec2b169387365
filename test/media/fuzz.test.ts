// The libFuzzer target over everything the sidecar and the phone parse from each other, and what WebRTC viewers
// send on the data channel (native/test/fuzz_control.cpp): a short run from the seed corpus, and the inputs
// that once crashed it, kept as regressions. A crash, a sanitizer report or a leak makes libFuzzer exit
// non-zero. The viewer seeds are built by the player's own message builder, so the fuzzer starts from what a
// real player sends.
import { execFile } from 'node:child_process';
import { cpSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PlayerMessages } from '../../sidecar/player/channel-messages.ts';
import { TouchAction } from '../../generated/ts/fbs/input_generated.ts';
import { NATIVE_BUILD, tempDir } from './media-peers.ts';

const run = promisify(execFile);
const FUZZER = join(NATIVE_BUILD, 'cloudphone-fuzz-control');
const REGRESSIONS = fileURLToPath(new URL('../../native/test/fuzz-regressions/', import.meta.url));
// Half a million inputs take about a second here; enough to catch a new crash on the paths the seeds open.
const CI_RUNS = 500_000;
// The fuzz target's mode byte for a viewer's data-channel message.
const VIEWER_MODE = 3;

/** One seed per kind of message a player sends, prefixed with the viewer mode and a flags byte. */
function writeViewerSeeds(dir: string): void {
  const player = new PlayerMessages();
  const seeds: Record<string, Uint8Array> = {
    'viewer-touch': player.touch(TouchAction.Down, 1, 0.25, 0.75, 1),
    'viewer-key': player.key(true, 29, 0, 1),
    'viewer-text': player.text('héllo ✓'),
    'viewer-scroll': player.scroll(0.5, 0.5, 0, -2),
    'viewer-pong': player.pong(7, 123_456_789n, 987_654.5),
    'viewer-render-report': player.renderReport(90_000, 1_000_000.5),
    'viewer-keyframe-request': player.keyframeRequest(),
    'viewer-stats': player.stats({
      framesDecoded: 300,
      framesDropped: 2,
      fps: 30,
      jitterMs: 3,
      packetsLost: 1,
      rttMs: 2,
      bitrateKbps: 1500,
    }),
  };
  for (const [name, bytes] of Object.entries(seeds))
    writeFileSync(join(dir, name), Buffer.concat([Buffer.from([VIEWER_MODE, 0]), bytes]));
}

describe('fuzz target for the control protocol, the framebuffer header and viewer messages', () => {
  const work = tempDir('cloudphone-fuzz-');
  afterAll(() => {
    work.remove();
  });

  it(`runs ${CI_RUNS} inputs from the seed corpus without a crash`, async () => {
    const seeds = join(work.path, 'seeds');
    const corpus = join(work.path, 'corpus');
    await run('mkdir', ['-p', seeds, corpus]);
    await run(join(NATIVE_BUILD, 'cloudphone-fuzz-seeds'), [seeds]);
    writeViewerSeeds(seeds);
    expect(readdirSync(seeds).length).toBeGreaterThanOrEqual(17);
    const { stderr } = await run(
      FUZZER,
      [`-runs=${CI_RUNS}`, '-seed=1', `-artifact_prefix=${work.path}/`, corpus, seeds],
      {
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    expect(stderr).toContain(`Done ${CI_RUNS} runs`);
    // The fuzzer found inputs beyond the seeds: the target is reaching code, not rejecting everything.
    expect(readdirSync(corpus).length).toBeGreaterThan(readdirSync(seeds).length);
  });

  it('passes the inputs that crashed earlier versions', async () => {
    const inputs = readdirSync(REGRESSIONS);
    expect(inputs).toEqual(expect.arrayContaining(['surface-type-without-body', 'string-without-terminator-room']));
    const copy = join(work.path, 'regressions');
    cpSync(REGRESSIONS, copy, { recursive: true });
    const { stderr } = await run(
      FUZZER,
      inputs.map((name) => join(copy, name)),
    );
    expect(stderr).toContain(`Executed ${join(copy, inputs[0] ?? '')}`);
  });
});
