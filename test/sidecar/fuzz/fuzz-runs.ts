// How long the property fuzzers run. `npm test` runs a short pass with a fresh seed each time (a failure prints
// the seed and the shrunk input, and FUZZ_SEED replays it); `npm run fuzz:parsers` a million inputs each.
// These are fast-check properties over generators aimed at each grammar and mutations of real inputs (a Chromium
// offer, RTCP compounds built field by field), not a coverage-guided fuzzer: README (Notes for contributors,
// Fuzzing) says why not @jazzer.js here.
import type { Parameters } from 'fast-check';

const runs = Number(process.env.FUZZ_RUNS ?? 3000);
const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

export function fuzzRuns<T>(): Parameters<T> {
  return { numRuns: runs, ...(seed === undefined ? {} : { seed }) };
}

/** Lets a long run by hand take longer than vitest's per-test limit. */
export const FUZZ_TIMEOUT_MS = Math.max(30_000, runs * 5);
