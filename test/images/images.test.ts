// The container images, checked without a Docker engine (scripts/check-images.ts): the rules hold for every
// Dockerfile in images/ and catch the mistakes they are for; and each runtime stage, laid out in a directory as
// the image would hold it, runs: the operator loads its whole module graph, the sidecar starts, serves its
// player page and takes a phone from the simulator's image.

import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assembleRuntime, IMAGES, parseDockerfile, problems } from '../../scripts/check-images.ts';
import { waitFor } from '../cluster/wait-for.ts';
import { freeTcpPort, stopChild, tempDir } from '../media/media-peers.ts';

const NODE = process.execPath;
const work = tempDir('cloudphone-images-');

afterAll(() => {
  work.remove();
});

/** images/<name>.Dockerfile with one text replaced, written to the work directory and parsed. */
function mutated(name: string, from: string, to: string): ReturnType<typeof parseDockerfile> {
  const text = readFileSync(join(IMAGES, `${name}.Dockerfile`), 'utf8');
  expect(text).toContain(from);
  const path = join(work.path, `${name}-${String(Math.random()).slice(2)}.Dockerfile`);
  writeFileSync(path, text.replace(from, to));
  return parseDockerfile(path);
}

describe('the Dockerfiles', () => {
  it.each(['operator', 'sidecar', 'simulator'])('images/%s.Dockerfile follows every rule', (name) => {
    expect(problems(parseDockerfile(join(IMAGES, `${name}.Dockerfile`)))).toEqual([]);
  });

  it.each([
    ['sidecar', ' libyuv0 ', ' ', "cloudphone.node needs Debian's libyuv0, which the runtime stage does not install"],
    ['sidecar', 'COPY sidecar/player/', 'COPY sidecar/players/', 'sidecar/players/ is not a file git tracks'],
    [
      'sidecar',
      'COPY common/ common/',
      'COPY node_modules/ node_modules/',
      'node_modules/ is excluded by .dockerignore',
    ],
    [
      'sidecar',
      'native/build/cloudphone.node native',
      'native/build/cloudphone-simulator native',
      'nothing in stage build makes it',
    ],
    ['operator', 'COPY --from=build', 'COPY --from=builder', 'COPY --from=builder: no earlier stage of that name'],
    ['operator', 'USER 1000:1000', 'USER root', 'the runtime stage runs as root'],
    ['simulator', 'ARG DEBIAN_IMAGE=debian:12.12-slim', 'ARG DEBIAN_IMAGE=debian:latest', 'is not pinned to a version'],
    ['simulator', '--no-install-recommends gcc', 'gcc', 'apt-get install without --no-install-recommends'],
  ])('%s: catches %j -> %j', (name, from, to, problem) => {
    expect(problems(mutated(name, from, to)).join('\n')).toContain(problem);
  });
});

describe('the runtime stages, laid out as the images hold them', () => {
  it('operator: the whole module graph loads (it stops only at the flag it does not know)', () => {
    const app = assembleRuntime(parseDockerfile(join(IMAGES, 'operator.Dockerfile')), join(work.path, 'operator'));
    const run = spawnSync(NODE, ['operator/src/main.ts', '--no-such-flag'], { cwd: app, encoding: 'utf8' });
    expect(run.stderr).toContain('cloudphone-operator:');
    expect(run.status).toBe(2);
    // Without dev dependencies: the image gets none of them.
    expect(() => readFileSync(join(app, 'node_modules/vitest/package.json'))).toThrow();
  });

  it('operator: a missing COPY shows up as a module the graph cannot find', () => {
    const app = assembleRuntime(
      mutated('operator', 'COPY common/ common/\n', ''),
      join(work.path, 'operator-without-common'),
    );
    const run = spawnSync(NODE, ['operator/src/main.ts', '--no-such-flag'], { cwd: app, encoding: 'utf8' });
    expect(run.stderr).toContain('ERR_MODULE_NOT_FOUND');
    expect(run.status).not.toBe(2);
  });

  it('sidecar and simulator: the sidecar starts, serves its player page, and takes the phone', async () => {
    const app = assembleRuntime(parseDockerfile(join(IMAGES, 'sidecar.Dockerfile')), join(work.path, 'sidecar'));
    const phoneRoot = assembleRuntime(
      parseDockerfile(join(IMAGES, 'simulator.Dockerfile')),
      join(work.path, 'simulator'),
    );
    const shared = tempDir('cloudphone-image-shared-');
    writeFileSync(join(shared.path, 'view'), 'image-view-token-0123456789');
    writeFileSync(join(shared.path, 'control'), 'image-control-token-0123456789');
    const metricsPort = await freeTcpPort();
    const whepPort = await freeTcpPort();
    const config = join(shared.path, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        apiVersion: 'cloudphone.io/v1alpha1',
        kind: 'SidecarConfig',
        stream: { namespace: 'test', name: 'image', generation: 1 },
        shared: { dir: shared.path },
        video: { fps: 30 },
        metrics: { port: metricsPort },
        webrtc: {
          whep: {
            port: whepPort,
            viewTokenFile: join(shared.path, 'view'),
            controlTokenFile: join(shared.path, 'control'),
          },
        },
      }),
    );
    const sidecar = spawn(NODE, ['sidecar/src/main.ts', '--config', config], { cwd: app, stdio: 'inherit' });
    const simulator = spawn(
      join(phoneRoot, 'usr/local/bin/cloudphone-simulator'),
      ['--dir', shared.path, '--width', '320', '--height', '640', '--fps', '30', '--memory', 'file'],
      { stdio: ['pipe', 'ignore', 'inherit'] },
    );
    try {
      await waitFor(
        'the sidecar ready with the phone',
        async () => ((await fetch(`http://127.0.0.1:${String(metricsPort)}/readyz`)).status === 200 ? true : undefined),
        20_000,
      );
      const page = await fetch(`http://127.0.0.1:${String(whepPort)}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('/player/player.js');
      expect((await fetch(`http://127.0.0.1:${String(whepPort)}/player/fbs/viewer_generated.ts`)).status).toBe(200);
      const exited = once(sidecar, 'exit');
      sidecar.kill('SIGTERM');
      expect((await exited)[0]).toBe(0);
    } finally {
      await stopChild(simulator);
      await stopChild(sidecar);
      shared.remove();
    }
  });
});
