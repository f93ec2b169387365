// The streaming sidecar: one native pipeline (phone -> NV12 -> H.264 -> SRT), bitrate adaptation from SRT
// statistics, and the health and metrics endpoints the kubelet and Prometheus read.

import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { startHealthServer } from '../../operator/src/health-server.ts';
import type { SidecarSettings } from './config.ts';
import { SidecarMetrics } from './metrics.ts';
import { NativePipeline, type PipelineEvent, type PipelineStats } from './native.ts';
import { BitrateController } from './pipeline/bitrate-controller.ts';

const ADAPT_INTERVAL_MS = 1000;

export interface SidecarOptions {
  /** Address for /healthz, /readyz and /metrics; 0 picks a free port (tests). */
  metricsHost?: string;
  metricsPort?: number;
  /** Every pipeline event, after the sidecar has handled it (tests and the local demo watch these). */
  onEvent?: (event: PipelineEvent) => void;
}

export class Sidecar {
  readonly #settings: SidecarSettings;
  readonly #log: Logger;
  readonly #options: SidecarOptions;
  readonly #pipeline: NativePipeline;
  readonly #metrics: SidecarMetrics;
  readonly #bitrate: BitrateController | undefined;
  #server: Server | undefined;
  #adaptTimer: NodeJS.Timeout | undefined;
  #metricsPort = 0;

  constructor(settings: SidecarSettings, log: Logger, options: SidecarOptions = {}) {
    this.#settings = settings;
    this.#log = log;
    this.#options = options;
    this.#pipeline = new NativePipeline(settings.pipeline, (event) => {
      this.#onEvent(event);
    });
    this.#metrics = new SidecarMetrics(() => this.#pipeline.stats());
    const srt = settings.pipeline.srt;
    if (srt) this.#bitrate = new BitrateController({ ...settings.bitrate, latencyMs: srt.latencyMs });
  }

  get metricsPort(): number {
    return this.#metricsPort;
  }

  async start(): Promise<void> {
    this.#pipeline.start();
    try {
      const { server, port } = await startHealthServer(
        this.#options.metricsPort ?? this.#settings.metricsPort,
        this.#options.metricsHost ?? '0.0.0.0',
        () => this.ready(),
        this.#metrics.registry,
      );
      this.#server = server;
      this.#metricsPort = port;
    } catch (error) {
      this.#pipeline.stop();
      throw error;
    }
    if (this.#bitrate)
      this.#adaptTimer = setInterval(() => {
        this.#adaptBitrate();
      }, ADAPT_INTERVAL_MS);
    this.#log.info(
      {
        sharedDir: this.#settings.pipeline.sharedDir,
        srt: this.#settings.pipeline.srt?.listener ? 'listener' : this.#settings.pipeline.srt ? 'caller' : 'off',
        metricsPort: this.#metricsPort,
        encoder: this.#pipeline.stats().encoder,
        encoderReason: this.#pipeline.stats().encoderReason,
      },
      'sidecar started',
    );
  }

  /** Ready once a phone is connected and has announced a surface: there is something to stream. */
  ready(): boolean {
    const stats = this.#pipeline.stats();
    return stats.producerConnected && stats.width > 0;
  }

  stats(): PipelineStats {
    return this.#pipeline.stats();
  }

  get pipeline(): NativePipeline {
    return this.#pipeline;
  }

  async stop(): Promise<void> {
    clearInterval(this.#adaptTimer);
    this.#pipeline.stop();
    const server = this.#server;
    this.#server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    }
    this.#log.info('sidecar stopped');
  }

  #adaptBitrate(): void {
    const next = this.#bitrate?.update(this.#pipeline.stats().srt);
    if (next === undefined) return;
    this.#pipeline.setBitrate(next);
    this.#log.info({ kbps: next }, 'bitrate adapted');
  }

  #onEvent(event: PipelineEvent): void {
    switch (event.type) {
      case 'producer-connected':
        this.#log.info({ producer: event.producer }, 'phone connected');
        break;
      case 'producer-disconnected':
        this.#log.info({ producer: event.producer, reason: event.reason }, 'phone disconnected');
        break;
      case 'surface':
        this.#log.info(
          { generation: event.generation, width: event.width, height: event.height, format: event.format },
          'surface mapped',
        );
        break;
      case 'error':
        this.#log.warn({ error: event.name, reason: event.reason }, 'pipeline error');
        break;
      case 'srt-connected':
        this.#metrics.srtConnected();
        this.#log.info('srt connected');
        break;
      case 'srt-disconnected':
        this.#log.warn({ reason: event.reason }, 'srt disconnected');
        break;
      case 'srt-error':
        this.#log.warn({ reason: event.reason }, 'srt connection failed');
        break;
    }
    this.#options.onEvent?.(event);
  }
}
