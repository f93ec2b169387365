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
/**
 * flatc writes TypeScript enums, which Node.js's type stripping cannot run (nor can a browser): each becomes a
 * const object with the same members and the same reverse mapping (the generated union helpers switch on
 * Enum[value]), and a type of its values.
 */
export function erasableEnums(code: string): string {
  return code
    .replace(/export enum (\w+) \{\n([^}]*)\n\}/g, (_match, name: string, body: string) => {
      const members = body.split(',\n').map((chunk) => {
        const lines = chunk.split('\n');
        const member = /^\s*(\w+) = (-?\d+)\s*$/.exec(lines.at(-1) ?? '');
        if (!member?.[1] || !member[2]) throw new Error(`unexpected flatc enum member in ${name}: ${chunk}`);
        // Doc comments stay with their member.
        return { docs: lines.slice(0, -1), key: member[1], value: member[2] };
      });
      const forward = members.flatMap((m) => [...m.docs, `  ${m.key}: ${m.value},`]);
      const reverse = members.map((m) => `  ${m.value}: '${m.key}',`);
      const values = members.map((m) => m.value).join(' | ');
      return `export const ${name} = {\n${[...forward, ...reverse].join('\n')}\n} as const;\nexport type ${name} = ${values};`;
    })
    .replace(
      // A field read from the wire is a plain number; a numeric enum took it silently, the union type needs a cast.
      // Unknown values still come through, as they did: readers of untrusted bytes check them (natively).
      /return offset \? (this\.bb!\.read\w+\([^;]*\)) : (\w+)\.(\w+);/g,
      (_match, read: string, type: string, member: string) => `return offset ? ${read} as ${type} : ${type}.${member};`,
    );
}

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
      ts.set(file, `${banner}\n${erasableEnums(code)}`);
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
