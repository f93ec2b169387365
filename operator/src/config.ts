// The operator's settings, from command-line flags with environment fallbacks (the Helm chart sets flags).

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError } from './errors.ts';

export interface OperatorConfig {
  /** Out of the cluster against $KUBECONFIG: webhooks call https://127.0.0.1, and the operator installs them. */
  dev: boolean;
  namespace: string;
  /**
   * This process's name in the leader Lease: its pod's name and a random part, so that a container restarted in
   * the same pod is a new candidate, not the old holder resuming a lease it cannot know is still its own.
   */
  identity: string;
  /** The pod this replica runs in (its name among the other replicas' pods). */
  podName: string;
  listenHost: string;
  /** The admission webhooks' port. */
  httpsPort: number;
  /** The sidecars' report endpoint: its own port, apart from admission, with its own limits. */
  reportPort: number;
  /** Open connections the report port takes, in all and from one address (a node that masquerades, or a pod). */
  reportMaxConnections: number;
  reportMaxConnectionsPerAddress: number;
  healthPort: number;
  serviceName: string;
  /** The mutating and validating webhook configurations the chart installed (their caBundle is kept here). */
  webhookConfigurationName: string;
  certificateSecret: string;
  /** The ConfigMap, in every namespace with a stream, of the CAs sidecars trust for their reports. */
  caBundleConfigMap: string;
  /** After a CA is replaced: how long the previous one is still served (and twice that, trusted). */
  caRolloverSeconds: number;
  /**
   * operator: the operator makes its CA and serving certificate, renews them and keeps the webhooks' caBundle;
   * external: something else (cert-manager) writes the Secret and the caBundle, the operator only reads it.
   */
  certificates: 'operator' | 'external';
  /** Lifetime of a serving certificate; it is renewed after two thirds of it. */
  servingCertDays: number;
  /** How often the certificates in the Secret are checked (and renewed by the leader when due). */
  certificateCheckSeconds: number;
  sidecarImage: string;
  sidecarImagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  sidecarMetricsPort: number;
  sidecarResources: { requests: Record<string, string>; limits: Record<string, string> };
  /** Size limit of the memory-backed volume shared by the phone and the sidecar. */
  sharedVolumeSize: string;
  workers: number;
  maxStatusWritesPerSecond: number;
  leaseName: string;
  leaseDurationSeconds: number;
  /** Every API call (other than watches) is given up after this long. */
  apiTimeoutSeconds: number;
  reportIntervalSeconds: number;
  reportGraceSeconds: number;
  /**
   * Labels of this operator's own pods (key=value,...): a replica passes each sidecar report it takes on to the
   * others it finds by them. Empty: no other replica is looked for (one replica, or development).
   */
  peerLabels: Record<string, string>;
}

const options = {
  dev: { type: 'boolean', default: false },
  namespace: { type: 'string' },
  identity: { type: 'string' },
  'listen-host': { type: 'string' },
  'https-port': { type: 'string', default: '9443' },
  'report-port': { type: 'string', default: '9444' },
  'report-max-connections': { type: 'string', default: '8192' },
  'report-max-connections-per-address': { type: 'string', default: '128' },
  'health-port': { type: 'string', default: '8080' },
  'service-name': { type: 'string', default: 'cloudphone-operator' },
  'webhook-configuration-name': { type: 'string', default: 'cloudphone-operator' },
  'certificate-secret': { type: 'string', default: 'cloudphone-operator-tls' },
  'ca-bundle-configmap': { type: 'string', default: 'cloudphone-operator-ca' },
  // The kubelet brings a changed ConfigMap into pods within its sync period (a minute) and a cache's lifetime.
  'ca-rollover-seconds': { type: 'string', default: '180' },
  certificates: { type: 'string', default: 'operator' },
  'serving-cert-days': { type: 'string', default: '90' },
  'certificate-check-seconds': { type: 'string', default: '60' },
  'sidecar-image': { type: 'string', default: 'cloudphone/sidecar:0.1.0' },
  'sidecar-image-pull-policy': { type: 'string', default: 'IfNotPresent' },
  'sidecar-metrics-port': { type: 'string', default: '9090' },
  'sidecar-cpu-request': { type: 'string', default: '250m' },
  'sidecar-memory-request': { type: 'string', default: '128Mi' },
  'sidecar-cpu-limit': { type: 'string', default: '' },
  'sidecar-memory-limit': { type: 'string', default: '512Mi' },
  'shared-volume-size': { type: 'string', default: '256Mi' },
  workers: { type: 'string', default: '4' },
  'max-status-writes-per-second': { type: 'string', default: '10' },
  'lease-name': { type: 'string', default: 'cloudphone-operator' },
  'lease-duration-seconds': { type: 'string', default: '15' },
  'api-timeout-seconds': { type: 'string', default: '30' },
  'report-interval-seconds': { type: 'string', default: '10' },
  'report-grace-seconds': { type: 'string', default: '60' },
  'peer-selector': { type: 'string', default: '' },
} as const;

const LABEL_PAIR = /^([A-Za-z0-9][-A-Za-z0-9_./]{0,252})=([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** key=value,key=value: the equality-only form of a label selector, which is all the chart needs. */
function labelPairs(flag: string, value: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of value.split(',').filter((p) => p !== '')) {
    const match = LABEL_PAIR.exec(pair.trim());
    if (!match) throw new ConfigError(`--${flag} must be key=value pairs separated by commas, got ${value}`);
    labels[match[1] ?? ''] = match[2] ?? '';
  }
  return labels;
}

const QUANTITY =
  /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;

/** A Kubernetes quantity such as 250m or 512Mi; empty means unset where `optional`. */
function quantity(flag: string, value: string, optional = false): string | undefined {
  if (value === '' && optional) return undefined;
  if (!QUANTITY.test(value))
    throw new ConfigError(`--${flag} must be a Kubernetes quantity such as 250m or 512Mi, got ${value}`);
  return value;
}

function integer(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`--${flag} must be an integer from ${String(min)} to ${String(max)}, got ${value}`);
  }
  return n;
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const pullPolicy = values['sidecar-image-pull-policy'];
  if (pullPolicy !== 'Always' && pullPolicy !== 'IfNotPresent' && pullPolicy !== 'Never') {
    throw new ConfigError(`--sidecar-image-pull-policy must be Always, IfNotPresent or Never, got ${pullPolicy}`);
  }
  const certificates = values.certificates;
  if (certificates !== 'operator' && certificates !== 'external') {
    throw new ConfigError(`--certificates must be operator or external, got ${certificates}`);
  }
  return {
    dev: values.dev,
    namespace: values.namespace ?? env.POD_NAMESPACE ?? 'cloudphone-system',
    identity: values.identity ?? `${env.POD_NAME ?? hostname()}_${randomBytes(4).toString('hex')}`,
    podName: env.POD_NAME ?? hostname(),
    listenHost: values['listen-host'] ?? (values.dev ? '127.0.0.1' : '0.0.0.0'),
    httpsPort: integer('https-port', values['https-port'], 0, 65535),
    reportPort: integer('report-port', values['report-port'], 0, 65535),
    reportMaxConnections: integer('report-max-connections', values['report-max-connections'], 1, 1_000_000),
    reportMaxConnectionsPerAddress: integer(
      'report-max-connections-per-address',
      values['report-max-connections-per-address'],
      1,
      1_000_000,
    ),
    healthPort: integer('health-port', values['health-port'], 0, 65535),
    serviceName: values['service-name'],
    webhookConfigurationName: values['webhook-configuration-name'],
    certificateSecret: values['certificate-secret'],
    caBundleConfigMap: values['ca-bundle-configmap'],
    caRolloverSeconds: integer('ca-rollover-seconds', values['ca-rollover-seconds'], 1, 86_400),
    certificates,
    servingCertDays: integer('serving-cert-days', values['serving-cert-days'], 1, 3650),
    certificateCheckSeconds: integer('certificate-check-seconds', values['certificate-check-seconds'], 1, 86_400),
    sidecarImage: values['sidecar-image'],
    sidecarImagePullPolicy: pullPolicy,
    sidecarMetricsPort: integer('sidecar-metrics-port', values['sidecar-metrics-port'], 1, 65535),
    sidecarResources: resources(values),
    sharedVolumeSize: quantity('shared-volume-size', values['shared-volume-size']) ?? '256Mi',
    workers: integer('workers', values.workers, 1, 64),
    maxStatusWritesPerSecond: integer('max-status-writes-per-second', values['max-status-writes-per-second'], 1, 1000),
    leaseName: values['lease-name'],
    leaseDurationSeconds: integer('lease-duration-seconds', values['lease-duration-seconds'], 2, 600),
    apiTimeoutSeconds: integer('api-timeout-seconds', values['api-timeout-seconds'], 1, 600),
    reportIntervalSeconds: integer('report-interval-seconds', values['report-interval-seconds'], 1, 300),
    reportGraceSeconds: integer('report-grace-seconds', values['report-grace-seconds'], 1, 3600),
    peerLabels: labelPairs('peer-selector', values['peer-selector']),
  };
}

function resources(values: Record<string, string | boolean | undefined>): OperatorConfig['sidecarResources'] {
  const pick = (flag: string, optional: boolean): string | undefined =>
    quantity(flag, String(values[flag] ?? ''), optional);
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  const cpuRequest = pick('sidecar-cpu-request', true);
  const memoryRequest = pick('sidecar-memory-request', true);
  const cpuLimit = pick('sidecar-cpu-limit', true);
  const memoryLimit = pick('sidecar-memory-limit', true);
  if (cpuRequest) requests.cpu = cpuRequest;
  if (memoryRequest) requests.memory = memoryRequest;
  if (cpuLimit) limits.cpu = cpuLimit;
  if (memoryLimit) limits.memory = memoryLimit;
  return { requests, limits };
}
