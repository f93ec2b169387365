import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCa, issueServingCert, needsRenewal } from '../../../operator/src/webhook/certificates.ts';

const identity = { dnsNames: ['op.ns.svc', 'localhost'], ipAddresses: ['127.0.0.1'] };

describe('the operator PKI', () => {
  it('issues a serving certificate for the names and addresses asked, chained to its CA', async () => {
    const ca = await createCa('test-ca', 3650);
    const serving = await issueServingCert(ca, identity, 90);
    const cert = new X509Certificate(serving.certPem);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(cert.subjectAltName).toBe('DNS:op.ns.svc, DNS:localhost, IP Address:127.0.0.1');
    expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(serving.keyPem))).toBe(true);
    expect(new X509Certificate(ca.certPem).ca).toBe(true);
  });

  it('wants renewal after two thirds of the lifetime, for a missing name, or for another CA', async () => {
    const ca = await createCa('test-ca', 3650);
    const start = new Date('2026-01-01T00:00:00Z');
    const serving = await issueServingCert(ca, identity, 90, start);
    expect(needsRenewal(serving.certPem, ca.certPem, identity, new Date('2026-02-15T00:00:00Z'))).toBe(false);
    expect(needsRenewal(serving.certPem, ca.certPem, identity, new Date('2026-03-02T00:00:00Z'))).toBe(true);
    const later = new Date('2026-01-02T00:00:00Z');
    expect(needsRenewal(serving.certPem, ca.certPem, { ...identity, dnsNames: ['other.svc'] }, later)).toBe(true);
    const otherCa = await createCa('other', 3650);
    expect(needsRenewal(serving.certPem, otherCa.certPem, identity, later)).toBe(true);
    expect(needsRenewal('not a certificate', ca.certPem, identity, later)).toBe(true);
  });
});
