// Keeps the operator's CA and serving certificate in a Secret, so every replica serves the same certificate
// and a restart keeps it. Any replica may create the Secret the first time (creation is atomic); only the
// leader renews it; every replica reloads whatever the Secret holds, without a restart.
// External mode (cert-manager): the Secret is someone else's; the operator waits for it, never writes it, and
// reloads it when it changes.

import { describeError } from '../kube/api-error.ts';
import { ApiException, type CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { createCa, issueServingCert, needsRenewal, type KeyPairPem, type ServingIdentity } from './certificates.ts';

export interface TlsMaterial {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export interface CertificateManagerOptions {
  core: CoreV1Api;
  namespace: string;
  secretName: string;
  identity: ServingIdentity;
  log: Logger;
  caValidityDays?: number;
  servingValidityDays?: number;
  checkIntervalMs?: number;
  /** The Secret is written by someone else (cert-manager): only read it. */
  external?: boolean;
  onChange: (material: TlsMaterial) => void;
}

const EXTERNAL_WAIT_MS = 2000;

const KEYS = { ca: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

function decode(secret: V1Secret, key: string): string {
  const value = secret.data?.[key];
  return value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8');
}

export class CertificateManager {
  private readonly o: Required<CertificateManagerOptions>;
  private current: TlsMaterial | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: CertificateManagerOptions) {
    this.o = { caValidityDays: 3650, servingValidityDays: 90, checkIntervalMs: 60_000, external: false, ...options };
  }

  get material(): TlsMaterial | undefined {
    return this.current;
  }

  /** Loads the certificates (creating them when there are none) and checks them periodically after that. */
  async start(isLeader: () => boolean): Promise<TlsMaterial> {
    const material = this.o.external ? await this.waitForExternal() : await this.sync(true);
    this.timer = setInterval(() => {
      this.sync(!this.o.external && isLeader()).catch((error: unknown) => {
        this.o.log.warn({ error: describeError(error) }, 'certificate check failed');
      });
    }, this.o.checkIntervalMs);
    this.timer.unref();
    return material;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** External mode: until the Secret holds a certificate and its key (cert-manager issues it after install). */
  private async waitForExternal(): Promise<TlsMaterial> {
    let told = false;
    for (;;) {
      try {
        return await this.sync(false);
      } catch (error) {
        if (!told)
          this.o.log.info(
            { secret: `${this.o.namespace}/${this.o.secretName}`, reason: describeError(error) },
            'waiting for the certificate Secret (external certificates)',
          );
        told = true;
        await new Promise((resolve) => setTimeout(resolve, EXTERNAL_WAIT_MS));
      }
    }
  }

  /** Reads the Secret; creates or renews it when allowed to; reports a change to onChange. */
  async sync(mayWrite: boolean): Promise<TlsMaterial> {
    const { core, namespace, secretName: name } = this.o;
    let secret: V1Secret | undefined;
    try {
      secret = await core.readNamespacedSecret({ name, namespace });
    } catch (error) {
      if (!(error instanceof ApiException) || error.code !== 404) throw error;
    }
    if (this.o.external) {
      if (!secret || !decode(secret, KEYS.cert) || !decode(secret, KEYS.key))
        throw new Error(`Secret ${namespace}/${name} has no tls.crt and tls.key yet`);
    } else if (!secret) {
      const material = await this.generate(undefined);
      try {
        secret = await core.createNamespacedSecret({ namespace, body: this.secretBody(material) });
        this.o.log.info({ secret: `${namespace}/${name}` }, 'created webhook certificates');
      } catch (error) {
        if (!(error instanceof ApiException) || error.code !== 409) throw error;
        secret = await core.readNamespacedSecret({ name, namespace }); // another replica was first
      }
    } else if (mayWrite && this.renewalDue(secret)) {
      const ca = { certPem: decode(secret, KEYS.ca), keyPem: decode(secret, KEYS.caKey) };
      const material = await this.generate(ca.certPem && ca.keyPem ? ca : undefined);
      const body = this.secretBody(material);
      body.metadata = { ...body.metadata, resourceVersion: secret.metadata?.resourceVersion };
      try {
        secret = await core.replaceNamespacedSecret({ name, namespace, body });
        this.o.log.info({ secret: `${namespace}/${name}` }, 'renewed the serving certificate');
      } catch (error) {
        if (!(error instanceof ApiException) || error.code !== 409) throw error;
        secret = await core.readNamespacedSecret({ name, namespace });
      }
    }
    const material: TlsMaterial = {
      // cert-manager's self-signed issuers leave ca.crt as the certificate itself; a missing one means the same.
      caPem: decode(secret, KEYS.ca) || decode(secret, KEYS.cert),
      certPem: decode(secret, KEYS.cert),
      keyPem: decode(secret, KEYS.key),
    };
    if (material.certPem !== this.current?.certPem || material.caPem !== this.current.caPem) {
      this.current = material;
      this.o.onChange(material);
    }
    return material;
  }

  private renewalDue(secret: V1Secret): boolean {
    const caPem = decode(secret, KEYS.ca);
    if (!caPem || !decode(secret, KEYS.caKey) || !decode(secret, KEYS.key)) return true;
    return needsRenewal(decode(secret, KEYS.cert), caPem, this.o.identity);
  }

  private async generate(ca: KeyPairPem | undefined): Promise<TlsMaterial & { caKeyPem: string }> {
    const authority = ca ?? (await createCa('cloudphone-operator-ca', this.o.caValidityDays));
    const serving = await issueServingCert(authority, this.o.identity, this.o.servingValidityDays);
    return { caPem: authority.certPem, caKeyPem: authority.keyPem, certPem: serving.certPem, keyPem: serving.keyPem };
  }

  private secretBody(material: TlsMaterial & { caKeyPem: string }): V1Secret {
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    return {
      metadata: {
        name: this.o.secretName,
        namespace: this.o.namespace,
        labels: { 'app.kubernetes.io/part-of': 'cloudphone', 'app.kubernetes.io/component': 'webhook-certificates' },
      },
      type: 'kubernetes.io/tls',
      data: {
        [KEYS.ca]: b64(material.caPem),
        [KEYS.caKey]: b64(material.caKeyPem),
        [KEYS.cert]: b64(material.certPem),
        [KEYS.key]: b64(material.keyPem),
      },
    };
  }
}
