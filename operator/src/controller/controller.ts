// Runs a reconcile function over a work queue with a few workers: one reconcile per key at a time, retries
// with backoff for transient errors, none for terminal ones, and "requeue after" when the reconcile asks.

import { describeError } from '../kube/api-error.ts';
import type { Logger } from 'pino';
import { TerminalError } from '../errors.ts';
import { WorkQueue } from '../kube/work-queue.ts';
import type { OperatorMetrics } from '../metrics.ts';
import type { Outcome } from './finalizer.ts';

export interface ControllerOptions {
  name: string;
  reconcile: (key: string) => Promise<Outcome>;
  onTerminal: (key: string, error: TerminalError) => Promise<void>;
  workers: number;
  log: Logger;
  metrics: OperatorMetrics;
}

export class Controller {
  private readonly o: ControllerOptions;
  private queue = new WorkQueue();
  private running: Promise<void>[] = [];

  constructor(options: ControllerOptions) {
    this.o = options;
  }

  enqueue(key: string): void {
    this.queue.add(key);
    this.o.metrics.queueDepth.set({ controller: this.o.name }, this.queue.length);
  }

  /**
   * Starts the workers on a fresh queue (after a leader change nothing of the old one is kept), once the workers
   * of an earlier start have finished: two sets never reconcile side by side.
   */
  async start(): Promise<void> {
    await this.stop();
    this.queue = new WorkQueue();
    this.running = Array.from({ length: this.o.workers }, () => this.work(this.queue));
  }

  /** Takes no new keys and resolves once the reconciles in flight have finished. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.running);
  }

  private async work(queue: WorkQueue): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      this.o.metrics.queueDepth.set({ controller: this.o.name }, queue.length);
      const end = this.o.metrics.reconcileDuration.startTimer({ controller: this.o.name });
      try {
        const outcome = await this.o.reconcile(key);
        queue.forget(key);
        if (outcome.requeueAfterMs !== undefined) queue.addAfter(key, outcome.requeueAfterMs);
      } catch (error) {
        if (error instanceof TerminalError) {
          queue.forget(key);
          this.o.metrics.reconcileErrors.inc({ controller: this.o.name, kind: 'terminal' });
          this.o.log.warn({ key, reason: error.reason, error: error.message }, 'reconcile failed for good');
          await this.o.onTerminal(key, error).catch(() => undefined);
        } else {
          const retryInMs = queue.addRateLimited(key);
          this.o.metrics.reconcileErrors.inc({ controller: this.o.name, kind: 'transient' });
          this.o.log.info({ key, retryInMs, error: describeError(error) }, 'reconcile failed, will retry');
        }
      } finally {
        end();
        queue.done(key);
      }
    }
  }
}
