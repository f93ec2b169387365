// ViewerTokens over what it reads that a person or a client controls: the token files (a Secret's contents, which
// anyone with write access to the Secret sets) and the Authorization header of every WHEP request.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ViewerTokenError, ViewerTokens } from '../../../sidecar/src/webrtc/viewer-tokens.ts';
import { FUZZ_TIMEOUT_MS, fuzzRuns } from './fuzz-runs.ts';

const dir = mkdtempSync(join(tmpdir(), 'cloudphone-token-fuzz-'));
const files = { view: join(dir, 'view'), control: join(dir, 'control') };
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const printable = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 80,
});
const fileContent = fc.oneof(
  printable.map((t) => Buffer.from(t)),
  printable.map((t) => Buffer.from(`${t}\n`)),
  printable.map((t) => Buffer.from(`${t}\r\n`)),
  fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)),
  fc.string({ unit: 'binary', maxLength: 60 }).map((t) => Buffer.from(t)),
);

/** The token a file's bytes hold, as the sidecar should read them, or undefined when it must refuse the file. */
function tokenOf(content: Buffer): string | undefined {
  const text = content.toString('utf8').replace(/\r?\n$/, '');
  return text.length >= 16 && /^[\x21-\x7e]+$/.test(text) ? text : undefined;
}

describe('ViewerTokens under fuzzing', { timeout: FUZZ_TIMEOUT_MS }, () => {
  it('takes a token file only when it holds one printable token of 16 or more characters, and grants exactly it', () => {
    fc.assert(
      fc.property(fileContent, fileContent, fc.string({ unit: 'binary', maxLength: 100 }), (view, control, header) => {
        writeFileSync(files.view, view);
        writeFileSync(files.control, control);
        const viewToken = tokenOf(view);
        const controlToken = tokenOf(control);
        let tokens: ViewerTokens;
        try {
          tokens = new ViewerTokens(files, { claimValidityMs: 10_000 });
        } catch (error) {
          expect(error).toBeInstanceOf(ViewerTokenError);
          // The reason names the file, never its contents.
          expect((error as Error).message).toMatch(
            /^the (view|control) token in \S+ must be at least 16 printable characters$/,
          );
          expect(viewToken === undefined || controlToken === undefined).toBe(true);
          return;
        }
        expect(viewToken !== undefined && controlToken !== undefined).toBe(true);
        if (controlToken) expect(tokens.grantOf(`Bearer ${controlToken}`)?.role).toBe('control');
        if (viewToken && viewToken !== controlToken) expect(tokens.grantOf(`Bearer ${viewToken}`)?.role).toBe('view');
        // Any other header grants nothing, and nothing throws.
        const grant = tokens.grantOf(header);
        if (header !== `Bearer ${String(viewToken)}` && header !== `Bearer ${String(controlToken)}`)
          expect(grant).toBeUndefined();
        expect(tokens.grantOf(`Bearer ${String(controlToken)}x`)).toBeUndefined();
        expect(tokens.grantOf(`bearer ${String(controlToken)}`)).toBeUndefined();
      }),
      fuzzRuns(),
    );
  });
});
