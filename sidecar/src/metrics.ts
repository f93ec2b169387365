// The sidecar's Prometheus metrics, read from the native pipeline's counters at scrape time, so the media
// threads never call into JavaScript to count.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { PipelineStats } from './native.ts';

export class SidecarMetrics {
  readonly registry = new Registry();
  readonly #srtReconnects: Counter;
  #srtConnectedOnce = false;

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
    counter('cloudphone_bitrate_kbps', 'Bitrate the encoder is asked for', (s) => s.bitrateKbps);
    counter(
      'cloudphone_capture_to_encoded_seconds',
      'Capture to encoded time of the latest frame',
      (s) => s.lastCaptureToEncodedMs / 1000,
    );
    counter('cloudphone_producer_connected', '1 while a phone is connected', (s) => (s.producerConnected ? 1 : 0));
    counter('cloudphone_srt_connected', '1 while an SRT receiver is connected', (s) => (s.srt.connected ? 1 : 0));
    counter('cloudphone_srt_rtt_seconds', 'SRT round-trip time', (s) => s.srt.rttMs / 1000);
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
  }

  /** Counts reconnects; fps in and out are rate() of the frame totals, computed by Prometheus. */
  srtConnected(): void {
    if (this.#srtConnectedOnce) this.#srtReconnects.inc();
    this.#srtConnectedOnce = true;
  }
}
