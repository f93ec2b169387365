// A client-node informer that keeps itself alive. client-node's ListWatch stops for good on any error other
// than 410 Gone (kubernetes-client/javascript#596, #958) and a watch can hang without an error (#1933), so this
// restarts it with backoff after an error, and relists when it has heard nothing for too long (a watchdog).

import { describeError } from './api-error.ts';
import {
  ListWatch,
  Watch,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type ListPromise,
  type ObjectCache,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface ResilientInformerOptions<T extends KubernetesObject> {
  name: string;
  kubeConfig: KubeConfig;
  /** API path to watch, e.g. /api/v1/pods. */
  path: string;
  list: ListPromise<T>;
  labelSelector?: string;
  /** Watch only objects matching it (metadata.name=... lets RBAC restrict the watch by resourceNames). */
  fieldSelector?: string;
  /**
   * Trims an object before anyone sees it, in place: what it removes is not kept in memory (managedFields, or
   * whatever the operator never reads). Runs before every other handler.
   */
  trim?: (object: T) => void;
  log: Logger;
  /** Relist when no event arrived for this long; quiet resources just get a cheap relist. */
  watchdogMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

type Handler<T> = (object: T) => void;

export class ResilientInformer<T extends KubernetesObject> {
  private readonly informer: Informer<T> & ObjectCache<T>;
  private readonly log: Logger;
  private readonly watchdogMs: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private backoffMs: number;
  private lastActivity = Date.now();
  private watchdog: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private synced = false;
  private readonly syncWaiters: (() => void)[] = [];
  /** Restarts after errors and by the watchdog, for metrics and tests. */
  restarts = 0;

  constructor(options: ResilientInformerOptions<T>) {
    this.log = options.log.child({ informer: options.name });
    this.watchdogMs = options.watchdogMs ?? 5 * 60_000;
    this.minBackoffMs = options.minBackoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.backoffMs = this.minBackoffMs;
    this.informer = new ListWatch<T>(
      options.path,
      new Watch(options.kubeConfig),
      options.list,
      false,
      options.labelSelector,
      options.fieldSelector,
    );
    const { trim } = options;
    if (trim) {
      // The cache stores the very object its handlers receive: trimming it here trims what is kept.
      this.informer.on('add', trim);
      this.informer.on('update', trim);
    }
    const touch = (): void => {
      this.lastActivity = Date.now();
    };
    this.informer.on('add', touch);
    this.informer.on('update', touch);
    this.informer.on('delete', touch);
    this.informer.on('error', (error: unknown) => {
      this.onError(error);
    });
  }

  on(event: 'add' | 'update' | 'delete', handler: Handler<T>): void {
    this.informer.on(event, handler);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.informer.list(namespace);
  }

  isSynced(): boolean {
    return this.synced;
  }

  /** Starts watching; resolves once the first list has filled the cache. */
  async start(): Promise<void> {
    this.stopped = false;
    this.watchdog = setInterval(
      () => {
        this.checkWatchdog();
      },
      Math.max(1000, Math.floor(this.watchdogMs / 4)),
    );
    this.watchdog.unref();
    const synced = new Promise<void>((resolve) => this.syncWaiters.push(resolve));
    void this.connect();
    await synced;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watchdog);
    clearTimeout(this.restartTimer);
    for (const waiter of this.syncWaiters.splice(0)) waiter();
    await this.informer.stop();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let failed = false;
    const onError = (): void => {
      failed = true;
    };
    this.informer.on('error', onError);
    try {
      await this.informer.start();
    } catch (error) {
      failed = true;
      this.onError(error);
    } finally {
      this.informer.off('error', onError);
    }
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by handlers during the await
    if (failed || this.stopped) return;
    this.lastActivity = Date.now();
    this.backoffMs = this.minBackoffMs;
    if (!this.synced) {
      this.synced = true;
      this.log.info('informer synced');
    }
    for (const waiter of this.syncWaiters.splice(0)) waiter();
  }

  private onError(error: unknown): void {
    if (this.stopped) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.maxBackoffMs);
    this.log.warn({ error: describeError(error), retryInMs: delay }, 'watch failed, restarting');
    this.scheduleRestart(delay);
  }

  private checkWatchdog(): void {
    if (this.stopped || this.restartTimer) return;
    if (Date.now() - this.lastActivity < this.watchdogMs) return;
    this.log.info({ quietForMs: Date.now() - this.lastActivity }, 'watch quiet for too long, relisting');
    this.scheduleRestart(0);
  }

  private scheduleRestart(delayMs: number): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restarts++;
      this.lastActivity = Date.now();
      void this.informer.stop().then(() => this.connect());
    }, delayMs);
    this.restartTimer.unref();
  }
}
