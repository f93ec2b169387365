// Checks the Dockerfiles in images/ without a Docker engine (none runs where the tests do), in two ways:
//
// 1. Rules read from each file: base images pinned to a version; every COPY from the build context names
//    files git tracks and .dockerignore lets through; every COPY --from names an earlier stage and a path that
//    stage made (copied in, `npm ci`'s node_modules, or a `make -C native <target>`); apt installs without
//    recommends and clears its lists; the runtime stage runs as a non-root user with an exec-form ENTRYPOINT;
//    and it installs the Debian package of every shared library its native files need (read with readelf from
//    the local build, mapped with dpkg -S; libc, libstdc++ and libgcc come with the base image).
// 2. assembleRuntime() lays the runtime stage's files out in a directory as the image would hold them (the
//    build context's files, and the build stage's outputs taken from the local build: node_modules without the
//    packages the stage's `npm ci --omit` and `rm -rf` leave out). The tests then start the image's entry
//    point from that directory, so a file the image lacks fails here, not in a cluster.
//
//   node scripts/check-images.ts      prints the problems of every images/*.Dockerfile; exit 1 if any

import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const IMAGES = join(ROOT, 'images');

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  path: string;
  stages: Stage[];
}

// Shared libraries every Debian-based Node.js or Debian slim image has.
const BASE_PACKAGES = new Set(['libc6', 'libstdc++6', 'libgcc-s1']);

/** Instructions by stage, continuation lines joined, comments dropped, ARG defaults put into FROM. */
export function parseDockerfile(path: string): Dockerfile {
  const lines = readFileSync(path, 'utf8').split('\n');
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let text = lines[i] ?? '';
    if (/^\s*#/.test(text) || text.trim() === '') continue;
    while (text.endsWith('\\') && i + 1 < lines.length) {
      i++;
      const next = lines[i] ?? '';
      if (!/^\s*#/.test(next)) text = `${text.slice(0, -1)} ${next.trim()}`;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(text);
    if (!match?.[1]) continue;
    const keyword = match[1].toUpperCase();
    const rest = (match[2] ?? '').trim();
    if (keyword === 'ARG' && stages.length === 0) {
      const [name, value] = rest.split('=', 2);
      if (name) args.set(name, value ?? '');
      continue;
    }
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      const image = (from?.[1] ?? '').replace(
        /\$\{(\w+)\}|\$(\w+)/g,
        (_, a: string, b: string) => args.get(a || b) ?? '',
      );
      stages.push({ name: from?.[2] ?? String(stages.length), image, instructions: [] });
      continue;
    }
    stages.at(-1)?.instructions.push({ keyword, args: rest, line: start + 1 });
  }
  return { path, stages };
}

interface Copy {
  from?: string;
  sources: string[];
  destination: string;
  line: number;
}

function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      return { from, sources: paths.slice(0, -1), destination: paths.at(-1) ?? '', line: i.line };
    });
}

function workdir(stage: Stage, beforeLine = Infinity): string {
  let dir = '/';
  for (const i of stage.instructions)
    if (i.keyword === 'WORKDIR' && i.line < beforeLine) dir = posix.resolve(dir, i.args);
  return dir;
}

/** Absolute path in the image of a COPY destination (a trailing slash: a directory). */
function inImage(stage: Stage, copy: Copy, source: string): string {
  const destination = posix.resolve(workdir(stage, copy.line), copy.destination);
  const isDirectory = copy.destination.endsWith('/') || copy.sources.length > 1;
  return isDirectory && !source.endsWith('/') ? posix.join(destination, posix.basename(source)) : destination;
}

/** What a RUN line leaves in the stage, relative to its WORKDIR: node_modules from npm ci, make targets. */
function producedBy(run: string): string[] {
  const made: string[] = [];
  if (/\bnpm ci\b/.test(run)) made.push('node_modules');
  for (const make of run.matchAll(/\bmake -C (\S+)((?:\s+[\w./-]+)+)/g))
    for (const target of (make[2] ?? '').trim().split(/\s+/)) made.push(posix.join(make[1] ?? '', target));
  return made;
}

function dockerignore(): string[] {
  const file = join(ROOT, '.dockerignore');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

function ignored(path: string, patterns: string[]): boolean {
  const clean = path.replace(/\/$/, '');
  return patterns.some(
    (pattern) =>
      clean === pattern ||
      clean.startsWith(`${pattern}/`) ||
      (pattern.startsWith('*') && clean.endsWith(pattern.slice(1))),
  );
}

function tracked(path: string): string[] {
  return execFileSync('git', ['ls-files', '--', path], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
}

/** Debian packages that provide the shared libraries an ELF file needs (by its NEEDED entries). */
export function packagesNeeded(elf: string): string[] {
  const dynamic = execFileSync('readelf', ['-d', elf], { encoding: 'utf8' });
  const packages = new Set<string>();
  for (const [, soname] of dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) {
    const owner = execFileSync('dpkg', ['-S', `*/${soname ?? ''}`], { encoding: 'utf8' }).split('\n')[0] ?? '';
    packages.add(owner.split(':')[0] ?? owner);
  }
  return [...packages];
}

function aptInstalls(stage: Stage): string[] {
  const packages: string[] = [];
  for (const run of stage.instructions.filter((i) => i.keyword === 'RUN'))
    for (const install of run.args.matchAll(/apt-get install((?:\s+[^&|;]+))/g))
      packages.push(
        ...(install[1] ?? '')
          .trim()
          .split(/\s+/)
          .filter((w) => !w.startsWith('-')),
      );
  return packages;
}

/** The local file that stands for a path a build stage made (the repository's own build of it). */
function localOutput(stagePath: string, stage: Stage): string {
  return join(ROOT, posix.relative(workdir(stage), stagePath));
}

export function problems(file: Dockerfile): string[] {
  const found: string[] = [];
  const at = (line: number, text: string): void => {
    found.push(`${relative(ROOT, file.path)}:${String(line)}: ${text}`);
  };
  const patterns = dockerignore();
  const runtime = file.stages.at(-1);
  if (!runtime) return [`${relative(ROOT, file.path)}: no FROM`];
  for (const [index, stage] of file.stages.entries()) {
    const tag = /^[^@]+:([^@/]+)$/.exec(stage.image)?.[1];
    if (!stage.image.includes('@sha256:') && (!tag || tag === 'latest' || !/\d/.test(tag)))
      found.push(
        `${relative(ROOT, file.path)}: stage ${stage.name}: base image ${stage.image} is not pinned to a version`,
      );
    for (const run of stage.instructions.filter((i) => i.keyword === 'RUN' && i.args.includes('apt-get install'))) {
      if (!run.args.includes('--no-install-recommends'))
        at(run.line, 'apt-get install without --no-install-recommends');
      if (!run.args.includes('rm -rf /var/lib/apt/lists/*')) at(run.line, 'apt lists are left in the layer');
    }
    for (const copy of copies(stage)) {
      if (copy.from === undefined) {
        for (const source of copy.sources) {
          if (ignored(source, patterns)) at(copy.line, `${source} is excluded by .dockerignore`);
          else if (tracked(source).length === 0) at(copy.line, `${source} is not a file git tracks`);
        }
        continue;
      }
      const source = file.stages.findIndex((s) => s.name === copy.from);
      const from = file.stages[source];
      if (!from || source >= index) {
        at(copy.line, `COPY --from=${copy.from}: no earlier stage of that name`);
        continue;
      }
      const copied = copies(from).flatMap((c) =>
        c.from === undefined
          ? c.sources.map((s) => ({ image: inImage(from, c, s).replace(/\/$/, ''), context: s }))
          : [],
      );
      const built = from.instructions
        .filter((i) => i.keyword === 'RUN')
        .flatMap((i) => producedBy(i.args).map((p) => posix.resolve(workdir(from, i.line), p)));
      for (const path of copy.sources) {
        const clean = path.replace(/\/$/, '');
        if (built.some((m) => clean === m || clean.startsWith(`${m}/`))) continue;
        // Copied into that stage from the context: the file must be in the context (tracked, not ignored).
        const origin = copied.find((c) => clean === c.image || clean.startsWith(`${c.image}/`));
        const contextPath = origin && posix.join(origin.context, posix.relative(origin.image, clean));
        if (!contextPath || ignored(contextPath, patterns) || tracked(contextPath).length === 0)
          at(copy.line, `COPY --from=${copy.from} ${path}: nothing in stage ${copy.from} makes it`);
      }
    }
  }
  const user = runtime.instructions.filter((i) => i.keyword === 'USER').at(-1);
  if (!user || /^(root|0)(:|$)/.test(user.args))
    found.push(`${relative(ROOT, file.path)}: the runtime stage runs as root`);
  const entrypoint = runtime.instructions.find((i) => i.keyword === 'ENTRYPOINT');
  if (!entrypoint?.args.startsWith('[')) found.push(`${relative(ROOT, file.path)}: the ENTRYPOINT is not in exec form`);
  // Shared libraries of the native files the runtime stage takes from a build stage.
  const installed = new Set([...aptInstalls(runtime), ...BASE_PACKAGES]);
  for (const copy of copies(runtime).filter((c) => c.from !== undefined)) {
    const from = file.stages.find((s) => s.name === copy.from);
    if (!from) continue;
    for (const source of copy.sources) {
      const local = localOutput(source, from);
      if (!existsSync(local) || statSync(local).isDirectory()) continue;
      if (
        !readFileSync(local)
          .subarray(0, 4)
          .equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))
      )
        continue;
      for (const pkg of packagesNeeded(local))
        if (!installed.has(pkg))
          at(copy.line, `${posix.basename(source)} needs Debian's ${pkg}, which the runtime stage does not install`);
    }
  }
  return found;
}

interface LockPackage {
  dev?: boolean;
  optional?: boolean;
}

/** node_modules as the build stage's `npm ci` (its --omit flags) and `rm -rf node_modules/...` leave it. */
function copyNodeModules(stage: Stage, destination: string): void {
  const runs = stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
  const install = runs.find((r) => /\bnpm ci\b/.test(r)) ?? '';
  const omit = new Set([...install.matchAll(/--omit=(\w+)/g)].map((m) => m[1]));
  const removed = runs.flatMap((r) =>
    [...r.matchAll(/rm -rf ([^&;|]+)/g)].flatMap((m) => (m[1] ?? '').trim().split(/\s+/)),
  );
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockPackage>;
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path.startsWith('node_modules/') || path.lastIndexOf('node_modules/') !== 0) continue;
    if ((omit.has('dev') && entry.dev) || (omit.has('optional') && entry.optional)) continue;
    if (removed.some((r) => path === r || path.startsWith(`${r}/`))) continue;
    const local = join(ROOT, path);
    if (existsSync(local)) cpSync(local, join(destination, path), { recursive: true, dereference: false });
  }
}

/**
 * Lays out the runtime stage under `into` as the image would hold it; returns the directory the image's
 * WORKDIR stands for.
 */
export function assembleRuntime(file: Dockerfile, into: string): string {
  const runtime = file.stages.at(-1);
  if (!runtime) throw new Error(`${file.path}: no FROM`);
  const patterns = dockerignore();
  for (const copy of copies(runtime)) {
    const from = file.stages.find((s) => s.name === copy.from);
    for (const source of copy.sources) {
      const target = join(into, inImage(runtime, copy, source));
      if (copy.from === undefined) {
        for (const path of tracked(source)) {
          if (ignored(path, patterns)) continue;
          const inside = source.endsWith('/') ? relative(source, path) : '';
          const destination = inside ? join(target, inside) : target;
          mkdirSync(dirname(destination), { recursive: true });
          cpSync(join(ROOT, path), destination);
        }
      } else if (from && source.replace(/\/$/, '').endsWith('/node_modules')) {
        copyNodeModules(from, dirname(target.replace(/\/$/, '')));
      } else if (from) {
        mkdirSync(dirname(target), { recursive: true });
        cpSync(localOutput(source, from), target, { recursive: true });
      }
    }
  }
  return join(into, workdir(runtime));
}

export function dockerfiles(): Dockerfile[] {
  return readdirSync(IMAGES)
    .filter((name) => name.endsWith('.Dockerfile'))
    .sort()
    .map((name) => parseDockerfile(join(IMAGES, name)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const all = dockerfiles().flatMap(problems);
  for (const problem of all) console.error(problem);
  console.error(all.length === 0 ? `images: ${String(dockerfiles().length)} Dockerfiles, no problems` : '');
  process.exit(all.length === 0 ? 0 : 1);
}
