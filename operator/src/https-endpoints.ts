// An HTTPS server of the operator's: one for the apiserver's admission webhooks, another, on its own port, for the
// sidecars' reports. A route may admit or refuse a request from its headers before a byte of its body is read (the
// report endpoint authenticates first); bodies and connections are bounded. It reloads its certificate in place
// when the CertificateManager renews it.

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import type { Logger } from 'pino';
import type { TlsMaterial } from './webhook/certificate-manager.ts';

export interface HttpReply {
  status: number;
  body: unknown;
}
export type RouteHandler = (request: IncomingMessage, body: Buffer) => Promise<HttpReply>;
/** Looks at a request's headers only: a reply refuses it before its body is read; undefined lets it in. */
export type RouteAdmission = (request: IncomingMessage) => Promise<HttpReply | undefined>;

export interface HttpsEndpointsOptions {
  /** Bodies longer than this are refused (413) without being read further. */
  maxBodyBytes: number;
  /** Open connections, in all and from one address; connections beyond are closed at once. */
  maxConnections: number;
  maxConnectionsPerAddress: number;
}

/** An AdmissionReview of a big pod stays well under this; the apiserver itself caps requests at 3 MiB. */
export const ADMISSION_LIMITS: HttpsEndpointsOptions = {
  maxBodyBytes: 4 * 1024 * 1024,
  maxConnections: 1024,
  maxConnectionsPerAddress: 1024,
};

export class HttpsEndpoints {
  private server: Server | undefined;
  private readonly routes = new Map<string, { handler: RouteHandler; admit?: RouteAdmission }>();
  private readonly log: Logger;
  private readonly limits: HttpsEndpointsOptions;
  private readonly perAddress = new Map<string, number>();
  /** TLS connections accepted so far: a client that does not reuse connections shows here. */
  connections = 0;
  /** Connections closed at once for being over a limit. */
  refusedConnections = 0;

  constructor(log: Logger, limits: HttpsEndpointsOptions = ADMISSION_LIMITS) {
    this.log = log;
    this.limits = limits;
  }

  /** POST routes only: everything the operator serves over HTTPS is a POST of JSON. */
  route(path: string, handler: RouteHandler, admit?: RouteAdmission): void {
    this.routes.set(path, { handler, ...(admit ? { admit } : {}) });
  }

  async listen(port: number, host: string, tls: TlsMaterial): Promise<number> {
    this.server = createServer({ cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' }, (req, res) => {
      void this.handle(req, res);
    });
    // Counted at TCP accept, before the TLS handshake: a client opening connections it never uses is held to
    // the limits too.
    this.server.maxConnections = this.limits.maxConnections;
    this.server.on('drop', () => {
      this.refusedConnections++;
    });
    this.server.on('connection', (socket: Socket) => {
      const address = socket.remoteAddress ?? '';
      const open = (this.perAddress.get(address) ?? 0) + 1;
      if (open > this.limits.maxConnectionsPerAddress) {
        this.refusedConnections++;
        socket.destroy();
        return;
      }
      this.perAddress.set(address, open);
      socket.once('close', () => {
        const left = (this.perAddress.get(address) ?? 1) - 1;
        if (left <= 0) this.perAddress.delete(address);
        else this.perAddress.set(address, left);
      });
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
    const route = this.routes.get(path);
    if (!route) {
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
    const max = this.limits.maxBodyBytes;
    // A refused body is not read: the connection goes once the reply is out.
    const socket = req.socket;
    const hangUp = (): void => {
      res.setHeader('Connection', 'close');
      res.once('finish', () => socket.destroy());
    };
    const tooLong = (): void => {
      hangUp();
      reply(413, { message: `bodies are limited to ${String(max)} bytes` });
    };
    if (Number(req.headers['content-length'] ?? 0) > max) {
      tooLong();
      return;
    }
    try {
      const refused = route.admit ? await route.admit(req) : undefined;
      if (refused) {
        hangUp();
        reply(refused.status, refused.body);
        return;
      }
    } catch (error) {
      this.log.error({ err: error, path }, 'request admission failed');
      reply(500, { message: 'internal error' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > max) {
          tooLong();
          return;
        }
        chunks.push(chunk);
      }
    } catch {
      return; // the client went away
    }
    try {
      const result = await route.handler(req, Buffer.concat(chunks));
      reply(result.status, result.body);
    } catch (error) {
      this.log.error({ err: error, path }, 'request handler failed');
      reply(500, { message: 'internal error' });
    }
  }
}
