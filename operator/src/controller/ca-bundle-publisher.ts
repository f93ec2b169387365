// Publishes the CAs the sidecars must trust (the operator's CA, two of them during a rollover) as a ConfigMap in
// every namespace that has a CloudPhoneStream, as kube-root-ca.crt is published to every namespace. Injected pods
// mount it; the kubelet keeps the mounted file current, and the sidecar reads it for every report. So a new CA
// reaches the sidecars that already run, instead of a copy frozen into their config at injection.
//
// The leader writes; the ConfigMaps are watched by name (RBAC restricts the watch to that name), so one that was
// deleted or edited is put back at once.

import { ApiException, type CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeError } from '../kube/api-error.ts';
import { mergePatchOptions } from '../kube/patch-options.ts';
import type { ResilientInformer } from '../kube/resilient-informer.ts';

export const CA_BUNDLE_KEY = 'ca.crt';

export interface CaBundlePublisherOptions {
  name: string;
  core: CoreV1Api;
  /** The ConfigMaps of that name, in every namespace. */
  configMaps: ResilientInformer<V1ConfigMap>;
  /** The namespaces that need the bundle (those with a stream). */
  namespaces: () => Iterable<string>;
  bundle: () => string;
  isLeader: () => boolean;
  log: Logger;
}

export class CaBundlePublisher {
  private readonly o: CaBundlePublisherOptions;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(options: CaBundlePublisherOptions) {
    this.o = options;
    for (const event of ['add', 'update', 'delete'] as const)
      options.configMaps.on(event, () => {
        this.sync();
      });
  }

  /** Brings every namespace's ConfigMap up to date; calls made meanwhile fold into one more pass. */
  sync(): void {
    if (!this.o.isLeader()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((error: unknown) => {
        this.o.log.warn({ error: describeError(error) }, 'could not publish the CA bundle');
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.sync();
        }
      });
  }

  /** Resolves once no pass is running (for a clean stop). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async pass(): Promise<void> {
    const bundle = this.o.bundle();
    if (!bundle) return;
    for (const namespace of new Set(this.o.namespaces())) {
      if (!this.o.isLeader()) return;
      const existing = this.o.configMaps.get(this.o.name, namespace);
      if (existing?.data?.[CA_BUNDLE_KEY] === bundle) continue;
      await this.publish(namespace, bundle, existing !== undefined).catch((error: unknown) => {
        // One namespace (being deleted, say) does not hold up the others.
        this.o.log.warn({ namespace, error: describeError(error) }, 'could not publish the CA bundle here');
      });
    }
  }

  private async publish(namespace: string, bundle: string, exists: boolean): Promise<void> {
    const { core, name } = this.o;
    const data = { [CA_BUNDLE_KEY]: bundle };
    if (!exists) {
      try {
        await core.createNamespacedConfigMap({
          namespace,
          body: {
            metadata: {
              name,
              namespace,
              labels: { 'app.kubernetes.io/part-of': 'cloudphone', 'app.kubernetes.io/component': 'ca-bundle' },
            },
            data,
          },
        });
        this.o.log.info({ namespace }, 'published the CA bundle');
        return;
      } catch (error) {
        if (!(error instanceof ApiException) || error.code !== 409) throw error;
      }
    }
    await core.patchNamespacedConfigMap({ name, namespace, body: { data } }, mergePatchOptions());
    this.o.log.info({ namespace }, 'updated the CA bundle');
  }
}
