// The viewer-facing HTTP server: WHEP (draft-ietf-wish-whep) and the player page, on the port the stream
// names (kept apart from /metrics). WHEP:
//   POST   /whep                 SDP offer (application/sdp, at most 64 KiB) -> 201, Location, SDP answer,
//                                ICE servers as Link headers (RFC 9725 section 4.6)
//   PATCH  /whep/sessions/<id>   trickle ICE (application/trickle-ice-sdpfrag) -> 204
//   DELETE /whep/sessions/<id>   -> 200
// Every WHEP request needs a bearer token; the token's role (view or control) is the session's, and only the
// token that made a session may change or end it. Errors are 4xx/5xx with a one-line plain-text reason.
// Cross-origin requests are allowed: auth is a bearer token, never a cookie, so a page elsewhere can only
// use a token it already holds. With a serving certificate it is HTTPS (renewed certificates are picked up
// while it runs); without one, plain HTTP for a TLS-terminating ingress in front of it.

import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { once } from 'node:events';
import type { Logger } from 'pino';
import { iceLinkHeaders, type IceServerSetting } from './ice-config.ts';
import type { PlayerAssets } from './player-assets.ts';
import type { ServingCertificate } from './serving-certificate.ts';
import { trickleCandidates } from './trickle-fragment.ts';
import type { ViewerGrant, ViewerTokens } from './viewer-tokens.ts';
import type { WebRtcViewers } from './webrtc-viewers.ts';
import { WhepError } from './whep-error.ts';

const MAX_BODY_BYTES = 64 * 1024;
const SESSION_PATH = /^\/whep\/sessions\/([0-9a-f-]{36})$/;
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, If-Match',
  'Access-Control-Allow-Methods': 'GET, POST, PATCH, DELETE, OPTIONS',
  'Access-Control-Expose-Headers': 'Location, Link, ETag',
};

export interface ViewerServerOptions {
  host: string;
  port: number;
  tokens: ViewerTokens;
  viewers: WebRtcViewers;
  iceServers: IceServerSetting[];
  player: PlayerAssets;
  /** HTTPS with this certificate; absent: plain HTTP. */
  tls?: ServingCertificate;
  log: Logger;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new WhepError(413, 'the body is larger than 64 KiB');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new WhepError(413, 'the body is larger than 64 KiB');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function requireType(req: IncomingMessage, type: string): void {
  const actual = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (actual !== type) throw new WhepError(415, `the body must be ${type}`);
}

export class ViewerServer {
  readonly #options: ViewerServerOptions;
  readonly #server: Server | HttpsServer;
  #port = 0;
  #stopWatching: (() => void) | undefined;

  constructor(options: ViewerServerOptions) {
    this.#options = options;
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.#handle(req, res).catch((error: unknown) => {
        this.#fail(res, error);
      });
    };
    this.#server = options.tls ? createHttpsServer({ ...options.tls.pair }, handler) : createServer(handler);
    // Slow-loris and idle clients: a WHEP exchange is a few small requests.
    this.#server.requestTimeout = 10_000;
    this.#server.headersTimeout = 5000;
  }

  get port(): number {
    return this.#port;
  }

  /** Whether it serves HTTPS. */
  get secure(): boolean {
    return this.#options.tls !== undefined;
  }

  async listen(): Promise<void> {
    this.#server.listen(this.#options.port, this.#options.host);
    await once(this.#server, 'listening');
    const address = this.#server.address();
    this.#port = typeof address === 'object' && address ? address.port : this.#options.port;
    const server = this.#server;
    if (this.#options.tls && 'setSecureContext' in server)
      this.#stopWatching = this.#options.tls.watch(
        (pair) => {
          server.setSecureContext(pair);
          this.#options.log.info('viewer TLS certificate renewed');
        },
        (error) => {
          this.#options.log.warn({ error: error.message }, 'viewer TLS certificate unreadable; keeping the one in use');
        },
      );
  }

  async close(): Promise<void> {
    this.#stopWatching?.();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.#server.close(() => {
        resolve();
      }),
    );
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'OPTIONS') {
      // An authenticated OPTIONS also gets the ICE servers, so a client can gather relay candidates before
      // it makes its offer (WHEP allows this); a preflight without a token gets only CORS.
      // No session yet: TURN REST credentials for a one-off id (the POST's answer brings the session's own).
      const links = (await this.#options.tokens.authenticate(req.headers.authorization))
        ? iceLinkHeaders(this.#options.iceServers, randomUUID())
        : [];
      res
        .writeHead(204, { ...CORS, 'Accept-Post': 'application/sdp', ...(links.length > 0 ? { Link: links } : {}) })
        .end();
      return;
    }
    if (path === '/whep') {
      if (req.method !== 'POST') throw new WhepError(405, 'use POST', { Allow: 'POST, OPTIONS' });
      await this.#offer(req, res);
      return;
    }
    const session = SESSION_PATH.exec(path)?.[1];
    if (session !== undefined) {
      if (req.method === 'PATCH') await this.#trickle(req, res, session);
      else if (req.method === 'DELETE') await this.#end(req, res, session);
      else throw new WhepError(405, 'use PATCH or DELETE', { Allow: 'PATCH, DELETE, OPTIONS' });
      return;
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      const asset = this.#options.player.get(path === '/' ? '/player/' : path);
      if (asset) {
        res.writeHead(200, {
          'Content-Type': asset.type,
          'Cache-Control': 'no-cache',
          'X-Content-Type-Options': 'nosniff',
          'Content-Security-Policy':
            "default-src 'self'; script-src 'self'; connect-src 'self'; media-src 'self' blob:; style-src 'self' 'unsafe-inline'",
        });
        res.end(req.method === 'HEAD' ? undefined : asset.body);
        return;
      }
    }
    throw new WhepError(404, 'not found');
  }

  async #grant(req: IncomingMessage): Promise<ViewerGrant> {
    const grant = await this.#options.tokens.authenticate(req.headers.authorization);
    if (!grant)
      throw new WhepError(401, 'a valid bearer token is required', { 'WWW-Authenticate': 'Bearer realm="cloudphone"' });
    return grant;
  }

  async #offer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const grant = await this.#grant(req);
    requireType(req, 'application/sdp');
    const offer = await readBody(req);
    const { id, answer } = await this.#options.viewers.open(offer, grant);
    res.writeHead(201, {
      ...CORS,
      'Content-Type': 'application/sdp',
      Location: `/whep/sessions/${id}`,
      ETag: `"${id}"`,
      Link: iceLinkHeaders(this.#options.iceServers, id),
    });
    res.end(answer);
  }

  async #owned(req: IncomingMessage, id: string): Promise<void> {
    const grant = await this.#grant(req);
    const session = this.#options.viewers.get(id);
    if (!session) throw new WhepError(404, 'no such session');
    if (!timingSafeEqual(session.grant.digest, grant.digest))
      throw new WhepError(403, 'this token may not change that session');
  }

  async #trickle(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    await this.#owned(req, id);
    requireType(req, 'application/trickle-ice-sdpfrag');
    const fragment = await readBody(req);
    if (/^a=ice-ufrag:/m.test(fragment) && !/^a=candidate:/m.test(fragment))
      throw new WhepError(501, 'ICE restarts are not supported: make a new session');
    const session = this.#options.viewers.get(id);
    for (const { candidate, mid } of trickleCandidates(fragment)) session?.addRemoteCandidate(candidate, mid);
    res.writeHead(204, CORS).end();
  }

  async #end(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    await this.#owned(req, id);
    this.#options.viewers.get(id)?.close('the viewer ended the session');
    res.writeHead(200, CORS).end();
  }

  #fail(res: ServerResponse, error: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (error instanceof WhepError) {
      res.writeHead(error.status, { ...CORS, ...error.headers, 'Content-Type': 'text/plain' });
      res.end(`${error.message}\n`);
      return;
    }
    this.#options.log.warn({ error: error instanceof Error ? error.message : String(error) }, 'whep request failed');
    res.writeHead(500, { ...CORS, 'Content-Type': 'text/plain' }).end('internal error\n');
  }
}
