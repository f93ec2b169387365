// Wires the operator together: the only module that knows every part. Both replicas serve the webhooks and
// the report endpoint; only the Lease holder reconciles, writes status and patches webhook configurations.

import { describeError } from './kube/api-error.ts';
import {
  AdmissionregistrationV1Api,
  ApiException,
  AuthenticationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  VersionApi,
  type V1ConfigMap,
  type V1MutatingWebhookConfiguration,
  type V1Service,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { CloudPhoneClaim, CloudPhonePool, CloudPhoneStream } from '../../generated/ts/api-types.ts';
import { SchemaValidator } from '../../schemas/runtime/validator.ts';
import type { OperatorConfig } from './config.ts';
import { CaBundlePublisher } from './controller/ca-bundle-publisher.ts';
import { Controller } from './controller/controller.ts';
import { EventRecorder } from './controller/event-recorder.ts';
import { ReportRelay } from './controller/report-relay.ts';
import { ReportStore, SidecarReports } from './controller/sidecar-reports.ts';
import { StatusWriter } from './controller/status-writer.ts';
import { ClaimReconciler } from './controller/claim-reconciler.ts';
import { PoolReconciler, poolKeyOf } from './controller/pool-reconciler.ts';
import { keyOf, MANAGED_BY, MANAGED_BY_LABEL, StreamReconciler } from './controller/stream-reconciler.ts';
import { startHealthServer } from '../../common/health-server.ts';
import { HttpsEndpoints } from './https-endpoints.ts';
import { pooledKubeConfig } from './kube/kube-config.ts';
import { selectorMatches } from './webhook/label-selector.ts';
import { LeaderElector } from './kube/leader-election.ts';
import { LeadershipFence } from './kube/leadership-fence.ts';
import { PodCache } from './kube/pod-cache.ts';
import { ResilientInformer } from './kube/resilient-informer.ts';
import { GROUP, VERSION } from './labels.ts';
import { moduleLogger } from './log.ts';
import { OperatorMetrics } from './metrics.ts';
import { AdmissionHandlers } from './webhook/admission-handlers.ts';
import { CertificateManager } from './webhook/certificate-manager.ts';
import type { InjectionSettings } from './webhook/injection-settings.ts';
import {
  MUTATE_PATH,
  deleteWebhookConfigurations,
  syncWebhookConfigurations,
  VALIDATE_PATH,
  type WebhookEndpoint,
} from './webhook/webhook-configurations.ts';

export const REPORT_PATH = '/report';
const CLAIM_STATUS_WRITES_PER_SECOND = 200;
const SERVICE_PORT = 443;
/** The Service's port for sidecar reports (the chart's "reports" port). */
export const REPORT_SERVICE_PORT = 9444;

export interface RunningOperator {
  httpsPort: number;
  reportPort: number;
  healthPort: number;
  isLeader: () => boolean;
  stop: () => Promise<void>;
}

/** Native sidecars (restartPolicy Always on init containers) are on by default from Kubernetes 1.29. */
async function supportsNativeSidecars(kc: KubeConfig): Promise<boolean> {
  const version = await kc.makeApiClient(VersionApi).getCode();
  const major = Number.parseInt(version.major, 10);
  const minor = Number.parseInt(version.minor, 10);
  return major > 1 || (major === 1 && minor >= 29);
}

export async function startOperator(config: OperatorConfig, root: Logger): Promise<RunningOperator> {
  const log = moduleLogger('operator', root);
  const requestTimeoutMs = config.apiTimeoutSeconds * 1000;
  // Two clients: one for what every replica does (caches, admission, token reviews, certificates), and one for
  // the leader's work, whose calls are refused outside a leadership term and aborted when it ends.
  const kc = pooledKubeConfig(undefined, { requestTimeoutMs });
  const fence = new LeadershipFence();
  const leaderKc = pooledKubeConfig(undefined, { requestTimeoutMs, fence });
  const core = kc.makeApiClient(CoreV1Api);
  const leaderCore = leaderKc.makeApiClient(CoreV1Api);
  const leaderCustom = leaderKc.makeApiClient(CustomObjectsApi);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const leaderAdmission = leaderKc.makeApiClient(AdmissionregistrationV1Api);
  const renewDeadlineMs = Math.floor((config.leaseDurationSeconds * 1000 * 2) / 3);
  const metrics = new OperatorMetrics();
  // Health first: while the start waits (for cert-manager's Secret, for a big cluster's lists) the kubelet sees a
  // live process that is not ready yet, rather than a closed port. Ready: certificates loaded, caches synced, and
  // the webhooks served.
  let ready = false;
  const health = await startHealthServer(config.healthPort, config.listenHost, () => ready, metrics.registry);
  log.info({ healthPort: health.port }, 'health server listening');
  const validator = new SchemaValidator();
  const nativeSidecars = await supportsNativeSidecars(kc);

  if (config.dev) {
    await core.createNamespace({ body: { metadata: { name: config.namespace } } }).catch((error: unknown) => {
      if (!(error instanceof ApiException) || error.code !== 409) throw error;
    });
  }

  const streams = new ResilientInformer<CloudPhoneStream>({
    name: 'streams',
    kubeConfig: kc,
    path: `/apis/${GROUP}/${VERSION}/cloudphonestreams`,
    list: () =>
      custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'cloudphonestreams' }) as never,
    log,
  });
  const pools = new ResilientInformer<CloudPhonePool>({
    name: 'pools',
    kubeConfig: kc,
    path: `/apis/${GROUP}/${VERSION}/cloudphonepools`,
    list: () => custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'cloudphonepools' }) as never,
    log,
  });
  const claims = new ResilientInformer<CloudPhoneClaim>({
    name: 'claims',
    kubeConfig: kc,
    path: `/apis/${GROUP}/${VERSION}/cloudphoneclaims`,
    list: () => custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'cloudphoneclaims' }) as never,
    log,
  });
  const pods = new PodCache({
    kubeConfig: kc,
    metadataKubeConfig: (accept) => pooledKubeConfig(undefined, { requestTimeoutMs, accept }),
    log,
    peers: { namespace: config.namespace, labels: config.peerLabels },
  });
  const services = new ResilientInformer<V1Service>({
    name: 'services',
    kubeConfig: kc,
    path: '/api/v1/services',
    list: () => core.listServiceForAllNamespaces({ labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` }),
    labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`,
    log,
  });

  // In development the port may be chosen by the system (0): the URLs are known only once the server listens.
  let httpsPort = config.httpsPort;
  let reportPort = config.reportPort;
  const serviceHost = `${config.serviceName}.${config.namespace}.svc`;
  const endpoint = (): WebhookEndpoint =>
    config.dev
      ? {
          url: `https://127.0.0.1:${String(httpsPort)}`,
          operatorNamespace: config.namespace,
          configurationName: config.webhookConfigurationName,
        }
      : {
          service: { namespace: config.namespace, name: config.serviceName, port: SERVICE_PORT },
          operatorNamespace: config.namespace,
          configurationName: config.webhookConfigurationName,
        };
  const reportUrl = (): string =>
    config.dev
      ? `https://127.0.0.1:${String(reportPort)}${REPORT_PATH}`
      : `https://${serviceHost}:${String(REPORT_SERVICE_PORT)}${REPORT_PATH}`;

  const endpoints = new HttpsEndpoints(moduleLogger('https', root));
  // Reports on a port of their own: any pod can reach it, so it is held to a report's size (a few KiB, with a 1 KiB
  // error in JSON escapes at worst) and to a number of connections, and authenticates before it reads a body.
  const reportEndpoints = new HttpsEndpoints(moduleLogger('reports-https', root), {
    maxBodyBytes: 8 * 1024,
    maxConnections: config.reportMaxConnections,
    maxConnectionsPerAddress: config.reportMaxConnectionsPerAddress,
  });
  // With external certificates the caBundle is cert-manager's (cainjector) to keep, not the operator's.
  // The webhooks trust the bundle (both CAs while one is rolled over: replicas switch at slightly different times).
  const syncWebhooks = async (): Promise<void> => {
    if (config.certificates === 'external' || !certificates.bundlePem) return;
    await syncWebhookConfigurations(leaderAdmission, endpoint(), certificates.bundlePem, config.dev, log).catch(
      (error: unknown) => {
        log.warn({ error: describeError(error) }, 'could not update the webhook configurations');
      },
    );
  };
  // The leader repairs a caBundle someone else blanked or changed within a moment of the change, not at the next
  // certificate change: it watches the two configurations (by name, which RBAC can restrict a watch to).
  const byName = `metadata.name=${config.webhookConfigurationName}`;
  const webhookConfigurationWatches =
    config.certificates === 'external'
      ? []
      : [
          new ResilientInformer<V1MutatingWebhookConfiguration>({
            name: 'mutating-webhook-configuration',
            kubeConfig: kc,
            path: '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
            fieldSelector: byName,
            list: () => admission.listMutatingWebhookConfiguration({ fieldSelector: byName }),
            log,
          }),
          new ResilientInformer<V1ValidatingWebhookConfiguration>({
            name: 'validating-webhook-configuration',
            kubeConfig: kc,
            path: '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
            fieldSelector: byName,
            list: () => admission.listValidatingWebhookConfiguration({ fieldSelector: byName }),
            log,
          }),
        ];
  for (const watch of webhookConfigurationWatches)
    for (const event of ['add', 'update'] as const)
      (watch as ResilientInformer<V1MutatingWebhookConfiguration>).on(event, () => {
        if (leader.isLeader()) void syncWebhooks();
      });
  const certificates = new CertificateManager({
    core,
    namespace: config.namespace,
    secretName: config.certificateSecret,
    identity: {
      dnsNames: [serviceHost, `${serviceHost}.cluster.local`, config.serviceName, 'localhost'],
      ipAddresses: ['127.0.0.1'],
    },
    servingValidityDays: config.servingCertDays,
    checkIntervalMs: config.certificateCheckSeconds * 1000,
    external: config.certificates === 'external',
    rolloverMs: config.caRolloverSeconds * 1000,
    log: moduleLogger('certificates', root),
    onChange: (tls) => {
      endpoints.reload(tls);
      reportEndpoints.reload(tls);
    },
    onBundleChange: () => {
      if (!leader.isLeader()) return;
      void syncWebhooks();
      caBundles.sync();
    },
  });
  // The CAs sidecars trust, published where they run: in every namespace with a stream.
  const caConfigMaps = new ResilientInformer<V1ConfigMap>({
    name: 'ca-bundles',
    kubeConfig: kc,
    path: '/api/v1/configmaps',
    fieldSelector: `metadata.name=${config.caBundleConfigMap}`,
    list: () => core.listConfigMapForAllNamespaces({ fieldSelector: `metadata.name=${config.caBundleConfigMap}` }),
    log,
  });
  const caBundles = new CaBundlePublisher({
    name: config.caBundleConfigMap,
    core: leaderCore,
    configMaps: caConfigMaps,
    namespaces: () => streams.list().map((s) => s.metadata?.namespace ?? ''),
    bundle: () => certificates.bundlePem,
    isLeader: () => leader.isLeader(),
    log: moduleLogger('ca-bundles', root),
  });

  const statusWriter = new StatusWriter(leaderCustom, config.maxStatusWritesPerSecond);
  const events = new EventRecorder(leaderCore, moduleLogger('events', root));
  // A report speaks for its phone for three intervals, as in the stream's status (reportFreshMs there).
  const reportStore = new ReportStore(config.reportIntervalSeconds * 1000 * 3);
  const reconciler = new StreamReconciler({
    streams,
    pods,
    services,
    core: leaderCore,
    custom: leaderCustom,
    statusWriter,
    events,
    reports: reportStore,
    validator,
    metricsPort: config.sidecarMetricsPort,
    log: moduleLogger('stream-reconciler', root),
    reportGraceMs: config.reportGraceSeconds * 1000,
  });
  const controller = new Controller({
    name: 'cloudphonestream',
    reconcile: async (key) => {
      const writes = statusWriter.writes;
      const outcome = await reconciler.reconcile(key);
      metrics.statusWrites.inc(statusWriter.writes - writes);
      return outcome;
    },
    onTerminal: (key, error) => reconciler.onTerminal(key, error),
    workers: config.workers,
    log: moduleLogger('controller', root),
    metrics,
  });
  // Pools: their own controller (one reconcile per pool at a time), fed by the pools, their pods and their streams.
  const poolReconciler = new PoolReconciler({
    pools,
    streams,
    pods,
    core: leaderCore,
    custom: leaderCustom,
    statusWriter,
    reports: reportStore,
    metrics,
    claims,
    events,
    log: moduleLogger('pool-reconciler', root),
  });
  // A claim's status is the answer someone is waiting for: it gets its own, higher write budget, apart from the
  // streams' (which follow every pod's reports and are kept to --max-status-writes-per-second).
  const claimStatusWriter = new StatusWriter(leaderCustom, CLAIM_STATUS_WRITES_PER_SECOND);
  const claimReconciler = new ClaimReconciler({
    claims,
    pools,
    streams,
    pods,
    reports: reportStore,
    core: leaderCore,
    custom: leaderCustom,
    statusWriter: claimStatusWriter,
    events,
    metrics,
    log: moduleLogger('claim-reconciler', root),
  });
  const claimController = new Controller({
    name: 'cloudphoneclaim',
    reconcile: (key) => claimReconciler.reconcile(key),
    onTerminal: () => Promise.resolve(),
    workers: config.workers,
    log: moduleLogger('claim-controller', root),
    metrics,
  });
  // Claims still waiting on a pool look again when its phones change; a bound claim follows its phone.
  const enqueueClaimsOf = (namespace: string, pool: string): void => {
    for (const claim of claims.list(namespace))
      if (claim.spec.poolRef.name === pool && claim.status?.phase !== 'Bound' && claim.status?.phase !== 'Released')
        claimController.enqueue(keyOf(claim));
  };
  for (const event of ['add', 'update', 'delete'] as const) {
    claims.on(event, (claim) => {
      claimController.enqueue(keyOf(claim));
      poolController.enqueue(`${claim.metadata?.namespace ?? ''}/${claim.spec.poolRef.name}`);
    });
    pods.on(event, (pod) => {
      const pool = poolKeyOf(pod);
      if (!pool) return;
      const [namespace = '', name = ''] = pool.split('/');
      enqueueClaimsOf(namespace, name);
      const claim = pod.metadata?.labels?.['cloudphone.io/claim'];
      if (claim) claimController.enqueue(`${namespace}/${claim}`);
    });
  }
  const poolController = new Controller({
    name: 'cloudphonepool',
    reconcile: (key) => poolReconciler.reconcile(key),
    onTerminal: () => Promise.resolve(),
    workers: config.workers,
    log: moduleLogger('pool-controller', root),
    metrics,
  });
  for (const event of ['add', 'update', 'delete'] as const) {
    pools.on(event, (pool) => {
      poolController.enqueue(keyOf(pool));
    });
    pods.on(event, (pod) => {
      const key = poolKeyOf(pod);
      if (key) poolController.enqueue(key);
    });
    streams.on(event, (stream) => {
      for (const pool of pools.list())
        if (
          pool.metadata?.namespace === stream.metadata?.namespace &&
          pool.spec.streamRef.name === stream.metadata?.name
        )
          poolController.enqueue(keyOf(pool));
    });
  }
  streams.on('add', (s) => {
    controller.enqueue(keyOf(s));
    caBundles.sync();
  });
  streams.on('update', (s) => {
    controller.enqueue(keyOf(s));
  });
  streams.on('delete', (s) => {
    controller.enqueue(keyOf(s));
  });
  for (const event of ['add', 'update', 'delete'] as const) {
    pods.on(event, (pod) => {
      for (const key of reconciler.keysForPod(pod)) controller.enqueue(key);
    });
    services.on(event, (service) => {
      const owner = service.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'CloudPhoneStream');
      if (owner) controller.enqueue(`${service.metadata?.namespace ?? ''}/${owner.name}`);
    });
  }

  const controllers = [controller, poolController, claimController];
  const leader: LeaderElector = new LeaderElector({
    // A Lease call that hangs must not outlast the deadline it is racing against.
    coordination: pooledKubeConfig(undefined, { requestTimeoutMs: renewDeadlineMs }).makeApiClient(CoordinationV1Api),
    namespace: config.namespace,
    name: config.leaseName,
    identity: config.identity,
    leaseDurationSeconds: config.leaseDurationSeconds,
    renewDeadlineMs,
    retryPeriodMs: Math.max(500, Math.floor((config.leaseDurationSeconds * 1000) / 7)),
    fence,
    log: moduleLogger('leader-election', root),
    onStartedLeading: async () => {
      // Each waits for its previous workers (if a step-down is still draining) before taking keys.
      await Promise.all(controllers.map((c) => c.start()));
      if (!fence.open) return; // lost again meanwhile: the stop that follows finds nothing new to drain
      metrics.leader.set(1);
      for (const stream of streams.list()) controller.enqueue(keyOf(stream));
      for (const pool of pools.list()) poolController.enqueue(keyOf(pool));
      for (const claim of claims.list()) claimController.enqueue(keyOf(claim));
      void syncWebhooks();
      caBundles.sync();
    },
    onStoppedLeading: async () => {
      metrics.leader.set(0);
      // The elector closed the fence already (calls in flight were aborted, so the workers finish now).
      await Promise.all(controllers.map((c) => c.stop()));
      log.info('leader work stopped');
    },
  });
  const tls = await certificates.start(() => leader.isLeader());
  const settings = (): InjectionSettings => ({
    sidecarImage: config.sidecarImage,
    sidecarImagePullPolicy: config.sidecarImagePullPolicy,
    sidecarResources: config.sidecarResources,
    sharedVolumeSizeLimit: config.sharedVolumeSize,
    nativeSidecars,
    metricsPort: config.sidecarMetricsPort,
    report: {
      url: reportUrl(),
      caConfigMap: config.caBundleConfigMap,
      intervalSeconds: config.reportIntervalSeconds,
    },
  });
  const handlers = new AdmissionHandlers({
    streams,
    settings,
    validator,
    custom,
    metrics,
    log: moduleLogger('admission', root),
    operatorNamespace: config.namespace,
  });
  // The other replicas: Running pods of this operator, by the labels the chart gives them all (an empty selector
  // matches nothing: no peers).
  const peerSelector = { matchLabels: config.peerLabels };
  const relay = new ReportRelay({
    peers: () =>
      pods
        .list(config.namespace)
        .filter(
          (pod) =>
            pod.metadata?.name !== config.podName &&
            pod.status?.phase === 'Running' &&
            pod.status.podIP &&
            selectorMatches(peerSelector, pod.metadata?.labels),
        )
        .map((pod) => pod.status?.podIP ?? ''),
    port: config.reportPort,
    path: REPORT_PATH,
    // A peer may still serve the previous CA's certificate during a rollover.
    caPem: () => certificates.bundlePem || tls.caPem,
    serverName: serviceHost,
    log: moduleLogger('report-relay', root),
    onResult: (result) => {
      metrics.reportRelays.inc({ result });
    },
  });
  const reports = new SidecarReports({
    authentication: kc.makeApiClient(AuthenticationV1Api),
    validator,
    store: reportStore,
    pod: (namespace, name) => pods.get(name, namespace),
    onReport: (report) => {
      controller.enqueue(`${report.stream.namespace}/${report.stream.name}`);
      const pod = pods.get(report.pod, report.stream.namespace);
      const pool = pod && poolKeyOf(pod);
      if (pool) poolController.enqueue(pool);
    },
    relay: (authorization, body) => {
      relay.forward(authorization, body);
    },
    log: moduleLogger('reports', root),
  });
  endpoints.route(MUTATE_PATH, handlers.mutatePods);
  endpoints.route(VALIDATE_PATH, handlers.validateResources);
  reportEndpoints.route(
    REPORT_PATH,
    (req, body) => {
      const reply = reports.handle(req, body);
      metrics.sidecarReports.inc({ code: String(reply.status) });
      return Promise.resolve(reply);
    },
    async (req) => {
      const refused = await reports.admit(req);
      if (refused) metrics.sidecarReports.inc({ code: String(refused.status) });
      return refused;
    },
  );

  // Webhooks answer from the informers' caches: serve them only once the caches are filled.
  await Promise.all([
    streams.start(),
    pools.start(),
    claims.start(),
    pods.start(),
    services.start(),
    caConfigMaps.start(),
  ]);
  // Not waited for: the operator serves without them; they only speed up a repair.
  for (const watch of webhookConfigurationWatches) void watch.start();
  httpsPort = await endpoints.listen(config.httpsPort, config.listenHost, tls);
  reportPort = await reportEndpoints.listen(config.reportPort, config.listenHost, tls);
  ready = true;
  metrics.readFrom({
    informerRestarts: () => ({
      streams: streams.restarts,
      pools: pools.restarts,
      claims: claims.restarts,
      pods: pods.restarts,
      services: services.restarts,
    }),
    httpsConnections: () => ({ admission: endpoints.connections, reports: reportEndpoints.connections }),
    refusedConnections: () => reportEndpoints.refusedConnections,
    podsCached: () => pods.counts(),
  });

  leader.start();
  log.info(
    { httpsPort, reportPort, healthPort: health.port, identity: config.identity, nativeSidecars, dev: config.dev },
    'operator started',
  );

  return {
    httpsPort,
    reportPort,
    healthPort: health.port,
    isLeader: () => leader.isLeader(),
    stop: async () => {
      ready = false;
      const wasLeader = leader.isLeader();
      // Stops the leader work first, then releases the Lease: the next leader never overlaps with this one.
      await leader.stop();
      await Promise.all(controllers.map((c) => c.stop()));
      // A development operator installed its webhooks itself; it leaves no webhook pointing at a closed port.
      if (config.dev && wasLeader) await deleteWebhookConfigurations(admission);
      certificates.stop();
      relay.close();
      await Promise.all([
        streams.stop(),
        pools.stop(),
        claims.stop(),
        pods.stop(),
        services.stop(),
        caConfigMaps.stop(),
        caBundles.idle(),
        ...webhookConfigurationWatches.map((watch) => watch.stop()),
        endpoints.close(),
        reportEndpoints.close(),
        closeServer(health.server),
      ]);
      log.info('operator stopped');
    },
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}
