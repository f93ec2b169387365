// The operator's Prometheus metrics, served on /metrics of the plain-HTTP health port.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Figures the operator's parts keep themselves: read when Prometheus scrapes, not copied on a timer. */
export interface OperatorFigures {
  /** Watch restarts, by informer name. */
  informerRestarts(): Record<string, number>;
  /** TLS connections accepted since start, by port. */
  httpsConnections(): { admission: number; reports: number };
  /** Report-port connections closed at once for being over a limit, since start. */
  refusedConnections(): number;
  podsCached(): { full: number; metadata: number };
}

export class OperatorMetrics {
  readonly registry = new Registry();
  #figures: OperatorFigures | undefined;
  readonly reconcileDuration = new Histogram({
    name: 'cloudphone_reconcile_duration_seconds',
    help: 'Time one reconcile took.',
    labelNames: ['controller'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'cloudphone_reconcile_errors_total',
    help: 'Reconciles that failed, by whether they will be retried (transient) or not (terminal).',
    labelNames: ['controller', 'kind'] as const,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'cloudphone_workqueue_depth',
    help: 'Keys waiting in the work queue.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly webhookDuration = new Histogram({
    name: 'cloudphone_webhook_duration_seconds',
    help: 'Time to answer an admission review.',
    labelNames: ['webhook', 'allowed'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly podsInjected = new Counter({
    name: 'cloudphone_pods_injected_total',
    help: 'Pods the webhook injected the sidecar into.',
    labelNames: ['namespace'] as const,
    registers: [this.registry],
  });
  readonly statusWrites = new Counter({
    name: 'cloudphone_status_writes_total',
    help: 'Status writes to the apiserver.',
    registers: [this.registry],
  });
  readonly sidecarReports = new Counter({
    name: 'cloudphone_sidecar_reports_total',
    help: 'Reports received from sidecars, by HTTP status answered.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly reportRelays = new Counter({
    name: 'cloudphone_report_relays_total',
    help: 'Sidecar reports passed on to another operator replica, by result (sent, refused, failed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly httpsConnections = new Gauge({
    name: 'cloudphone_https_connections',
    help: 'TLS connections accepted since start, by port (admission, reports).',
    labelNames: ['port'] as const,
    registers: [this.registry],
    collect: () => {
      const connections = this.#figures?.httpsConnections();
      if (!connections) return;
      this.httpsConnections.set({ port: 'admission' }, connections.admission);
      this.httpsConnections.set({ port: 'reports' }, connections.reports);
    },
  });
  readonly refusedConnections = new Gauge({
    name: 'cloudphone_report_connections_refused',
    help: 'Connections to the report port closed at once since start, for being over a connection limit.',
    registers: [this.registry],
    collect: () => {
      if (this.#figures) this.refusedConnections.set(this.#figures.refusedConnections());
    },
  });
  readonly leader = new Gauge({
    name: 'cloudphone_leader',
    help: '1 while this replica holds the leader Lease.',
    registers: [this.registry],
  });
  readonly podsCached = new Gauge({
    name: 'cloudphone_pods_cached',
    help: "Pods in the operator's cache, by how much of each is kept: full (its phones and its own pods) or metadata.",
    labelNames: ['kept'] as const,
    registers: [this.registry],
    collect: () => {
      const cached = this.#figures?.podsCached();
      if (!cached) return;
      this.podsCached.set({ kept: 'full' }, cached.full);
      this.podsCached.set({ kept: 'metadata' }, cached.metadata);
    },
  });
  readonly informerRestarts = new Gauge({
    name: 'cloudphone_informer_restarts',
    help: 'Times an informer restarted its watch after an error or a quiet spell.',
    labelNames: ['informer'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [informer, restarts] of Object.entries(this.#figures?.informerRestarts() ?? {}))
        this.informerRestarts.set({ informer }, restarts);
    },
  });

  // For external autoscalers (KEDA, a Prometheus adapter): each pool's phones and its waiting claims.
  readonly poolPhones = new Gauge({
    name: 'cloudphone_pool_phones',
    help: 'Phones of a pool by state: idle (ready, unused), busy (claimed or with a control viewer), starting.',
    labelNames: ['namespace', 'pool', 'state'] as const,
    registers: [this.registry],
  });
  readonly poolPendingClaims = new Gauge({
    name: 'cloudphone_pool_pending_claims',
    help: 'Claims on a pool waiting for a phone.',
    labelNames: ['namespace', 'pool'] as const,
    registers: [this.registry],
  });
  readonly claimBoundSeconds = new Histogram({
    name: 'cloudphone_claim_bound_seconds',
    help: 'From the operator first seeing a claim to its phone bound.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });

  /** Where the scraped figures come from, once the parts that keep them exist. */
  readFrom(figures: OperatorFigures): void {
    this.#figures = figures;
  }

  claimBound(seconds: number): void {
    this.claimBoundSeconds.observe(seconds);
  }

  constructor() {
    // Includes nodejs_eventloop_lag_* (from perf_hooks.monitorEventLoopDelay): how long work waits behind other work.
    collectDefaultMetrics({ register: this.registry });
  }
}
