// The sidecar's Prometheus metrics, read from the native pipeline's counters at scrape time, so the media
// threads never call into JavaScript to count.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PipelineStats } from './native.ts';
import type { KeyframeCause, RefusedReason } from './webrtc/viewer-session.ts';
import type { ViewerRole } from './webrtc/viewer-tokens.ts';
import type { KeyframeWishOutcome, ViewerMetrics } from './webrtc/webrtc-viewers.ts';
import type { WhipAttemptResult, WhipMetrics } from './webrtc/whip-publisher.ts';

export class SidecarMetrics implements ViewerMetrics, WhipMetrics {
  readonly registry = new Registry();
  readonly #srtReconnects: Counter;
  readonly #revoked: Counter;
  #srtConnectedOnce = false;
  readonly #viewers: Gauge<'role'>;
  readonly #refused: Counter<'reason'>;
  readonly #keyframesWanted: Counter<'cause'>;
  readonly #keyframeWishes: Counter<'role' | 'outcome'>;
  readonly #captureToDisplay: Histogram<'viewer'>;
  readonly #whipAttempts: Counter<'result'>;
  readonly #whipConnected: Gauge;
  readonly #reports: Counter<'result'>;

  constructor(stats: () => PipelineStats) {
    collectDefaultMetrics({ register: this.registry });
    const registry = this.registry;
    // One native read per scrape, not one per metric: prom-client collects every metric of a scrape before
    // the event loop moves on to setImmediate callbacks.
    let snapshot: PipelineStats | undefined;
    const read = (): PipelineStats => {
      if (!snapshot) {
        snapshot = stats();
        setImmediate(() => {
          snapshot = undefined;
        });
      }
      return snapshot;
    };
    const counter = (name: string, help: string, value: (s: PipelineStats) => number): void => {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(value(read()));
        },
      });
    };
    // Totals kept natively are exported as gauges named *_total: prom-client counters cannot be set.
    counter('cloudphone_frames_published_total', 'Frames the phone completed', (s) => s.framesPublished);
    counter(
      'cloudphone_pipeline_events_suppressed_total',
      'Phone and SRT events (connects, refusals) not passed to JavaScript or logged: over a few a second of their kind',
      (s) => s.eventsSuppressed,
    );
    counter(
      'cloudphone_srt_log_lines_suppressed_total',
      "libsrt's log lines not written: over a few a second (a caller trying wrong passphrases over and over)",
      (s) => s.srtLogLinesSuppressed,
    );
    counter('cloudphone_frames_encoded_total', 'Frames encoded', (s) => s.framesEncoded);
    counter(
      'cloudphone_frames_dropped_total',
      'Frames superseded by a newer one before encoding (latest frame wins)',
      (s) => s.framesStale,
    );
    counter(
      'cloudphone_frames_torn_total',
      'Frames dropped because the phone overwrote them mid-read',
      (s) => s.framesTorn,
    );
    counter('cloudphone_keyframes_total', 'Keyframes encoded', (s) => s.keyframes);
    counter('cloudphone_encoded_bytes_total', 'Bytes of H.264 produced', (s) => s.bytesEncoded);
    counter('cloudphone_encode_seconds_total', 'Time spent in the encoder', (s) => s.encodeSecondsTotal);
    counter('cloudphone_convert_seconds_total', 'Time spent converting RGB to NV12', (s) => s.convertSecondsTotal);
    counter(
      'cloudphone_producer_malformed_messages_total',
      'Control messages from the phone that failed verification',
      (s) => s.malformedMessages,
    );
    counter(
      'cloudphone_producer_errors_total',
      'Surfaces or frames from the phone that were refused',
      (s) => s.producerErrors,
    );
    counter(
      'cloudphone_producer_connections_refused_total',
      "Control socket connections refused because the process was not running as one of the phone's uids",
      (s) => s.connectionsRefused,
    );
    counter(
      'cloudphone_producer_clipboard_updates_total',
      "Texts the phone's clipboard took that went to the control viewers (refused ones count as producer errors)",
      (s) => s.clipboardUpdates,
    );
    counter(
      'cloudphone_producer_capture_times_unbelieved_total',
      'Capture times from the phone that could not be true (in the future, negative, over 10 s old); the time the frame was read was used',
      (s) => s.captureTimesUnbelieved,
    );
    counter('cloudphone_input_sent_total', "Viewers' input events sent to the phone", (s) => s.input.sent);
    counter(
      'cloudphone_input_merged_total',
      'Moves and scrolls merged into one still waiting while the phone was slow to read input',
      (s) => s.input.merged,
    );
    counter(
      'cloudphone_input_deferred_total',
      "Input sends the phone's full socket refused; the events waited and went later",
      (s) => s.input.deferred,
    );
    counter(
      'cloudphone_input_released_total',
      'Cancels and key-ups sent for viewers that left, or lost control, holding a finger or a key down',
      (s) => s.input.released,
    );
    counter('cloudphone_input_waiting', 'Input events waiting for the phone to read', (s) => s.input.waiting);
    counter('cloudphone_bitrate_kbps', 'Bitrate the encoder is asked for', (s) => s.bitrateKbps);
    counter(
      'cloudphone_capture_to_encoded_seconds',
      'Capture to encoded time of the latest frame',
      (s) => s.lastCaptureToEncodedMs / 1000,
    );
    counter('cloudphone_producer_connected', '1 while a phone is connected', (s) => (s.producerConnected ? 1 : 0));
    counter('cloudphone_srt_connected', '1 while an SRT receiver is connected', (s) => (s.srt.connected ? 1 : 0));
    counter(
      'cloudphone_srt_receivers',
      'SRT receivers connected now (listener mode takes several)',
      (s) => s.srt.receivers,
    );
    counter(
      'cloudphone_srt_receivers_refused_total',
      'SRT receivers refused in the handshake because maxReceivers were connected',
      (s) => s.srt.refused,
    );
    counter('cloudphone_srt_rtt_seconds', 'SRT round-trip time (the worst receiver)', (s) => s.srt.rttMs / 1000);
    counter('cloudphone_srt_packets_lost_total', 'SRT packets reported lost by the receiver', (s) => s.srt.packetsLost);
    counter('cloudphone_srt_packets_retransmitted_total', 'SRT packets sent again', (s) => s.srt.packetsRetransmitted);
    counter('cloudphone_srt_packets_dropped_total', 'SRT packets dropped as too late', (s) => s.srt.packetsDropped);
    counter(
      'cloudphone_srt_send_buffer_seconds',
      'Data waiting in the SRT send buffer',
      (s) => s.srt.sendBufferMs / 1000,
    );
    counter(
      'cloudphone_srt_access_units_dropped_total',
      'Encoded frames dropped for SRT because the network fell behind',
      (s) => s.srt.accessUnitsDropped,
    );
    counter('cloudphone_rtmp_publishing', '1 while the RTMP push is publishing', (s) => (s.rtmp.publishing ? 1 : 0));
    counter('cloudphone_rtmp_sessions_total', 'RTMP connections that began publishing', (s) => s.rtmp.sessions);
    counter(
      'cloudphone_rtmp_failed_sessions_total',
      'RTMP connection attempts that failed, and sessions the server or network ended within 10 s of publishing (servers refuse a wrong stream key so)',
      (s) => s.rtmp.failedSessions,
    );
    counter('cloudphone_rtmp_access_units_sent_total', 'Encoded frames sent over RTMP', (s) => s.rtmp.accessUnitsSent);
    counter(
      'cloudphone_rtmp_access_units_dropped_total',
      'Encoded frames dropped for RTMP because the network fell behind',
      (s) => s.rtmp.accessUnitsDropped,
    );
    counter('cloudphone_rtmp_bytes_sent_total', 'FLV bytes handed to the RTMP connection', (s) => s.rtmp.bytesSent);
    counter('cloudphone_recording_active', '1 while recording (0 while stopped by a failed write)', (s) =>
      s.recording.recording ? 1 : 0,
    );
    counter('cloudphone_recording_segments_total', 'Recording segments finished', (s) => s.recording.segments);
    counter(
      'cloudphone_recording_segments_removed_total',
      'Recording segments removed by retention (size or age)',
      (s) => s.recording.segmentsRemoved,
    );
    counter(
      'cloudphone_recording_access_units_written_total',
      'Encoded frames recorded',
      (s) => s.recording.accessUnitsWritten,
    );
    counter(
      'cloudphone_recording_access_units_dropped_total',
      'Encoded frames not recorded: the disk fell behind, recording was stopped, or a segment awaited its keyframe',
      (s) => s.recording.accessUnitsDropped,
    );
    counter(
      'cloudphone_recording_bytes_written_total',
      'Bytes written to recording segments',
      (s) => s.recording.bytesWritten,
    );
    counter(
      'cloudphone_recording_stored_bytes',
      "What this pod's recording segments hold, the one being written included",
      (s) => s.recording.bytesStored,
    );
    counter(
      'cloudphone_recording_failures_total',
      'Times recording stopped on a failed write (the volume full, or not writable)',
      (s) => s.recording.failures,
    );
    new Gauge({
      name: 'cloudphone_encoder_info',
      help: 'The encoder in use, as a label (1 for the one in use)',
      labelNames: ['encoder'],
      registers: [registry],
      collect() {
        this.reset();
        const { encoder } = read();
        if (encoder) this.set({ encoder }, 1);
      },
    });
    this.#srtReconnects = new Counter({
      name: 'cloudphone_srt_reconnects_total',
      help: 'SRT connections after the first',
      registers: [registry],
    });
    this.#revoked = new Counter({
      name: 'cloudphone_webrtc_viewers_revoked_total',
      help: 'Viewer sessions ended because their token was rotated, released or no longer confirmed',
      registers: [registry],
    });
    this.#viewers = new Gauge({
      name: 'cloudphone_webrtc_viewers',
      help: 'WebRTC viewers connected, by role',
      labelNames: ['role'],
      registers: [registry],
    });
    this.#refused = new Counter({
      name: 'cloudphone_webrtc_viewer_messages_refused_total',
      help: 'Data-channel messages from viewers not acted on: invalid, wrong role, over the rate, text, phone not taking input',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.#keyframesWanted = new Counter({
      name: 'cloudphone_webrtc_keyframes_wanted_total',
      help: 'Keyframe wishes from viewers (joins, PLI, FIR), before rate limiting; still-screen ones (the viewer had shown the newest picture) are not acted on',
      labelNames: ['cause'],
      registers: [registry],
    });
    this.#keyframeWishes = new Counter({
      name: 'cloudphone_webrtc_keyframe_wishes_total',
      help: "Viewers' keyframe wishes by role and outcome: requested (a control viewer's, at once), waits (a view-only viewer's, for the next keyframe), over-budget (over one a second per viewer), not-needed (still screen)",
      labelNames: ['role', 'outcome'],
      registers: [registry],
    });
    // Per viewer: a label set per connected session (at most webrtc.whep.maxViewers), removed when it leaves.
    this.#captureToDisplay = new Histogram({
      name: 'cloudphone_webrtc_capture_to_display_seconds',
      help: "Capture on the phone to display in the viewer's browser, per viewer session",
      labelNames: ['viewer'],
      buckets: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1],
      registers: [registry],
    });
    this.#whipAttempts = new Counter({
      name: 'cloudphone_whip_attempts_total',
      help: 'WHIP push attempts, by how they ended: connected, refused (401/403), http, network, ice, token',
      labelNames: ['result'],
      registers: [registry],
    });
    this.#whipConnected = new Gauge({
      name: 'cloudphone_whip_connected',
      help: '1 while the WHIP push to the media server is connected',
      registers: [registry],
    });
    this.#reports = new Counter({
      name: 'cloudphone_operator_reports_total',
      help: 'Reports to the operator, by result: ok, or failed (unreachable, refused, untrusted certificate)',
      labelNames: ['result'],
      registers: [registry],
    });
  }

  operatorReport(ok: boolean): void {
    this.#reports.inc({ result: ok ? 'ok' : 'failed' });
  }

  whipAttempt(result: WhipAttemptResult): void {
    this.#whipAttempts.inc({ result });
  }

  whipConnected(connected: boolean): void {
    this.#whipConnected.set(connected ? 1 : 0);
  }

  viewers(role: ViewerRole, count: number): void {
    this.#viewers.set({ role }, count);
  }

  refused(reason: RefusedReason): void {
    this.#refused.inc({ reason });
  }

  keyframeWanted(cause: KeyframeCause): void {
    this.#keyframesWanted.inc({ cause });
  }

  keyframeWish(role: ViewerRole, outcome: KeyframeWishOutcome): void {
    this.#keyframeWishes.inc({ role, outcome });
  }

  latency(viewer: string, milliseconds: number): void {
    this.#captureToDisplay.observe({ viewer }, milliseconds / 1000);
  }

  viewerLeft(viewer: string): void {
    this.#captureToDisplay.remove({ viewer });
  }

  revoked(count: number): void {
    this.#revoked.inc(count);
  }

  /** Counts reconnects (times: connections the one event stands for); fps in and out are rate() of the frame totals. */
  srtConnected(times = 1): void {
    const reconnects = this.#srtConnectedOnce ? times : times - 1;
    if (reconnects > 0) this.#srtReconnects.inc(reconnects);
    this.#srtConnectedOnce = true;
  }
}
