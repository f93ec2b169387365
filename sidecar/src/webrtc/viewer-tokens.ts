// Bearer tokens for WHEP viewers, one per role, read from files Kubernetes mounts from a Secret. The files
// are read again at most every few seconds, so a rotated Secret takes effect without a restart. Tokens are
// compared by their SHA-256 digests with timingSafeEqual: equal lengths, no early exit, nothing learnt from
// timing. A token is never logged or echoed.
//
// Also a claim's own token, for this phone only while the claim holds it: the operator names its digest in its
// replies to the sidecar's reports. A token not known yet may be a claim's just bound, so it makes the sidecar
// ask the operator at once (at most once a second) before it is refused.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type ViewerRole = 'view' | 'control';

const REREAD_MS = 5000;
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;
const REFRESH_MIN_MS = 1000;

/** A claim's token as the operator names it: its role and the SHA-256 (hex) of the token. */
export interface ClaimToken {
  access: ViewerRole;
  sha256: string;
}
const MIN_TOKEN_LENGTH = 16;

export class ViewerTokenError extends Error {
  override name = 'ViewerTokenError';
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export class ViewerTokens {
  readonly #files: Record<ViewerRole, string>;
  #digests: Record<ViewerRole, Buffer>;
  #readAt = 0;
  #claimTokens: { role: ViewerRole; digest: Buffer }[] = [];
  #refresh: (() => Promise<void>) | undefined;
  #refreshedAt = -Infinity;

  constructor(files: Record<ViewerRole, string>) {
    this.#files = files;
    this.#digests = this.#read();
    this.#readAt = Date.now();
  }

  /** The role a bearer token grants, or undefined; control wins if both files hold the same token. */
  roleOf(authorization: string | undefined): ViewerRole | undefined {
    const token = BEARER.exec(authorization ?? '')?.[1];
    if (!token) return undefined;
    const digests = this.#current();
    const offered = digest(token);
    if (timingSafeEqual(offered, digests.control)) return 'control';
    if (timingSafeEqual(offered, digests.view)) return 'view';
    for (const claim of this.#claimTokens) if (timingSafeEqual(offered, claim.digest)) return claim.role;
    return undefined;
  }

  /** roleOf, and for a well-formed token not known yet, one fresh look at the claim tokens first. */
  async authenticate(authorization: string | undefined): Promise<ViewerRole | undefined> {
    const role = this.roleOf(authorization);
    if (role || !this.#refresh || !BEARER.test(authorization ?? '')) return role;
    if (performance.now() - this.#refreshedAt < REFRESH_MIN_MS) return undefined;
    this.#refreshedAt = performance.now();
    try {
      await this.#refresh();
    } catch {
      return undefined;
    }
    return this.roleOf(authorization);
  }

  /** The claim tokens the operator says this phone takes now (replacing the previous ones). */
  setClaimTokens(tokens: readonly ClaimToken[]): void {
    this.#claimTokens = tokens.map((t) => ({ role: t.access, digest: Buffer.from(t.sha256, 'hex') }));
  }

  /** How to get the operator's current claim tokens (a report, whose reply sets them). */
  onUnknownToken(refresh: () => Promise<void>): void {
    this.#refresh = refresh;
  }

  #current(): Record<ViewerRole, Buffer> {
    if (Date.now() - this.#readAt > REREAD_MS) {
      this.#readAt = Date.now();
      try {
        this.#digests = this.#read();
      } catch {
        // Mid-rotation the kubelet swaps a symlink; keep the tokens we had until the files read cleanly.
      }
    }
    return this.#digests;
  }

  #read(): Record<ViewerRole, Buffer> {
    const read = (role: ViewerRole): Buffer => {
      let text: string;
      try {
        text = readFileSync(this.#files[role], 'utf8').replace(/\r?\n$/, '');
      } catch (error) {
        throw new ViewerTokenError(
          `cannot read the ${role} token file ${this.#files[role]}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
      if (text.length < MIN_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(text))
        throw new ViewerTokenError(
          `the ${role} token in ${this.#files[role]} must be at least ${String(MIN_TOKEN_LENGTH)} printable characters`,
        );
      return digest(text);
    };
    return { view: read('view'), control: read('control') };
  }
}
