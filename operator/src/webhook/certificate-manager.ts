// Keeps the operator's CA and serving certificate in a Secret, so every replica serves the same certificate
// and a restart keeps it. Any replica may create the Secret the first time (creation is atomic); only the
// leader renews it; every replica reloads whatever the Secret holds, without a restart.
// External mode (cert-manager): the Secret is someone else's; the operator waits for it, never writes it, and
// reloads it when it changes.
//
// Replacing the CA (the Secret was lost, or its CA key) must not break the sidecars that run: they trust a bundle
// published in a ConfigMap (ca-bundle-publisher.ts), which the kubelet brings into their pods a minute or so
// after it changes. So the CA is rolled over: the Secret keeps the previous CA (previous-ca.crt) and when it was
// replaced; for `rolloverMs` every replica keeps serving the certificate of the previous CA it already serves,
// while the bundle (and the webhooks' caBundle) holds both CAs; then it serves the new one; after a second
// `rolloverMs` the previous CA leaves the bundle.

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
  /** How long the previous CA is still served after it was replaced (and twice that, trusted). */
  rolloverMs?: number;
  /** What is served changed. */
  onChange: (material: TlsMaterial) => void;
  /** The CAs to trust changed (one, or two during a rollover), as one PEM bundle. */
  onBundleChange?: (bundlePem: string) => void;
}

const EXTERNAL_WAIT_MS = 2000;

const KEYS = {
  ca: 'ca.crt',
  caKey: 'ca.key',
  cert: 'tls.crt',
  key: 'tls.key',
  previousCa: 'previous-ca.crt',
} as const;
/** When the CA in the Secret replaced previous-ca.crt (ISO 8601). */
export const CA_REPLACED_AT_ANNOTATION = 'cloudphone.io/ca-replaced-at';

function decode(secret: V1Secret, key: string): string {
  const value = secret.data?.[key];
  return value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8');
}

export class CertificateManager {
  private readonly o: Required<CertificateManagerOptions>;
  private current: TlsMaterial | undefined;
  private bundle = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(options: CertificateManagerOptions) {
    this.o = {
      caValidityDays: 3650,
      servingValidityDays: 90,
      checkIntervalMs: 60_000,
      external: false,
      rolloverMs: 120_000,
      onBundleChange: () => undefined,
      ...options,
    };
  }

  /** What this replica serves. */
  get material(): TlsMaterial | undefined {
    return this.current;
  }

  /** The CAs to trust now: the Secret's, and during a rollover the previous one too. */
  get bundlePem(): string {
    return this.bundle;
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
        // A lost Secret: the CA this replica served until now is rolled over, not dropped.
        secret = await core.createNamespacedSecret({
          namespace,
          body: this.secretBody(material, this.current?.caPem),
        });
        this.o.log.info({ secret: `${namespace}/${name}` }, 'created webhook certificates');
      } catch (error) {
        if (!(error instanceof ApiException) || error.code !== 409) throw error;
        secret = await core.readNamespacedSecret({ name, namespace }); // another replica was first
      }
    } else if (mayWrite && this.renewalDue(secret)) {
      const ca = { certPem: decode(secret, KEYS.ca), keyPem: decode(secret, KEYS.caKey) };
      const kept = ca.certPem && ca.keyPem ? ca : undefined;
      const material = await this.generate(kept);
      // The same CA keeps its rollover (if one is under way); a new one rolls over the one it replaces.
      const body = kept
        ? this.secretBody(material, decode(secret, KEYS.previousCa) || undefined, this.replacedAt(secret))
        : this.secretBody(material, ca.certPem || undefined);
      body.metadata = { ...body.metadata, resourceVersion: secret.metadata?.resourceVersion };
      try {
        secret = await core.replaceNamespacedSecret({ name, namespace, body });
        this.o.log.info({ secret: `${namespace}/${name}` }, 'renewed the serving certificate');
      } catch (error) {
        if (!(error instanceof ApiException) || error.code !== 409) throw error;
        secret = await core.readNamespacedSecret({ name, namespace });
      }
    }
    const fromSecret: TlsMaterial = {
      // cert-manager's self-signed issuers leave ca.crt as the certificate itself; a missing one means the same.
      caPem: decode(secret, KEYS.ca) || decode(secret, KEYS.cert),
      certPem: decode(secret, KEYS.cert),
      keyPem: decode(secret, KEYS.key),
    };
    const previousCa = decode(secret, KEYS.previousCa);
    const replacedAt = this.replacedAt(secret)?.getTime() ?? 0;
    const now = Date.now();
    const rollingOver = previousCa !== '' && now < replacedAt + this.o.rolloverMs;
    // Keep serving the previous CA's certificate while the new bundle reaches the pods, if this replica has it.
    const material = rollingOver && this.current?.caPem === previousCa ? this.current : fromSecret;
    if (material.certPem !== this.current?.certPem || material.caPem !== this.current.caPem) {
      if (material === fromSecret && this.current && this.current.caPem !== fromSecret.caPem)
        this.o.log.info('serving the certificate of the new CA');
      this.current = material;
      this.o.onChange(material);
    }
    const trusted = previousCa !== '' && now < replacedAt + 2 * this.o.rolloverMs;
    const bundle = trusted ? `${fromSecret.caPem.trimEnd()}\n${previousCa.trimEnd()}\n` : fromSecret.caPem;
    if (bundle !== this.bundle) {
      this.bundle = bundle;
      this.o.onBundleChange(bundle);
    }
    return material;
  }

  private replacedAt(secret: V1Secret): Date | undefined {
    const value = secret.metadata?.annotations?.[CA_REPLACED_AT_ANNOTATION];
    const at = value ? new Date(value) : undefined;
    return at && !Number.isNaN(at.getTime()) ? at : undefined;
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

  /** previousCa: the CA this one replaces, rolled over from `replacedAt` (now, for a CA just made). */
  private secretBody(
    material: TlsMaterial & { caKeyPem: string },
    previousCa?: string,
    replacedAt = new Date(),
  ): V1Secret {
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const rollover = previousCa && previousCa !== material.caPem ? previousCa : undefined;
    return {
      metadata: {
        name: this.o.secretName,
        namespace: this.o.namespace,
        labels: { 'app.kubernetes.io/part-of': 'cloudphone', 'app.kubernetes.io/component': 'webhook-certificates' },
        ...(rollover ? { annotations: { [CA_REPLACED_AT_ANNOTATION]: replacedAt.toISOString() } } : {}),
      },
      type: 'kubernetes.io/tls',
      data: {
        [KEYS.ca]: b64(material.caPem),
        [KEYS.caKey]: b64(material.caKeyPem),
        [KEYS.cert]: b64(material.certPem),
        [KEYS.key]: b64(material.keyPem),
        ...(rollover ? { [KEYS.previousCa]: b64(rollover) } : {}),
      },
    };
  }
}
