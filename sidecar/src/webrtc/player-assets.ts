// The player page's files, served by the sidecar from memory. The player is TypeScript (sidecar/player/),
// type-checked with the rest; it reaches the browser through Node's own type stripping, like the sidecar
// itself, together with the generated FlatBuffers code it shares with the sidecar (schemas/fbs is the one
// source of the data-channel format) and the flatbuffers runtime, so there is no bundler and no build output.

import { readFileSync, readdirSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface PlayerAsset {
  type: string;
  body: Buffer;
}

const ROOT = new URL('../../../', import.meta.url);
const JAVASCRIPT = 'text/javascript; charset=utf-8';

/** TypeScript to JavaScript by stripping types (the generated FlatBuffers code is erasable too: no enums). */
export function stripTypes(source: string): string {
  // Node marks stripTypeScriptTypes experimental and warns on every first use; the warning is noise here.
  const warn = process.emitWarning.bind(process);
  process.emitWarning = () => undefined;
  try {
    return stripTypeScriptTypes(source);
  } finally {
    process.emitWarning = warn;
  }
}

/** Points the player's imports at the paths this server serves them under (no import map: the CSP stays strict). */
function playerImports(code: string): string {
  return code
    .replaceAll("'../../generated/ts/fbs/", "'./fbs/")
    .replaceAll("from 'flatbuffers'", "from './flatbuffers/flatbuffers.js'")
    .replace(/from '\.\/([a-z-]+)\.ts'/g, "from './$1.js'");
}

export class PlayerAssets {
  readonly #assets = new Map<string, PlayerAsset>();

  constructor() {
    const read = (path: string): string => readFileSync(fileURLToPath(new URL(path, ROOT)), 'utf8');
    const add = (path: string, type: string, text: string): void => {
      this.#assets.set(path, { type, body: Buffer.from(text) });
    };
    add('/player/', 'text/html; charset=utf-8', read('sidecar/player/index.html'));
    for (const file of readdirSync(new URL('sidecar/player/', ROOT))) {
      if (file.endsWith('.ts'))
        add(
          `/player/${file.replace(/\.ts$/, '.js')}`,
          JAVASCRIPT,
          playerImports(stripTypes(read(`sidecar/player/${file}`))),
        );
    }
    for (const file of ['viewer_generated.ts', 'input_generated.ts'])
      add(
        `/player/fbs/${file}`,
        JAVASCRIPT,
        stripTypes(read(`generated/ts/fbs/${file}`)).replaceAll(
          "from 'flatbuffers'",
          "from '../flatbuffers/flatbuffers.js'",
        ),
      );
    for (const file of readdirSync(new URL('node_modules/flatbuffers/mjs/', ROOT)))
      if (file.endsWith('.js'))
        add(`/player/flatbuffers/${file}`, JAVASCRIPT, read(`node_modules/flatbuffers/mjs/${file}`));
  }

  get(path: string): PlayerAsset | undefined {
    return this.#assets.get(path);
  }
}
