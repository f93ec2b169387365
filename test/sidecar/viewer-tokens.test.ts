import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ViewerTokens } from '../../sidecar/src/webrtc/viewer-tokens.ts';

const VIEW = 'view-token-0123456789';
const CONTROL = 'control-token-0123456789';
const CLAIM = 'claim-token-0123456789abcdef';
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const bearer = (token: string): string => `Bearer ${token}`;

let dir = '';
let clock = 0;
let tokens: ViewerTokens;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'viewer-tokens-'));
  writeFileSync(join(dir, 'view'), `${VIEW}\n`);
  writeFileSync(join(dir, 'control'), CONTROL);
  clock = 1000;
  tokens = new ViewerTokens(
    { view: join(dir, 'view'), control: join(dir, 'control') },
    { claimValidityMs: 30_000, now: () => clock },
  );
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('ViewerTokens', () => {
  it("grants each stream token its role, and stops accepting a grant once its Secret's file changes", () => {
    const control = tokens.grantOf(bearer(CONTROL));
    const view = tokens.grantOf(bearer(VIEW));
    expect(control).toMatchObject({ role: 'control', source: 'stream' });
    expect(view).toMatchObject({ role: 'view', source: 'stream' });
    expect(tokens.grantOf(bearer('someone-else-0123456789'))).toBeUndefined();
    expect(tokens.grantOf(`Basic ${CONTROL}`)).toBeUndefined();

    writeFileSync(join(dir, 'control'), 'rotated-control-0123456789');
    clock += 400; // not read again yet
    expect(control && tokens.accepts(control)).toBe(true);
    clock += 200; // read again at most every 500 ms
    expect(control && tokens.accepts(control)).toBe(false);
    expect(view && tokens.accepts(view)).toBe(true);
    expect(tokens.grantOf(bearer('rotated-control-0123456789'))).toMatchObject({ role: 'control' });
  });

  it('keeps the tokens it had while a rotated file reads badly (the kubelet swapping its symlink)', () => {
    const control = tokens.grantOf(bearer(CONTROL));
    writeFileSync(join(dir, 'control'), 'short');
    clock += 600;
    expect(control && tokens.accepts(control)).toBe(true);
  });

  it("accepts a claim's token only while the operator names it, and not after it stops confirming it", () => {
    tokens.setClaimTokens([{ access: 'control', sha256: sha256(CLAIM) }]);
    const claim = tokens.grantOf(bearer(CLAIM));
    expect(claim).toMatchObject({ role: 'control', source: 'claim' });
    if (!claim) return;

    // Confirmed again by each reply: still good long after the first.
    for (let i = 0; i < 5; i++) {
      clock += 20_000;
      tokens.setClaimTokens([{ access: 'control', sha256: sha256(CLAIM) }]);
      expect(tokens.accepts(claim)).toBe(true);
    }
    // The operator cannot be reached: no reply for longer than the validity, and the claim fails closed,
    // while the stream's own tokens go on working.
    clock += 30_001;
    expect(tokens.accepts(claim)).toBe(false);
    expect(tokens.grantOf(bearer(CLAIM))).toBeUndefined();
    expect(tokens.grantOf(bearer(CONTROL))).toMatchObject({ role: 'control' });

    // The operator answers again, and then releases the claim.
    tokens.setClaimTokens([{ access: 'control', sha256: sha256(CLAIM) }]);
    expect(tokens.accepts(claim)).toBe(true);
    tokens.setClaimTokens([]);
    expect(tokens.accepts(claim)).toBe(false);
  });

  it('does not carry a grant over to a token that now grants something else', () => {
    tokens.setClaimTokens([{ access: 'control', sha256: sha256(CLAIM) }]);
    const claim = tokens.grantOf(bearer(CLAIM));
    tokens.setClaimTokens([{ access: 'view', sha256: sha256(CLAIM) }]);
    expect(claim && tokens.accepts(claim)).toBe(false);
  });

  it('asks the operator about a token it does not know, at most once a second', async () => {
    let asked = 0;
    let bound: { access: 'view'; sha256: string }[] = [];
    tokens.onUnknownToken(() => {
      asked++;
      tokens.setClaimTokens(bound);
      return Promise.resolve();
    });
    expect(await tokens.authenticate(bearer('unknown-token-0123456789'))).toBeUndefined();
    expect(asked).toBe(1);
    bound = [{ access: 'view', sha256: sha256(CLAIM) }]; // the operator binds a claim just after
    expect(await tokens.authenticate(bearer(CLAIM))).toBeUndefined(); // within the second: not asked
    expect(asked).toBe(1);
    clock += 1000;
    expect(await tokens.authenticate(bearer(CLAIM))).toMatchObject({ role: 'view', source: 'claim' });
    expect(asked).toBe(2);
  });
});
