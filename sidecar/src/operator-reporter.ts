// Tells the operator how this phone's sidecar is doing (config.report): whether frames flow, how many viewers
// and control viewers are connected, the encoder, fps and bitrate. The operator turns reports into the stream's
// status and a pool's busy phones. HTTPS to the operator's report endpoint, trusting only the CA in the config,
// with the pod's projected service-account token (re-read every time: the kubelet rotates it). A report goes out
// every intervalSeconds, and within a second when what it says changes (a viewer joins or leaves).
// A failed report is logged once per kind of failure and tried again next time; it never stops the stream.
// The reply names the claim tokens this phone takes (see viewer-tokens.ts).

import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import type { Logger } from 'pino';
import type { SidecarReport } from '../../generated/ts/api-types.ts';
import type { ClaimToken } from './webrtc/viewer-tokens.ts';

const CHECK_MS = 1000;
const REQUEST_TIMEOUT_MS = 5000;

export interface ReportSnapshot {
  streaming: boolean;
  viewers: number;
  controlViewers: number;
  /** The native encoder's name ("x264", ...), empty before start. */
  encoder: string;
  framesEncoded: number;
  bitrateKbps: number;
  error?: string;
  /** Why recording is stopped, while it is. */
  recordingStopped?: string;
}

export interface OperatorReporterOptions {
  url: string;
  tokenFile: string;
  /** The CAs to trust: a bundle file re-read for every report, or a fixed PEM (a sidecar run by hand). */
  ca: { file: string } | { pem: string };
  intervalMs: number;
  stream: { namespace: string; name: string };
  pod: string;
  snapshot: () => ReportSnapshot;
  /** The claim tokens the operator's reply names for this phone. */
  onClaimTokens?: (tokens: ClaimToken[]) => void;
  /** Each report's outcome (for the metrics). */
  onResult?: (ok: boolean) => void;
  log: Logger;
}

function encoderKind(name: string): SidecarReport['encoder'] {
  if (name === 'x264') return 'software';
  if (name.includes('vaapi')) return 'vaapi';
  if (name.includes('nvenc')) return 'nvenc';
  if (name.includes('passthrough')) return 'passthrough';
  return undefined;
}

/** The claim tokens of a reply, each checked for shape; anything else in it is ignored. */
function claimTokensOf(reply: string): ClaimToken[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply || '{}');
  } catch {
    return [];
  }
  const list = (parsed as { claimTokens?: unknown }).claimTokens;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (t): t is ClaimToken =>
      typeof t === 'object' &&
      t !== null &&
      ((t as ClaimToken).access === 'view' || (t as ClaimToken).access === 'control') &&
      typeof (t as ClaimToken).sha256 === 'string' &&
      /^[0-9a-f]{64}$/.test((t as ClaimToken).sha256),
  );
}

export class OperatorReporter {
  readonly #o: OperatorReporterOptions;
  #timer: NodeJS.Timeout | undefined;
  #sentAt = 0;
  #sentKey = '';
  #lastFrames = 0;
  #lastFramesAt = performance.now();
  /** The report on its way, if any: a forced report waits for it, then sends its own. */
  #inFlight: Promise<void> | undefined;
  #lastFailure = '';

  constructor(options: OperatorReporterOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer = setInterval(() => {
      void this.#tick();
    }, CHECK_MS);
    this.#timer.unref();
    void this.#tick();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Reports now, whatever the interval (a viewer came with a token not known yet); resolves when answered. */
  async reportNow(): Promise<void> {
    // One on its way may have been sent before what we want to learn was true: wait for it, then ask again.
    while (this.#inFlight) await this.#inFlight;
    await this.#tick(true);
  }

  async #tick(force = false): Promise<void> {
    if (this.#inFlight) return;
    const snapshot = this.#o.snapshot();
    const key = `${String(snapshot.streaming)}/${String(snapshot.viewers)}/${String(snapshot.controlViewers)}/${snapshot.error ?? ''}/${snapshot.recordingStopped ?? ''}`;
    const due = performance.now() - this.#sentAt >= this.#o.intervalMs;
    if (!force && !due && key === this.#sentKey) return;
    let done = (): void => undefined;
    this.#inFlight = new Promise<void>((resolve) => {
      done = resolve;
    });
    try {
      const reply = await this.#send(this.#report(snapshot));
      this.#o.onClaimTokens?.(claimTokensOf(reply));
      this.#o.onResult?.(true);
      this.#sentKey = key;
      if (this.#lastFailure) this.#o.log.info('reporting to the operator again');
      this.#lastFailure = '';
    } catch (error) {
      this.#o.onResult?.(false);
      const reason = error instanceof Error ? error.message : String(error);
      if (reason !== this.#lastFailure) this.#o.log.warn({ reason }, 'report to the operator failed');
      this.#lastFailure = reason;
    } finally {
      // A failure waits for the next interval too: an unreachable operator is not called every second.
      this.#sentAt = performance.now();
      this.#inFlight = undefined;
      done();
    }
  }

  #report(snapshot: ReportSnapshot): SidecarReport {
    const now = performance.now();
    const seconds = (now - this.#lastFramesAt) / 1000;
    const fps = seconds > 0 ? Math.max(0, snapshot.framesEncoded - this.#lastFrames) / seconds : 0;
    this.#lastFrames = snapshot.framesEncoded;
    this.#lastFramesAt = now;
    const encoder = encoderKind(snapshot.encoder);
    return {
      stream: this.#o.stream,
      pod: this.#o.pod,
      streaming: snapshot.streaming,
      viewers: Math.min(snapshot.viewers, 1000),
      controlViewers: Math.min(snapshot.controlViewers, 1000),
      ...(encoder ? { encoder } : {}),
      fps: Math.min(Math.round(fps * 10) / 10, 1000),
      bitrateKbps: Math.round(snapshot.bitrateKbps),
      ...(snapshot.error ? { error: snapshot.error.slice(0, 1024) } : {}),
      ...(snapshot.recordingStopped ? { recordingStopped: snapshot.recordingStopped.slice(0, 1024) } : {}),
    };
  }

  /** The mounted bundle; missing or empty until the operator has published it in this namespace. */
  async #bundle(file: string): Promise<string> {
    const pem = await readFile(file, 'utf8').catch(() => '');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`no CA bundle in ${file} yet`);
    return pem;
  }

  /** POSTs the report; resolves with the reply's body (at most 64 KiB of it). */
  async #send(report: SidecarReport): Promise<string> {
    const token = (await readFile(this.#o.tokenFile, 'utf8')).trim();
    const ca = 'file' in this.#o.ca ? await this.#bundle(this.#o.ca.file) : this.#o.ca.pem;
    const body = JSON.stringify(report);
    return new Promise<string>((resolve, reject) => {
      const req = request(
        this.#o.url,
        {
          method: 'POST',
          ca,
          timeout: REQUEST_TIMEOUT_MS,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            if (text.length < 65_536) text += chunk;
          });
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(text);
            else reject(new Error(`the operator answered ${String(status)}`));
          });
        },
      );
      req.on('timeout', () => {
        req.destroy(new Error('the operator did not answer in 5 s'));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}
