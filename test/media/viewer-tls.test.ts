// The viewer port over HTTPS, as a stream with webrtc.whep.tlsSecretRef gets it: the sidecar presents the
// certificate from the Secret's files, serves nothing in clear text (bearer tokens never cross a network
// unencrypted), Chromium plays the player page over it trusting exactly that certificate, and a renewed
// certificate is presented without a restart while a broken one is not taken.

import { createHash, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { pino } from 'pino';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, issueServingCert, type KeyPairPem } from '../../operator/src/webhook/certificates.ts';
import { loadSidecarConfig } from '../../sidecar/src/config.ts';
import { Sidecar } from '../../sidecar/src/sidecar.ts';
import { waitFor } from '../cluster/wait-for.ts';
import { launchChromium, openPlayer, shownFrames } from './chromium-player.ts';
import { sidecarConfig, tempDir } from './media-peers.ts';
import { CONTROL_TOKEN, startWhepPhone, type WhepPhone } from './webrtc-peers.ts';

const IDENTITY = { dnsNames: ['phone.example'], ipAddresses: ['127.0.0.1'] };

let ca: KeyPairPem;
let first: KeyPairPem;
let browser: Browser;
let phone: WhepPhone;

/** SHA-256 of the certificate's public key, as Chromium's --ignore-certificate-errors-spki-list takes it. */
function spkiHash(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** The fingerprint of the certificate the server presents, verified against the test CA. */
async function presented(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'phone.example' }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.end();
      resolve(fingerprint);
    });
    socket.on('error', reject);
  });
}

function fingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

beforeAll(async () => {
  ca = await createCa('cloudphone test viewer CA', 1);
  first = await issueServingCert(ca, IDENTITY, 1);
  browser = await launchChromium([`--ignore-certificate-errors-spki-list=${spkiHash(first.certPem)}`]);
  phone = await startWhepPhone({
    width: 480,
    height: 864,
    files: { 'tls.crt': first.certPem, 'tls.key': first.keyPem },
    whep: { tlsCertFile: '{tokens}/tls.crt', tlsKeyFile: '{tokens}/tls.key' },
  });
});

afterAll(async () => {
  await browser.close();
  await phone.stop();
});

describe('the viewer port over HTTPS', () => {
  it('presents the Secret certificate, serves the page over it and nothing in clear text', async () => {
    const port = phone.sidecar.viewerPort;
    expect(phone.base).toBe(`https://127.0.0.1:${String(port)}`);
    expect(await presented(port)).toBe(fingerprint(first.certPem));
    const page = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      get(`${phone.base}/`, { ca: ca.certPem }, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, body });
        });
      }).on('error', reject);
    });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<video id="screen"');
    // A clear-text request, token and all, gets no HTTP answer.
    await expect(
      fetch(`http://127.0.0.1:${String(port)}/whep`, {
        method: 'OPTIONS',
        headers: { Authorization: `Bearer ${CONTROL_TOKEN}` },
      }),
    ).rejects.toThrow();
  });

  it('plays in Chromium over HTTPS, in a secure context', async () => {
    const page = await openPlayer(browser, phone.base, CONTROL_TOKEN);
    try {
      await waitFor('30 frames over https', async () => ((await shownFrames(page)).length >= 30 ? true : undefined));
      expect(await page.evaluate(() => (globalThis as unknown as { isSecureContext: boolean }).isSecureContext)).toBe(
        true,
      );
    } finally {
      await page.close();
    }
  });

  it('presents a renewed certificate without a restart, and keeps it when the next one is broken', async () => {
    const port = phone.sidecar.viewerPort;
    const renewed = await issueServingCert(ca, IDENTITY, 1);
    writeFileSync(join(phone.tokens, 'tls.key'), renewed.keyPem);
    writeFileSync(join(phone.tokens, 'tls.crt'), renewed.certPem);
    await waitFor(
      'the renewed certificate',
      async () => ((await presented(port)) === fingerprint(renewed.certPem) ? true : undefined),
      15_000,
    );
    // Half a rotation: a key that does not belong to the certificate. The pair in use stays.
    writeFileSync(join(phone.tokens, 'tls.key'), first.keyPem);
    await new Promise((resolve) => setTimeout(resolve, 6000));
    expect(await presented(port)).toBe(fingerprint(renewed.certPem));
  });

  it('refuses to start with a certificate and a key that are not a pair, naming the files only', async () => {
    const other = await issueServingCert(ca, IDENTITY, 1);
    const dir = tempDir('cloudphone-tls-');
    try {
      writeFileSync(join(dir.path, 'view'), 'view-token-0123456789');
      writeFileSync(join(dir.path, 'control'), 'control-token-0123456789');
      writeFileSync(join(dir.path, 'tls.crt'), first.certPem);
      writeFileSync(join(dir.path, 'tls.key'), other.keyPem);
      const config = sidecarConfig({
        sharedDir: dir.path,
        video: { fps: 30 },
        webrtc: {
          whep: {
            viewTokenFile: join(dir.path, 'view'),
            controlTokenFile: join(dir.path, 'control'),
            tlsCertFile: join(dir.path, 'tls.crt'),
            tlsKeyFile: join(dir.path, 'tls.key'),
          },
        },
      });
      const settings = loadSidecarConfig(JSON.stringify(config), { namespace: 'test', pod: 'phone-0' });
      let message = '';
      try {
        new Sidecar(settings, pino({ level: 'silent' }));
      } catch (error) {
        message = error instanceof Error ? error.message : String(error);
      }
      expect(message).toContain(
        `${join(dir.path, 'tls.crt')} and key ${join(dir.path, 'tls.key')} are not a usable pair`,
      );
      expect(message).not.toContain('PRIVATE KEY');
    } finally {
      dir.remove();
    }
  });
});
