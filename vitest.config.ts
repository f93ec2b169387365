import { defineConfig } from 'vitest/config';

// Tests that make node-datachannel PeerConnections (see the webrtc project for why they are kept apart).
const WEBRTC_TESTS = [
  'test/media/player-browser.test.ts',
  'test/media/webrtc-viewers.test.ts',
  'test/media/whip-push.test.ts',
  'test/media/packet-loss.test.ts',
  'test/media/viewer-tls.test.ts',
  'test/media/turn-rest.test.ts',
  'test/media/bitrate-adaptation.test.ts',
];

export default defineConfig({
  test: {
    // The machine has 2 cores; integration tests share one local control plane.
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'unit',
          // Groups run one after another: the media tests measure frames and latency, and must not share the two
          // cores with the real node's phones and Chromium in the end-to-end tests.
          sequence: { groupOrder: 0 },
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**', 'test/media/**', 'test/e2e/**'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'media',
          sequence: { groupOrder: 1 },
          // Threads, not forks: libsrt's own threads outlive a stopped sidecar, and a forked worker holding them
          // lingers until vitest's termination timeout.
          pool: 'threads',
          // Real encoders, decoders and SRT peers: one file at a time keeps the 2 cores for the media.
          fileParallelism: false,
          include: ['test/media/**/*.test.ts'],
          exclude: WEBRTC_TESTS,
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'webrtc',
          sequence: { groupOrder: 1 },
          // Forks, not threads: node-datachannel in a worker thread segfaults when the thread is torn down (seen
          // here, taking the whole test run with it); in a forked process it does not.
          pool: 'forks',
          fileParallelism: false,
          include: WEBRTC_TESTS,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          sequence: { groupOrder: 2 },
          // Threads, not forks: a forked worker whose keep-alive connections outlive the cluster (stopped by the
          // global teardown) lingers until vitest's termination timeout.
          pool: 'threads',
          // One at a time: they share the cluster, and some restart its apiserver or hold cluster-wide objects.
          fileParallelism: false,
          // test/e2e: the product on the real node (the chart's pods, phone pods); in this project because it
          // shares the cluster and installs cluster-wide objects (the chart's webhooks) like the integration tests.
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          // Brings the local cluster up once per run (or reuses a running one): test/cluster/up.sh.
          globalSetup: ['test/cluster/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
