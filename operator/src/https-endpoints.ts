// The operator's one HTTPS server: admission webhooks for the apiserver and the sidecars' report endpoint.
// It reloads its certificate in place when the CertificateManager renews it.

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { Logger } from 'pino';
import type { TlsMaterial } from './webhook/certificate-manager.ts';

export interface HttpReply {
  status: number;
  body: unknown;
}
export type RouteHandler = (request: IncomingMessage, body: Buffer) => Promise<HttpReply>;

/** An AdmissionReview of a big pod stays well under this; the apiserver itself caps requests at 3 MiB. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export class HttpsEndpoints {
  private server: Server | undefined;
  private readonly routes = new Map<string, RouteHandler>();
  private readonly log: Logger;
  /** TLS connections accepted so far: a client that does not reuse connections shows here. */
  connections = 0;

  constructor(log: Logger) {
    this.log = log;
  }

  /** POST routes only: everything the operator serves over HTTPS is a POST of JSON. */
  route(path: string, handler: RouteHandler): void {
    this.routes.set(path, handler);
  }

  async listen(port: number, host: string, tls: TlsMaterial): Promise<number> {
    this.server = createServer({ cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' }, (req, res) => {
      void this.handle(req, res);
    });
    this.server.on('secureConnection', () => {
      this.connections++;
    });
    // The apiserver keeps only a few idle connections per webhook: a longer keep-alive saves handshakes.
    this.server.keepAliveTimeout = 60_000;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.listen(port, host);
    await once(this.server, 'listening');
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  /** New connections use the new certificate; open ones finish with the old. */
  reload(tls: TlsMaterial): void {
    this.server?.setSecureContext({ cert: tls.certPem, key: tls.keyPem });
    this.log.info('reloaded the serving certificate');
  }

  async close(): Promise<void> {
    if (!this.server) return;
    const closed = once(this.server, 'close');
    this.server.close();
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      this.log.debug({ path: req.url, status, durationMs }, 'request served');
    };
    const path = (req.url ?? '').split('?')[0] ?? '';
    const handler = this.routes.get(path);
    if (!handler) {
      reply(404, { message: `no route ${path}` });
      return;
    }
    if (req.method !== 'POST') {
      reply(405, { message: 'only POST is served here' });
      return;
    }
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
      reply(415, { message: 'send application/json' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          reply(413, { message: `bodies are limited to ${String(MAX_BODY_BYTES)} bytes` });
          return;
        }
        chunks.push(chunk);
      }
    } catch {
      return; // the client went away
    }
    try {
      const result = await handler(req, Buffer.concat(chunks));
      reply(result.status, result.body);
    } catch (error) {
      this.log.error({ err: error, path }, 'request handler failed');
      reply(500, { message: 'internal error' });
    }
  }
}
