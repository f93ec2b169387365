// Waiting for a cluster to reach a state, for tests and benchmarks alike (no test-runner imports here).

/** Polls until check returns a value other than undefined; fails with what it was waiting for. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Polls a synchronous condition until it holds; fails with what it was waiting for. */
export async function waitUntil(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  await waitFor(what, () => Promise.resolve(condition() ? true : undefined), timeoutMs);
}

/** Checks a synchronous condition every 500 ms for forMs, and fails the first time it does not hold. */
export async function holdsFor(what: string, condition: () => boolean, forMs: number): Promise<void> {
  const until = Date.now() + forMs;
  for (;;) {
    if (!condition()) throw new Error(`${what} stopped holding`);
    if (Date.now() >= until) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
