// Bearer tokens for WHEP viewers, one per role, read from files Kubernetes mounts from a Secret. The files
// are read again at most twice a second, so a rotated Secret takes effect without a restart. Tokens are
// compared by their SHA-256 digests with timingSafeEqual: equal lengths, no early exit, nothing learnt from
// timing. A token is never logged or echoed.
//
// Also a claim's own token, for this phone only while the claim holds it: the operator names its digest in its
// replies to the sidecar's reports. A token not known yet may be a claim's just bound, so it makes the sidecar
// ask the operator at once (at most once a second) before it is refused. Claim tokens fail closed: when the
// operator has not confirmed them for claimValidityMs (it cannot be reached), they stop working.
//
// authenticate() answers with a grant: the role and which token it came from. A session keeps its grant, and
// the sidecar asks accepts(grant) twice a second: a token that left the set (a Secret rotated, a claim released
// or no longer confirmed) ends every session it opened.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type ViewerRole = 'view' | 'control';

const REREAD_MS = 500;
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;
const REFRESH_MIN_MS = 1000;

/** A claim's token as the operator names it: its role and the SHA-256 (hex) of the token. */
export interface ClaimToken {
  access: ViewerRole;
  sha256: string;
}
const MIN_TOKEN_LENGTH = 16;

/** What a token granted: its role, and which token it was (by digest), to be checked again later. */
export interface ViewerGrant {
  role: ViewerRole;
  /** The stream's own token files, or a claim's token named by the operator. */
  source: 'stream' | 'claim';
  digest: Buffer;
}

export interface ViewerTokensOptions {
  /** How long the operator's word on claim tokens holds: past it, with no new reply, they are refused. */
  claimValidityMs: number;
  /** Milliseconds on a monotonic clock (tests move it). */
  now?: () => number;
}

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
  #claimsConfirmedAt = -Infinity;
  readonly #claimValidityMs: number;
  readonly #now: () => number;
  #refresh: (() => Promise<void>) | undefined;
  #refreshedAt = -Infinity;

  constructor(files: Record<ViewerRole, string>, options: ViewerTokensOptions) {
    this.#files = files;
    this.#claimValidityMs = options.claimValidityMs;
    this.#now = options.now ?? (() => performance.now());
    this.#digests = this.#read();
    this.#readAt = this.#now();
  }

  /** What a bearer token grants, or undefined; control wins if both files hold the same token. */
  grantOf(authorization: string | undefined): ViewerGrant | undefined {
    const token = BEARER.exec(authorization ?? '')?.[1];
    if (!token) return undefined;
    const offered = digest(token);
    return this.#grantFor(offered);
  }

  /** Whether the token behind a grant still grants the same. */
  accepts(grant: ViewerGrant): boolean {
    const now = this.#grantFor(grant.digest);
    return now?.role === grant.role && now.source === grant.source;
  }

  /** grantOf, and for a well-formed token not known yet, one fresh look at the claim tokens first. */
  async authenticate(authorization: string | undefined): Promise<ViewerGrant | undefined> {
    const grant = this.grantOf(authorization);
    if (grant || !this.#refresh || !BEARER.test(authorization ?? '')) return grant;
    if (this.#now() - this.#refreshedAt < REFRESH_MIN_MS) return undefined;
    this.#refreshedAt = this.#now();
    try {
      await this.#refresh();
    } catch {
      return undefined;
    }
    return this.grantOf(authorization);
  }

  /** The claim tokens the operator says this phone takes now (replacing the previous ones), confirmed now. */
  setClaimTokens(tokens: readonly ClaimToken[]): void {
    this.#claimTokens = tokens.map((t) => ({ role: t.access, digest: Buffer.from(t.sha256, 'hex') }));
    this.#claimsConfirmedAt = this.#now();
  }

  #grantFor(offered: Buffer): ViewerGrant | undefined {
    const digests = this.#current();
    if (timingSafeEqual(offered, digests.control)) return { role: 'control', source: 'stream', digest: offered };
    if (timingSafeEqual(offered, digests.view)) return { role: 'view', source: 'stream', digest: offered };
    if (this.#now() - this.#claimsConfirmedAt > this.#claimValidityMs) return undefined;
    for (const claim of this.#claimTokens)
      if (timingSafeEqual(offered, claim.digest)) return { role: claim.role, source: 'claim', digest: offered };
    return undefined;
  }

  /** How to get the operator's current claim tokens (a report, whose reply sets them). */
  onUnknownToken(refresh: () => Promise<void>): void {
    this.#refresh = refresh;
  }

  #current(): Record<ViewerRole, Buffer> {
    if (this.#now() - this.#readAt > REREAD_MS) {
      this.#readAt = this.#now();
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
