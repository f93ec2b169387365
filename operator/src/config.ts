// The operator's settings, from command-line flags with environment fallbacks (the Helm chart sets flags).

import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError } from './errors.ts';

export interface OperatorConfig {
  /** Out of the cluster against $KUBECONFIG: webhooks call https://127.0.0.1, and the operator installs them. */
  dev: boolean;
  namespace: string;
  identity: string;
  listenHost: string;
  httpsPort: number;
  healthPort: number;
  serviceName: string;
  certificateSecret: string;
  /** Lifetime of a serving certificate; it is renewed after two thirds of it. */
  servingCertDays: number;
  /** How often the certificates in the Secret are checked (and renewed by the leader when due). */
  certificateCheckSeconds: number;
  sidecarImage: string;
  sidecarImagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  sidecarMetricsPort: number;
  workers: number;
  maxStatusWritesPerSecond: number;
  leaseName: string;
  leaseDurationSeconds: number;
  reportIntervalSeconds: number;
  reportGraceSeconds: number;
}

const options = {
  dev: { type: 'boolean', default: false },
  namespace: { type: 'string' },
  identity: { type: 'string' },
  'listen-host': { type: 'string' },
  'https-port': { type: 'string', default: '9443' },
  'health-port': { type: 'string', default: '8080' },
  'service-name': { type: 'string', default: 'cloudphone-operator' },
  'certificate-secret': { type: 'string', default: 'cloudphone-operator-tls' },
  'serving-cert-days': { type: 'string', default: '90' },
  'certificate-check-seconds': { type: 'string', default: '60' },
  'sidecar-image': { type: 'string', default: 'cloudphone/sidecar:0.1.0' },
  'sidecar-image-pull-policy': { type: 'string', default: 'IfNotPresent' },
  'sidecar-metrics-port': { type: 'string', default: '9090' },
  workers: { type: 'string', default: '4' },
  'max-status-writes-per-second': { type: 'string', default: '10' },
  'lease-name': { type: 'string', default: 'cloudphone-operator' },
  'lease-duration-seconds': { type: 'string', default: '15' },
  'report-interval-seconds': { type: 'string', default: '10' },
  'report-grace-seconds': { type: 'string', default: '60' },
} as const;

function integer(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`--${flag} must be an integer from ${String(min)} to ${String(max)}, got ${value}`);
  }
  return n;
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig {
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  const pullPolicy = values['sidecar-image-pull-policy'];
  if (pullPolicy !== 'Always' && pullPolicy !== 'IfNotPresent' && pullPolicy !== 'Never') {
    throw new ConfigError(`--sidecar-image-pull-policy must be Always, IfNotPresent or Never, got ${pullPolicy}`);
  }
  return {
    dev: values.dev,
    namespace: values.namespace ?? env.POD_NAMESPACE ?? 'cloudphone-system',
    identity: values.identity ?? env.POD_NAME ?? `${hostname()}-${String(process.pid)}`,
    listenHost: values['listen-host'] ?? (values.dev ? '127.0.0.1' : '0.0.0.0'),
    httpsPort: integer('https-port', values['https-port'], 0, 65535),
    healthPort: integer('health-port', values['health-port'], 0, 65535),
    serviceName: values['service-name'],
    certificateSecret: values['certificate-secret'],
    servingCertDays: integer('serving-cert-days', values['serving-cert-days'], 1, 3650),
    certificateCheckSeconds: integer('certificate-check-seconds', values['certificate-check-seconds'], 1, 86_400),
    sidecarImage: values['sidecar-image'],
    sidecarImagePullPolicy: pullPolicy,
    sidecarMetricsPort: integer('sidecar-metrics-port', values['sidecar-metrics-port'], 1, 65535),
    workers: integer('workers', values.workers, 1, 64),
    maxStatusWritesPerSecond: integer('max-status-writes-per-second', values['max-status-writes-per-second'], 1, 1000),
    leaseName: values['lease-name'],
    leaseDurationSeconds: integer('lease-duration-seconds', values['lease-duration-seconds'], 2, 600),
    reportIntervalSeconds: integer('report-interval-seconds', values['report-interval-seconds'], 1, 300),
    reportGraceSeconds: integer('report-grace-seconds', values['report-grace-seconds'], 1, 3600),
  };
}
