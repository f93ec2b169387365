// The report port faces every pod of the cluster: a stranger must not make it read a body, hold more than a
// report's worth of memory, or take all its connections. A real HTTPS server (HttpsEndpoints) with the report
// route as the operator wires it (SidecarReports.admit before the body); the TokenReview is answered by a fake
// AuthenticationV1Api (the apiserver's verdict is not what is under test here).

import { connect, type TLSSocket } from 'node:tls';
import type { AuthenticationV1Api } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReportStore, SidecarReports } from '../../operator/src/controller/sidecar-reports.ts';
import { HttpsEndpoints } from '../../operator/src/https-endpoints.ts';
import { createCa, issueServingCert } from '../../operator/src/webhook/certificates.ts';
import { SchemaValidator } from '../../schemas/runtime/validator.ts';

const log = pino({ level: 'silent' });
const GOOD = 'good-token';
const MAX_BODY = 8 * 1024;
const PER_ADDRESS = 3;

/** Answers TokenReviews: GOOD is pod ns/phone-1's token for the operator's audience, anything else is not. */
function tokenReviews(): AuthenticationV1Api & { reviews: number } {
  const api = {
    reviews: 0,
    createTokenReview: ({ body }: { body: { spec: { token: string; audiences: string[] } } }) => {
      api.reviews++;
      const ok = body.spec.token === GOOD;
      return Promise.resolve({
        status: ok
          ? {
              authenticated: true,
              audiences: body.spec.audiences,
              user: {
                username: 'system:serviceaccount:ns:default',
                extra: { 'authentication.kubernetes.io/pod-name': ['phone-1'] },
              },
            }
          : { authenticated: false },
      });
    },
  };
  return api as unknown as AuthenticationV1Api & { reviews: number };
}

describe('the report port', () => {
  let endpoints: HttpsEndpoints;
  let port = 0;
  let ca = '';
  let bodies = 0;
  const auth = tokenReviews();

  beforeAll(async () => {
    const authority = await createCa('test-ca', 1);
    const serving = await issueServingCert(authority, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }, 1);
    ca = authority.certPem;
    const reports = new SidecarReports({
      authentication: auth,
      validator: new SchemaValidator(),
      store: new ReportStore(),
      pod: () => undefined,
      onReport: () => undefined,
      log,
    });
    endpoints = new HttpsEndpoints(log, {
      maxBodyBytes: MAX_BODY,
      maxConnections: 100,
      maxConnectionsPerAddress: PER_ADDRESS,
    });
    endpoints.route(
      '/report',
      (req, body) => {
        bodies++;
        return Promise.resolve(reports.handle(req, body));
      },
      reports.admit,
    );
    port = await endpoints.listen(0, '127.0.0.1', { certPem: serving.certPem, keyPem: serving.keyPem, caPem: ca });
  });

  afterAll(async () => {
    await endpoints.close();
  });

  function open(): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
        resolve(socket);
      });
      socket.once('error', reject);
      socket.once('close', () => {
        reject(new Error('closed before the handshake'));
      });
    });
  }

  /** Sends a request's headers (and `body`, if any) and reads until the server answers or closes. */
  async function exchange(headers: Record<string, string>, body = ''): Promise<string> {
    const socket = await open();
    let received = '';
    const done = new Promise<string>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
        if (/\r\n\r\n[\s\S]*\}/.test(received)) resolve(received);
      });
      socket.on('close', () => {
        resolve(received);
      });
      socket.on('error', () => {
        resolve(received);
      });
    });
    const lines = Object.entries({ Host: 'localhost', 'Content-Type': 'application/json', ...headers }).map(
      ([k, v]) => `${k}: ${v}`,
    );
    socket.write(`POST /report HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`);
    const reply = await done;
    socket.destroy();
    return reply;
  }

  it('refuses a request without a valid token on its headers, before reading a byte of the body', async () => {
    const before = bodies;
    // A body announced, none sent: the answer comes anyway, so the body was never waited for.
    for (const authorization of [undefined, 'Bearer bad-token']) {
      const reply = await exchange({
        'Content-Length': String(MAX_BODY - 1),
        ...(authorization ? { Authorization: authorization } : {}),
      });
      expect(reply).toMatch(/^HTTP\/1\.1 401 /);
    }
    expect(bodies).toBe(before);
  });

  it('refuses a body longer than a report can be, announced or not', async () => {
    const announced = await exchange({ Authorization: `Bearer ${GOOD}`, 'Content-Length': String(MAX_BODY + 1) });
    expect(announced).toMatch(/^HTTP\/1\.1 413 /);
    const chunk = 'x'.repeat(MAX_BODY + 100);
    const chunked = await exchange(
      { Authorization: `Bearer ${GOOD}`, 'Transfer-Encoding': 'chunked' },
      `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
    );
    expect(chunked).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('reads the body of an authenticated report (and judges it)', async () => {
    const reply = await exchange({ Authorization: `Bearer ${GOOD}`, 'Content-Length': '2' }, '{}');
    expect(reply).toMatch(/^HTTP\/1\.1 400 /); // read, parsed, and refused by the schema
  });

  it('holds one address to its connection limit, and takes connections again once they close', async () => {
    const held = await Promise.all(Array.from({ length: PER_ADDRESS }, () => open()));
    await expect(open()).rejects.toThrow();
    expect(endpoints.refusedConnections).toBeGreaterThan(0);
    for (const socket of held) socket.destroy();
    // The server learns of the closes a moment later.
    let again: TLSSocket | undefined;
    for (let attempt = 0; !again && attempt < 50; attempt++) again = await open().catch(() => undefined);
    expect(again).toBeDefined();
    again?.destroy();
  });
});
