// The libFuzzer target over everything the sidecar and the phone parse from each other (native/test/
// fuzz_control.cpp): a short run from the seed corpus, and the inputs that once crashed it, kept as
// regressions. A crash, a sanitizer report or a leak makes libFuzzer exit non-zero.
import { execFile } from 'node:child_process';
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { NATIVE_BUILD, tempDir } from './media-peers.ts';

const run = promisify(execFile);
const FUZZER = join(NATIVE_BUILD, 'cloudphone-fuzz-control');
const REGRESSIONS = fileURLToPath(new URL('../../native/test/fuzz-regressions/', import.meta.url));
// Half a million inputs take about a second here; enough to catch a new crash on the paths the seeds open.
const CI_RUNS = 500_000;

describe('fuzz target for the control protocol and the framebuffer header', () => {
  const work = tempDir('cloudphone-fuzz-');
  afterAll(() => {
    work.remove();
  });

  it(`runs ${CI_RUNS} inputs from the seed corpus without a crash`, async () => {
    const seeds = join(work.path, 'seeds');
    const corpus = join(work.path, 'corpus');
    await run('mkdir', ['-p', seeds, corpus]);
    await run(join(NATIVE_BUILD, 'cloudphone-fuzz-seeds'), [seeds]);
    expect(readdirSync(seeds).length).toBeGreaterThanOrEqual(9);
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
