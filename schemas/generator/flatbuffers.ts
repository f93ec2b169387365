// Runs Debian's flatc (2.0.8) over schemas/fbs for TypeScript and C++ code.
//
// flatc writes relative imports without an extension ('./input_generated'); Node's ESM loader needs one,
// so they are rewritten to '.ts' (tsc turns them into '.js' when it emits).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const FLATC_VERSION = '2.0.8';

function flatc(args: string[]): string {
  try {
    return execFileSync('flatc', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new Error(
        `flatc ${FLATC_VERSION} is required: apt-get install flatbuffers-compiler (scripts/setup.sh does)`,
      );
    }
    throw error;
  }
}

export function checkFlatcVersion(): void {
  const version = flatc(['--version']).trim();
  if (!version.endsWith(` ${FLATC_VERSION}`)) {
    throw new Error(
      `flatc ${FLATC_VERSION} is required (generated code must not depend on the machine), found: ${version}`,
    );
  }
}

/** Generated files by language: relative file name -> content. */
export function flatbuffersCode(fbsDir: string, banner: string): { ts: Map<string, string>; cpp: Map<string, string> } {
  checkFlatcVersion();
  const schemas = readdirSync(fbsDir)
    .filter((f) => f.endsWith('.fbs'))
    .sort()
    .map((f) => join(fbsDir, f));
  const out = mkdtempSync(join(tmpdir(), 'cloudphone-flatc-'));
  try {
    flatc(['--ts', '--ts-flat-files', '-o', join(out, 'ts'), ...schemas]);
    flatc(['--cpp', '--scoped-enums', '--cpp-std', 'c++17', '-o', join(out, 'cpp'), ...schemas]);
    const ts = new Map<string, string>();
    for (const file of readdirSync(join(out, 'ts')).sort()) {
      const code = readFileSync(join(out, 'ts', file), 'utf8').replace(
        /from '(\.\/[A-Za-z0-9_]+)'/g,
        (_match, path: string) => `from '${path}.ts'`,
      );
      ts.set(file, `${banner}\n${code}`);
    }
    const cpp = new Map<string, string>();
    for (const file of readdirSync(join(out, 'cpp')).sort()) {
      cpp.set(file, `${banner}\n${readFileSync(join(out, 'cpp', file), 'utf8')}`);
    }
    return { ts, cpp };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
