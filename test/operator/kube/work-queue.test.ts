import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../../operator/src/kube/work-queue.ts';

describe('WorkQueue', () => {
  it('holds a key once however often it is added', async () => {
    const queue = new WorkQueue();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect(queue.length).toBe(2);
    expect(await queue.get()).toBe('a');
    expect(await queue.get()).toBe('b');
  });

  it('never hands the same key to two workers: a key re-added while processed comes back after done()', async () => {
    const queue = new WorkQueue();
    queue.add('a');
    const key = await queue.get();
    queue.add('a');
    expect(queue.length).toBe(0); // not handed out again while being processed
    queue.done(key ?? '');
    expect(queue.length).toBe(1);
    expect(await queue.get()).toBe('a');
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const queue = new WorkQueue();
    const waiting = queue.get();
    queue.add('late');
    expect(await waiting).toBe('late');
  });

  it('backs off exponentially per key, up to the maximum, and starts over after forget()', () => {
    const queue = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 50 });
    const delays = [1, 2, 3, 4, 5].map(() => queue.addRateLimited('a'));
    expect(delays).toEqual([10, 20, 40, 50, 50]);
    expect(queue.addRateLimited('b')).toBe(10);
    queue.forget('a');
    expect(queue.addRateLimited('a')).toBe(10);
    queue.shutDown();
  });

  it('adds a delayed key once its delay is over, keeping the earliest of two delays', async () => {
    const queue = new WorkQueue();
    queue.addAfter('a', 200);
    queue.addAfter('a', 20);
    expect(queue.length).toBe(0);
    expect(await queue.get()).toBe('a');
  });

  it('releases waiting workers with undefined on shutDown', async () => {
    const queue = new WorkQueue();
    const waiting = queue.get();
    queue.shutDown();
    expect(await waiting).toBeUndefined();
    queue.add('ignored');
    expect(queue.length).toBe(0);
  });
});
