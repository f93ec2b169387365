// `npm run generate -- --check` is how CI notices generated files that were not regenerated.

import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

function check(tree: string) {
  const result = spawnSync(process.execPath, [join(tree, 'schemas/generate.ts'), '--check'], { encoding: 'utf8' });
  return { status: result.status, output: result.stdout + result.stderr };
}

describe('schemas/generate.ts --check', () => {
  let tree: string;

  beforeAll(() => {
    tree = mkdtempSync(join(tmpdir(), 'cloudphone-generate-'));
    for (const path of ['package.json', 'schemas', 'crds', 'generated', 'charts'])
      cpSync(join(root, path), join(tree, path), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'));
  });
  afterAll(() => {
    rmSync(tree, { recursive: true, force: true });
  });

  it('passes on the committed tree', () => {
    const result = check(root);
    expect(result.output).toContain('generated files are up to date');
    expect(result.status).toBe(0);
  });

  it('fails, naming the stale files, when a schema changed but its outputs were not regenerated', () => {
    const path = join(tree, 'schemas/json/media.json');
    const original = readFileSync(path, 'utf8');
    writeFileSync(path, original.replace('Highest frame rate encoded', 'Highest frame rate sent'));
    try {
      const result = check(tree);
      expect(result.status).toBe(1);
      expect(result.output).toContain('stale: crds/cloudphone.io_cloudphonestreams.yaml');
      expect(result.output).toContain('stale: generated/ts/json-schemas.ts');
      expect(result.output).toContain(
        'stale: charts/cloudphone-operator/files/crds/cloudphone.io_cloudphonestreams.yaml',
      );
      expect(result.output).not.toContain('cloudphone.io_cloudphoneclaims.yaml');
    } finally {
      writeFileSync(path, original);
    }
  });

  it('fails when a .fbs changed, and when a generated file was edited or left behind', () => {
    const fbs = join(tree, 'schemas/fbs/input.fbs');
    const original = readFileSync(fbs, 'utf8');
    writeFileSync(fbs, original.replace('pressure: float = 1.0;', 'pressure: float = 1.0;\n  tilt: float;'));
    writeFileSync(join(tree, 'generated/ts/leftover.ts'), 'export {};\n');
    try {
      const result = check(tree);
      expect(result.status).toBe(1);
      expect(result.output).toContain('stale: generated/ts/fbs/input_generated.ts');
      expect(result.output).toContain('stale: generated/cpp/cloudphone/input_generated.h');
      expect(result.output).toContain('not generated any more: generated/ts/leftover.ts');
    } finally {
      writeFileSync(fbs, original);
      rmSync(join(tree, 'generated/ts/leftover.ts'));
    }
  });
});
