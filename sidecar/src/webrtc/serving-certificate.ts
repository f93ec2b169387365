// The certificate and key the viewer server presents over HTTPS, from the files Kubernetes mounts from a
// kubernetes.io/tls Secret. A pair is checked before use (node's TLS layer refuses a key that does not match
// its certificate, or PEM that does not parse), and the files are read again every few seconds, so a
// renewed certificate (cert-manager, a rotated Secret) is served without a restart; a broken pair mid-rotation
// keeps the one in use until the files read cleanly.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

const REREAD_MS = 5000;

export class ServingCertificateError extends Error {
  override name = 'ServingCertificateError';
}

export interface CertificatePair {
  cert: string;
  key: string;
}

export class ServingCertificate {
  readonly #files: { certFile: string; keyFile: string };
  #pair: CertificatePair;
  #digest: string;

  /** Reads and checks the pair; throws ServingCertificateError (naming the file, never its content). */
  constructor(files: { certFile: string; keyFile: string }) {
    this.#files = files;
    this.#pair = this.#read();
    this.#digest = digestOf(this.#pair);
  }

  get pair(): CertificatePair {
    return this.#pair;
  }

  /** Calls onChange with the new pair whenever the files hold a different, valid one; returns a stop function. */
  watch(onChange: (pair: CertificatePair) => void, onError: (error: Error) => void): () => void {
    const timer = setInterval(() => {
      let pair: CertificatePair;
      try {
        pair = this.#read();
      } catch (error) {
        onError(error as Error);
        return;
      }
      const digest = digestOf(pair);
      if (digest === this.#digest) return;
      this.#pair = pair;
      this.#digest = digest;
      onChange(pair);
    }, REREAD_MS);
    timer.unref();
    return () => {
      clearInterval(timer);
    };
  }

  #read(): CertificatePair {
    const read = (file: string, what: string): string => {
      try {
        return readFileSync(file, 'utf8');
      } catch (error) {
        throw new ServingCertificateError(
          `cannot read the ${what} file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
    };
    const pair = { cert: read(this.#files.certFile, 'TLS certificate'), key: read(this.#files.keyFile, 'TLS key') };
    try {
      createSecureContext(pair);
    } catch (error) {
      // OpenSSL's reason (e.g. "key values mismatch", "no start line") says what is wrong without the PEM.
      throw new ServingCertificateError(
        `the TLS certificate ${this.#files.certFile} and key ${this.#files.keyFile} are not a usable pair: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
    return pair;
  }
}

function digestOf(pair: CertificatePair): string {
  return createHash('sha256').update(pair.cert).update('\0').update(pair.key).digest('hex');
}
