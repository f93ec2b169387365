// Bearer tokens for WHEP viewers, one per role, read from files Kubernetes mounts from a Secret. The files
// are read again at most every few seconds, so a rotated Secret takes effect without a restart. Tokens are
// compared by their SHA-256 digests with timingSafeEqual: equal lengths, no early exit, nothing learnt from
// timing. A token is never logged or echoed.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type ViewerRole = 'view' | 'control';

const REREAD_MS = 5000;
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

  constructor(files: Record<ViewerRole, string>) {
    this.#files = files;
    this.#digests = this.#read();
    this.#readAt = Date.now();
  }

  /** The role a bearer token grants, or undefined; control wins if both files hold the same token. */
  roleOf(authorization: string | undefined): ViewerRole | undefined {
    const token = /^Bearer ([\x21-\x7e]{1,512})$/.exec(authorization ?? '')?.[1];
    if (!token) return undefined;
    const digests = this.#current();
    const offered = digest(token);
    if (timingSafeEqual(offered, digests.control)) return 'control';
    if (timingSafeEqual(offered, digests.view)) return 'view';
    return undefined;
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
