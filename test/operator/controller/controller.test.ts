// A regained leadership never runs two sets of workers: start() after a stop() that is still draining waits for
// the old workers' reconciles before the new ones take a key.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Controller } from '../../../operator/src/controller/controller.ts';
import { OperatorMetrics } from '../../../operator/src/metrics.ts';

describe('Controller', () => {
  it('does not start new workers while the previous ones are still reconciling', async () => {
    let running = 0;
    let most = 0;
    const finish: (() => void)[] = [];
    const controller = new Controller({
      name: 'test',
      reconcile: async () => {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((resolve) => finish.push(resolve));
        running--;
        return {};
      },
      onTerminal: () => Promise.resolve(),
      workers: 1,
      log: pino({ level: 'silent' }),
      metrics: new OperatorMetrics(),
    });
    await controller.start();
    controller.enqueue('ns/a');
    await new Promise((resolve) => setImmediate(resolve));
    expect(running).toBe(1);
    // Leadership lost and won again at once: stop is not awaited (as a step-down racing a takeover), and a key
    // arrives meanwhile.
    void controller.stop();
    const restarted = Promise.resolve(controller.start());
    controller.enqueue('ns/a');
    await new Promise((resolve) => setImmediate(resolve));
    expect(most).toBe(1); // the old worker is still reconciling ns/a: nothing else may
    finish.shift()?.();
    await restarted;
    controller.enqueue('ns/a');
    await new Promise((resolve) => setImmediate(resolve));
    expect(running).toBe(1);
    expect(most).toBe(1);
    finish.shift()?.();
    await controller.stop();
  });
});
