// The streaming sidecar: one native pipeline (phone -> H.264 -> SRT), its encoded pictures fanned out to
// WebRTC viewers (WHEP, with the player page) and a WHIP push to a media server, keyframe wishes from all of
// them rate-limited into one encoder request stream, bitrate adaptation from SRT statistics and the WebRTC
// peers' RTCP, and the health and metrics endpoints the kubelet and Prometheus read.

import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { startHealthServer } from '../../common/health-server.ts';
import type { SidecarSettings } from './config.ts';
import type { BackoffSettings } from './webrtc/reconnect-backoff.ts';
import { SidecarMetrics } from './metrics.ts';
import { NativePipeline, type PipelineEvent, type PipelineStats } from './native.ts';
import { OperatorReporter, type ReportSnapshot } from './operator-reporter.ts';
import { BitrateController } from './pipeline/bitrate-controller.ts';
import { rtpTimestampOf, spsLevel, withParameterSets } from './webrtc/h264-parameter-sets.ts';
import { rtcConfig } from './webrtc/ice-config.ts';
import { KeyframeScheduler, keyframeWishBudget, viewOnlyWaitMs } from './webrtc/keyframe-scheduler.ts';
import { PlayerAssets } from './webrtc/player-assets.ts';
import { ServingCertificate } from './webrtc/serving-certificate.ts';
import type { Screen } from './webrtc/viewer-messages.ts';
import { ViewerServer } from './webrtc/viewer-server.ts';
import { ViewerTokens } from './webrtc/viewer-tokens.ts';
import { WebRtcViewers } from './webrtc/webrtc-viewers.ts';
import { WhipPublisher } from './webrtc/whip-publisher.ts';

const ADAPT_INTERVAL_MS = 1000;
// How often every session's token is checked again: a revoked token ends its sessions within a second.
const REVOKE_CHECK_MS = 500;
// Claim tokens hold this many report intervals after the operator last named them (fail closed).
const CLAIM_VALIDITY_INTERVALS = 3;

export interface SidecarOptions {
  /** Address for /healthz, /readyz and /metrics; 0 picks a free port (tests). */
  metricsHost?: string;
  metricsPort?: number;
  /** Address of the WHEP endpoint and the player page; 0 picks a free port (tests). */
  viewerHost?: string;
  viewerPort?: number;
  /** Every pipeline event, after the sidecar has handled it (tests and the local demo watch these). */
  onEvent?: (event: PipelineEvent) => void;
  /** Delays between WHIP attempts (tests shorten them). */
  whipBackoff?: BackoffSettings;
}

export class Sidecar {
  readonly #settings: SidecarSettings;
  readonly #log: Logger;
  readonly #options: SidecarOptions;
  readonly #pipeline: NativePipeline;
  readonly #metrics: SidecarMetrics;
  readonly #bitrate: BitrateController | undefined;
  readonly #viewers: WebRtcViewers | undefined;
  readonly #viewerServer: ViewerServer | undefined;
  readonly #whip: WhipPublisher | undefined;
  readonly #keyframes: KeyframeScheduler;
  readonly #reporter: OperatorReporter | undefined;
  readonly #tokens: ViewerTokens | undefined;
  #revokeTimer: NodeJS.Timeout | undefined;
  #lastError: { reason: string; at: number } | undefined;
  /** Why recording is stopped, while it is (the operator shows it in the stream's Recording condition). */
  #recordingStopped: string | undefined;
  #appliedKbps: number;
  #server: Server | undefined;
  #adaptTimer: NodeJS.Timeout | undefined;
  #metricsPort = 0;
  #screenTold: Screen = { width: 0, height: 0, rotation: 0 };
  #eventsSuppressedLogged = 0;

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
    this.#appliedKbps = settings.bitrate.targetKbps;
    const pipeline = this.#pipeline;
    // Control viewers' and the WHIP server's wishes: at most one encoder keyframe per 250 ms; view-only
    // viewers' wait for the next keyframe the stream makes anyway.
    const keyframes = new KeyframeScheduler(
      () => {
        pipeline.requestKeyframe();
      },
      {
        minIntervalMs: 250,
        waitMs: viewOnlyWaitMs(settings.pipeline.keyframeIntervalSeconds, settings.pipeline.intraRefresh),
      },
    );
    this.#keyframes = keyframes;
    // The media server's PLIs stand for all its viewers: the budget of one viewer.
    const whipKeyframeWishes = keyframeWishBudget();
    const whip = settings.webrtc?.whip;
    if (settings.webrtc && whip) {
      const ice = settings.webrtc.ice;
      this.#whip = new WhipPublisher({
        url: whip.url,
        tokenFile: whip.tokenFile,
        rtcConfig: (attempt) => rtcConfig(ice, attempt),
        bitrate: settings.bitrate,
        requestKeyframe: () => {
          if (whipKeyframeWishes.take()) keyframes.urgent();
        },
        metrics: this.#metrics,
        log,
        backoff: options.whipBackoff,
      });
    }
    const whep = settings.webrtc?.whep;
    let viewerTokens: ViewerTokens | undefined;
    if (settings.webrtc && whep) {
      const reportIntervalMs = (settings.config.report?.intervalSeconds ?? 10) * 1000;
      viewerTokens = new ViewerTokens(whep.tokenFiles, {
        claimValidityMs: CLAIM_VALIDITY_INTERVALS * reportIntervalMs,
      });
      this.#tokens = viewerTokens;
      this.#viewers = new WebRtcViewers({
        maxViewers: whep.maxViewers,
        ice: settings.webrtc.ice,
        bitrate: settings.bitrate,
        input: settings.input,
        metrics: this.#metrics,
        log,
        pipeline: {
          requestKeyframe: (urgent) => {
            if (urgent) keyframes.urgent();
            else keyframes.whenDue();
          },
          sendInput: (viewer, control) => {
            pipeline.sendInput(viewer, control);
          },
          releaseInput: (viewer) => {
            pipeline.releaseInput(viewer);
          },
          screen: () => {
            const { width, height, rotation } = pipeline.stats();
            return { width, height, rotation };
          },
          h264Level: () => spsLevel(pipeline.parameterSets()),
        },
      });
      this.#viewerServer = new ViewerServer({
        host: options.viewerHost ?? '0.0.0.0',
        port: options.viewerPort ?? whep.port,
        tokens: viewerTokens,
        viewers: this.#viewers,
        iceServers: settings.webrtc.ice.servers,
        player: new PlayerAssets(),
        tls: whep.tls && new ServingCertificate(whep.tls),
        log,
      });
    }
    const report = settings.config.report;
    if (report)
      this.#reporter = new OperatorReporter({
        url: report.url,
        tokenFile: report.tokenFile,
        ca: report.caFile !== undefined ? { file: report.caFile } : { pem: report.ca ?? '' },
        intervalMs: (report.intervalSeconds ?? 10) * 1000,
        stream: { namespace: settings.config.stream.namespace, name: settings.config.stream.name },
        pod: settings.identity.pod,
        snapshot: () => this.#reportSnapshot(),
        onClaimTokens: (tokens) => {
          viewerTokens?.setClaimTokens(tokens);
          this.#revokeSessions();
        },
        onResult: (ok) => {
          this.#metrics.operatorReport(ok);
        },
        log,
      });
    const reporter = this.#reporter;
    if (reporter && viewerTokens)
      viewerTokens.onUnknownToken(async () => {
        await reporter.reportNow();
      });
    const viewers = this.#viewers;
    const publisher = this.#whip;
    if (viewers || publisher) {
      const parameterSets = (): Buffer => pipeline.parameterSets();
      pipeline.onAccessUnit((unit) => {
        if (unit.keyframe) keyframes.keyframeSent();
        // Prepared once for every WebRTC sink, and only when one would send it.
        if (!viewers?.active && !publisher?.connected) return;
        const prepared = withParameterSets(unit, parameterSets);
        const rtpTimestamp = rtpTimestampOf(unit);
        viewers?.accessUnit(prepared, rtpTimestamp);
        publisher?.accessUnit(prepared, rtpTimestamp);
      });
    }
  }

  /** Port of the WHEP endpoint and the player page, once started; 0 without WHEP. */
  get viewerPort(): number {
    return this.#viewerServer?.port ?? 0;
  }

  get viewers(): WebRtcViewers | undefined {
    return this.#viewers;
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
      await this.#viewerServer?.listen();
    } catch (error) {
      this.#pipeline.stop();
      this.#server?.close();
      this.#server = undefined;
      throw error;
    }
    this.#whip?.start();
    this.#reporter?.start();
    if (this.#viewers)
      this.#revokeTimer = setInterval(() => {
        this.#revokeSessions();
      }, REVOKE_CHECK_MS);
    if (this.#bitrate || this.#viewers || this.#whip)
      this.#adaptTimer = setInterval(() => {
        const stats = this.#pipeline.stats();
        this.#adaptBitrate(stats);
        this.#followPipeline(stats);
      }, ADAPT_INTERVAL_MS);
    this.#log.info(
      {
        sharedDir: this.#settings.pipeline.sharedDir,
        srt: this.#settings.pipeline.srt?.listener ? 'listener' : this.#settings.pipeline.srt ? 'caller' : 'off',
        rtmp: this.#settings.pipeline.rtmp ? 'on' : 'off',
        recording: this.#settings.pipeline.recording?.directory ?? 'off',
        metricsPort: this.#metricsPort,
        whepPort: this.#viewerServer?.port,
        whepScheme: this.#viewerServer ? (this.#viewerServer.secure ? 'https' : 'http') : undefined,
        encoder: this.#pipeline.stats().encoder,
        encoderReason: this.#pipeline.stats().encoderReason,
      },
      'sidecar started',
    );
    if (this.#settings.input.backend === 'uinput')
      this.#log.warn(
        'input.backend is uinput, but this sidecar has no uinput backend yet: input goes over the control socket',
      );
    if (this.#settings.webrtc?.iceTcpRequested)
      this.#log.warn(
        'webrtc.iceTcp is set, but this build has no ICE-TCP (libjuice): offer TURN over TCP or TLS instead',
      );
  }

  /** Ends the sessions whose token left the set the sidecar accepts. */
  #revokeSessions(): void {
    const tokens = this.#tokens;
    if (tokens) this.#viewers?.revokeUnless((grant) => tokens.accepts(grant));
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
    clearInterval(this.#revokeTimer);
    this.#reporter?.stop();
    this.#keyframes.close();
    this.#viewers?.close();
    await this.#whip?.close();
    await this.#viewerServer?.close();
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

  /** Viewers map touches to the phone's screen: they hear of every size it takes and every turn. */
  #tellScreen(screen: Screen): void {
    const told = this.#screenTold;
    if (screen.width === told.width && screen.height === told.height && screen.rotation === told.rotation) return;
    this.#screenTold = screen;
    this.#viewers?.screenChanged(screen);
  }

  /**
   * What events the native side held back is caught up here, once a second: a surface size (a phone changing
   * surfaces faster than events pass), and one log line saying how many were held back.
   */
  #followPipeline({ width, height, rotation, eventsSuppressed }: PipelineStats): void {
    if (width > 0 && height > 0) this.#tellScreen({ width, height, rotation });
    if (eventsSuppressed > this.#eventsSuppressedLogged) {
      this.#log.warn(
        { suppressed: eventsSuppressed - this.#eventsSuppressedLogged },
        'phone or SRT events held back: more than a few a second of one kind',
      );
      this.#eventsSuppressedLogged = eventsSuppressed;
    }
  }

  /**
   * Once a second, the lowest of what SRT, the viewers and the WHIP server allow (each within the stream's
   * min..max): one encode feeds them all, so the weakest path sets the rate (a media server that fans out
   * to many people counts like one viewer).
   */
  #adaptBitrate(stats: PipelineStats): void {
    this.#bitrate?.update(stats.srt);
    const srtKbps = this.#bitrate?.currentKbps ?? Infinity;
    const viewerKbps = this.#viewers?.allowedKbps() ?? Infinity;
    const whipKbps = this.#whip?.allowedKbps() ?? Infinity;
    const next = Math.min(srtKbps, viewerKbps, whipKbps);
    if (!Number.isFinite(next) || next === this.#appliedKbps) return;
    this.#appliedKbps = next;
    this.#pipeline.setBitrate(next);
    this.#log.info({ kbps: next, srtKbps, viewerKbps, whipKbps }, 'bitrate adapted');
  }

  /** What the report to the operator says: a pipeline error counts for a minute after it happened. */
  #reportSnapshot(): ReportSnapshot {
    const stats = this.#pipeline.stats();
    const sessions = this.#viewers?.sessions() ?? [];
    const error =
      this.#lastError && performance.now() - this.#lastError.at < 60_000 ? this.#lastError.reason : undefined;
    return {
      streaming: this.ready(),
      viewers: sessions.length,
      controlViewers: sessions.filter((s) => s.role === 'control').length,
      encoder: stats.encoder,
      framesEncoded: stats.framesEncoded,
      bitrateKbps: stats.bitrateKbps,
      error,
      ...(this.#recordingStopped !== undefined ? { recordingStopped: this.#recordingStopped } : {}),
    };
  }

  #onEvent(event: PipelineEvent): void {
    // How many of this kind the native side held back before this one (a phone or SRT peer flooding them).
    const held = event.suppressed === undefined ? {} : { suppressed: event.suppressed };
    switch (event.type) {
      case 'producer-connected':
        this.#log.info({ producer: event.producer, ...held }, 'phone connected');
        break;
      case 'producer-disconnected':
        this.#log.info({ producer: event.producer, reason: event.reason, ...held }, 'phone disconnected');
        break;
      case 'surface':
        this.#tellScreen({ width: event.width, height: event.height, rotation: event.rotation });
        this.#log.info(
          {
            generation: event.generation,
            width: event.width,
            height: event.height,
            format: event.format,
            rotation: event.rotation,
            ...held,
          },
          'surface mapped',
        );
        break;
      case 'clipboard':
        // What the phone copied may be a password: its length is all the log says.
        this.#log.debug({ bytes: Buffer.byteLength(event.text), ...held }, "phone's clipboard changed");
        this.#viewers?.clipboard(event.text);
        break;
      case 'error':
        this.#lastError = { reason: `${event.name}: ${event.reason}`, at: performance.now() };
        this.#log.warn({ error: event.name, reason: event.reason, ...held }, 'pipeline error');
        break;
      case 'srt-connected':
        this.#metrics.srtConnected(1 + (event.suppressed ?? 0));
        this.#log.info(held, 'srt connected');
        break;
      case 'srt-disconnected':
        this.#log.warn({ reason: event.reason, ...held }, 'srt disconnected');
        break;
      case 'srt-error':
        this.#log.warn({ reason: event.reason, ...held }, 'srt connection failed');
        break;
      // The addon has replaced the stream key in every reason.
      case 'rtmp-connected':
        this.#log.info(held, 'rtmp publishing');
        break;
      case 'rtmp-disconnected':
        this.#log.warn({ reason: event.reason, ...held }, 'rtmp disconnected');
        break;
      case 'rtmp-error':
        this.#log.warn({ reason: event.reason, ...held }, 'rtmp connection failed');
        break;
      case 'recording-segment':
        this.#log.info({ segment: event.name, ...held }, 'recording segment finished');
        break;
      case 'recording-lost':
        this.#log.error({ reason: event.reason, ...held }, 'recording segment lost');
        break;
      case 'recording-stopped':
        this.#recordingStopped = event.reason;
        this.#log.error({ reason: event.reason, ...held }, 'recording stopped');
        void this.#reporter?.reportNow();
        break;
      case 'recording-resumed':
        this.#recordingStopped = undefined;
        this.#log.info(held, 'recording resumed');
        void this.#reporter?.reportNow();
        break;
      case 'recording-adopted':
        this.#log.warn({ reason: event.reason, ...held }, 'recording found unfinished segments');
        break;
    }
    this.#options.onEvent?.(event);
  }
}
