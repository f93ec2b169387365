// The Helm chart, rendered by the pinned helm: lint, the values schema, and agreement with the operator's code
// and the generated CRDs; its modes (cert-manager, ServiceMonitor, NetworkPolicy). Installing it into the local
// control plane is test/integration/chart.test.ts.

import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { webhookConfigurations } from '../../operator/src/webhook/webhook-configurations.ts';
import { parseConfig } from '../../operator/src/config.ts';
import { REPORT_SERVICE_PORT } from '../../operator/src/operator.ts';

const root = join(import.meta.dirname, '../..');
const helm = join(root, '.cache/bin/helm');
const chart = join(root, 'charts/cloudphone-operator');

function render(...args: string[]): Record<string, unknown>[] {
  const text = execFileSync(
    helm,
    ['template', 'cloudphone', chart, '--namespace', 'cloudphone-system', '--kube-version', '1.36.3', ...args],
    { encoding: 'utf8' },
  );
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((d): d is Record<string, unknown> => d !== null);
}

function refusal(...args: string[]): string {
  const result = spawnSync(helm, ['template', 'cloudphone', chart, '--kube-version', '1.36.3', ...args], {
    encoding: 'utf8',
  });
  expect(result.status).not.toBe(0);
  return result.stderr;
}

describe('the cloudphone-operator chart', () => {
  const scenarios = readdirSync(join(chart, 'ci')).sort();

  it.each(scenarios)('passes helm lint with ci/%s', (scenario) => {
    const result = spawnSync(helm, ['lint', chart, '--values', join(chart, 'ci', scenario)], { encoding: 'utf8' });
    expect(result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.status).toBe(0);
  });

  it('renders ci/single-replica-values.yaml without CRDs, failing open, with one replica', () => {
    const docs = render('--values', join(chart, 'ci/single-replica-values.yaml'));
    expect(docs.some((d) => d.kind === 'CustomResourceDefinition')).toBe(false);
    const mutating = docs.find((d) => d.kind === 'MutatingWebhookConfiguration') as {
      webhooks: { failurePolicy: string }[];
    };
    expect(mutating.webhooks[0]?.failurePolicy).toBe('Ignore');
    expect((docs.find((d) => d.kind === 'Deployment') as { spec: { replicas: number } }).spec.replicas).toBe(1);
  });

  it('renders the defaults as the snapshot says (review the diff of any change)', async () => {
    const text = render()
      .filter((d) => d.kind !== 'CustomResourceDefinition')
      .map((d) => stringify(d))
      .join('---\n');
    await expect(text).toMatchFileSnapshot('../fixtures/chart/default-render.yaml');
  });

  it.each([
    [['--set', 'replicaCount=-1'], 'replicaCount'],
    [['--set', 'unknownKey=1'], "additional properties 'unknownKey' not allowed"],
    [['--set', 'sidecar.imagePullPolicy=Sometimes'], 'imagePullPolicy'],
    [['--set', 'sidecar.sharedVolumeSize=lots'], 'sharedVolumeSize'],
    [['--set-string', 'maxStatusWritesPerSecond=ten'], 'maxStatusWritesPerSecond'],
    [['--set', 'certificates.mode=letsencrypt'], 'certificates'],
    [['--set', 'metrics.serviceMonitor.interval=soon'], 'interval'],
    [['--set', 'sidecar.resources.requests.cpu=lots'], 'cpu'],
  ])('refuses bad values %j with the schema message', (args, message) => {
    expect(refusal(...args)).toContain(message);
  });

  it('routes webhooks exactly as the operator code describes them', () => {
    const docs = render();
    const wanted = webhookConfigurations(
      {
        service: { namespace: 'cloudphone-system', name: 'cloudphone-operator', port: 443 },
        operatorNamespace: 'cloudphone-system',
      },
      '',
    );
    for (const [kind, expected] of [
      ['MutatingWebhookConfiguration', wanted.mutating],
      ['ValidatingWebhookConfiguration', wanted.validating],
    ] as const) {
      const rendered = docs.find((d) => d.kind === kind) as { webhooks: { clientConfig: object }[] };
      const withoutCa = (webhooks: { clientConfig: object }[]) =>
        webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: undefined } }));
      expect(withoutCa(rendered.webhooks)).toEqual(withoutCa(expected.webhooks as never));
    }
  });

  it('serves reports on a port of their own, where the operator sends sidecars and the other replicas', () => {
    const docs = render();
    const service = docs.find((d) => d.kind === 'Service') as {
      spec: { ports: { name: string; port: number; targetPort: string }[] };
    };
    expect(service.spec.ports.find((p) => p.name === 'reports')).toMatchObject({
      port: REPORT_SERVICE_PORT,
      targetPort: 'reports',
    });
    const deployment = docs.find((d) => d.kind === 'Deployment') as {
      spec: { template: { spec: { containers: { ports: { name: string; containerPort: number }[] }[] } } };
    };
    const ports = deployment.spec.template.spec.containers[0]?.ports ?? [];
    // The operator listens on its defaults (the chart passes no port flags): reports and admission apart.
    const defaults = parseConfig([], {});
    expect(ports.find((p) => p.name === 'reports')?.containerPort).toBe(defaults.reportPort);
    expect(ports.find((p) => p.name === 'https')?.containerPort).toBe(defaults.httpsPort);
    expect(defaults.reportPort).not.toBe(defaults.httpsPort);
  });

  it('installs the generated CRDs, kept on uninstall unless told otherwise, or none at all', () => {
    const crds = render().filter((d) => d.kind === 'CustomResourceDefinition');
    const specOf = (crd: Record<string, unknown>): unknown => crd.spec;
    const generated = readdirSync(join(root, 'crds')).map(
      (f) => parse(readFileSync(join(root, 'crds', f), 'utf8')) as Record<string, unknown>,
    );
    expect(crds.map(specOf)).toEqual(generated.map(specOf));
    for (const crd of crds) {
      expect((crd.metadata as { annotations: object }).annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
    }
    expect(
      render('--set', 'crds.keep=false').find((d) => d.kind === 'CustomResourceDefinition')?.metadata,
    ).not.toHaveProperty('annotations');
    expect(render('--set', 'crds.install=false').some((d) => d.kind === 'CustomResourceDefinition')).toBe(false);
  });

  it('runs the operator non-root on a read-only root filesystem, with the sidecar settings as flags', () => {
    const deployment = render().find((d) => d.kind === 'Deployment') as {
      spec: {
        replicas: number;
        template: { spec: { containers: { args: string[]; securityContext: object }[]; securityContext: object } };
      };
    };
    const pod = deployment.spec.template.spec;
    expect(deployment.spec.replicas).toBe(2);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(pod.containers[0]?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.containers[0]?.args).toContain('--sidecar-image=cloudphone/sidecar:0.1.0');
    expect(pod.containers[0]?.args).toContain('--shared-volume-size=256Mi');
  });

  it('names every object after fullnameOverride and tells the operator those names', () => {
    const docs = render('--set', 'fullnameOverride=phones-operator');
    const named = docs.filter(
      (d) => d.kind !== 'CustomResourceDefinition' && d.kind !== 'ClusterRole' && d.kind !== 'ClusterRoleBinding',
    );
    for (const doc of named) expect((doc.metadata as { name: string }).name).toMatch(/^phones-operator/);
    const args = (
      docs.find((d) => d.kind === 'Deployment') as {
        spec: { template: { spec: { containers: { args: string[] }[] } } };
      }
    ).spec.template.spec.containers[0]?.args;
    expect(args).toEqual(
      expect.arrayContaining([
        '--service-name=phones-operator',
        '--lease-name=phones-operator',
        '--certificate-secret=phones-operator-tls',
        '--ca-bundle-configmap=phones-operator-ca',
        '--webhook-configuration-name=phones-operator',
      ]),
    );
    // The operator may keep current only the CA bundle ConfigMaps of that name.
    const clusterRole = docs.find(
      (d) => d.kind === 'ClusterRole' && (d.metadata as { name: string }).name === 'phones-operator',
    ) as { rules: { resources: string[]; resourceNames?: string[]; verbs: string[] }[] };
    expect(clusterRole.rules.filter((r) => r.resources.includes('configmaps') && r.verbs.includes('patch'))).toEqual([
      expect.objectContaining({ resourceNames: ['phones-operator-ca'] }),
    ]);
    const webhooks = docs.find((d) => d.kind === 'ValidatingWebhookConfiguration') as {
      metadata: { name: string };
      webhooks: { clientConfig: { service: { name: string } } }[];
    };
    expect(webhooks.metadata.name).toBe('phones-operator');
    expect(webhooks.webhooks[0]?.clientConfig.service.name).toBe('phones-operator');
  });

  it('takes pull secrets, pod annotations, a priority class, extra flags and a preStop delay', () => {
    const deployment = render(
      '--set',
      'imagePullSecrets[0].name=regcred',
      '--set',
      'podAnnotations.team=phones',
      '--set',
      'priorityClassName=system-cluster-critical',
      '--set',
      'extraArgs[0]=--workers=8',
      '--set',
      'preStopDelaySeconds=10',
    ).find((d) => d.kind === 'Deployment') as {
      spec: {
        template: {
          metadata: { annotations?: Record<string, string> };
          spec: {
            imagePullSecrets?: { name: string }[];
            priorityClassName?: string;
            terminationGracePeriodSeconds?: number;
            containers: { args: string[]; lifecycle?: { preStop?: { sleep?: { seconds: number } } } }[];
          };
        };
      };
    };
    const template = deployment.spec.template;
    expect(template.metadata.annotations).toEqual({ team: 'phones' });
    expect(template.spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(template.spec.priorityClassName).toBe('system-cluster-critical');
    expect(template.spec.containers[0]?.args.at(-1)).toBe('--workers=8');
    expect(template.spec.containers[0]?.lifecycle?.preStop?.sleep?.seconds).toBe(10);
    expect(template.spec.terminationGracePeriodSeconds).toBeGreaterThan(10);
    expect(refusal('--set', 'extraArgs[0]=rm -rf')).toContain('extraArgs');
  });

  it('makes a PodDisruptionBudget only when there is more than one replica to keep', () => {
    expect(render().some((d) => d.kind === 'PodDisruptionBudget')).toBe(true);
    expect(render('--set', 'replicaCount=1').some((d) => d.kind === 'PodDisruptionBudget')).toBe(false);
  });

  it("shows a pool's desired, current and ready phones in kubectl get", () => {
    const crd = parse(readFileSync(join(root, 'crds/cloudphone.io_cloudphonepools.yaml'), 'utf8')) as {
      spec: { versions: { additionalPrinterColumns: { name: string; jsonPath: string }[] }[] };
    };
    const columns = crd.spec.versions[0]?.additionalPrinterColumns.map((c) => `${c.name}=${c.jsonPath}`);
    expect(columns).toEqual(
      expect.arrayContaining(['Desired=.spec.replicas', 'Current=.status.replicas', 'Ready=.status.readyReplicas']),
    );
  });

  it('gives a slow start (waiting for cert-manager, listing a big cluster) five minutes before liveness counts', () => {
    const deployment = render().find((d) => d.kind === 'Deployment') as {
      spec: {
        template: { spec: { containers: Record<string, { periodSeconds: number; failureThreshold: number }>[] } };
      };
    };
    const startup = deployment.spec.template.spec.containers[0]?.startupProbe;
    expect((startup?.periodSeconds ?? 0) * (startup?.failureThreshold ?? 0)).toBeGreaterThanOrEqual(300);
  });

  it('in cert-manager mode asks cert-manager for the certificate and gives the operator no write on it', () => {
    const docs = render('--values', join(chart, 'ci/cert-manager-values.yaml'));
    const certificates = docs.filter((d) => d.kind === 'Certificate');
    // An issuer was given: no self-signed chain, just the serving certificate.
    expect(certificates).toHaveLength(1);
    expect(docs.some((d) => d.kind === 'Issuer')).toBe(false);
    expect(certificates[0]?.spec).toMatchObject({
      secretName: 'cloudphone-operator-tls',
      dnsNames: expect.arrayContaining(['cloudphone-operator.cloudphone-system.svc']) as unknown,
      issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
    });
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'])
      expect((docs.find((d) => d.kind === kind)?.metadata as { annotations: object }).annotations).toEqual({
        'cert-manager.io/inject-ca-from': 'cloudphone-system/cloudphone-operator-serving',
      });
    const deployment = docs.find((d) => d.kind === 'Deployment') as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    expect(deployment.spec.template.spec.containers[0]?.args).toContain('--certificates=external');
    interface Rule {
      apiGroups: string[];
      resources: string[];
      verbs: string[];
      resourceNames?: string[];
    }
    const role = docs.find((d) => d.kind === 'Role') as { rules: Rule[] };
    const secretRules = role.rules.filter((r) => r.resources.includes('secrets'));
    expect(secretRules).toEqual([
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['cloudphone-operator-tls'], verbs: ['get'] },
    ]);
    const clusterRole = docs.find((d) => d.kind === 'ClusterRole') as { rules: Rule[] };
    expect(clusterRole.rules.some((r) => r.apiGroups.includes('admissionregistration.k8s.io'))).toBe(false);

    // Without an issuer, a self-signed CA chain made by the chart signs it.
    const own = render('--set', 'certificates.mode=cert-manager');
    expect(own.filter((d) => d.kind === 'Issuer').map((d) => (d.metadata as { name: string }).name)).toEqual([
      'cloudphone-operator-selfsigned',
      'cloudphone-operator-ca',
    ]);
    expect(
      own.find((d) => (d.metadata as { name: string }).name === 'cloudphone-operator-serving')?.spec,
    ).toMatchObject({
      issuerRef: { name: 'cloudphone-operator-ca', kind: 'Issuer' },
    });
    // The default mode has none of it.
    expect(render().some((d) => d.kind === 'Certificate' || d.kind === 'Issuer')).toBe(false);
  });

  it('reads Secrets only in the namespaces listed in rbac.secretNamespaces, never cluster-wide', () => {
    interface Rule {
      resources: string[];
      verbs: string[];
    }
    interface Rbac {
      kind: string;
      metadata: { name: string; namespace?: string };
      rules?: Rule[];
      roleRef?: { kind: string; name: string };
    }
    const docs = render('--set', 'rbac.secretNamespaces={phones,staging}') as unknown as Rbac[];
    const readsSecrets = (rules: Rule[] = []): boolean =>
      rules.some((r) => r.resources.includes('secrets') && r.verbs.some((v) => ['get', 'list', 'watch'].includes(v)));
    const clusterRoles = docs.filter((d) => d.kind === 'ClusterRole');
    const reader = clusterRoles.find((d) => d.metadata.name === 'cloudphone-operator-secret-reader');
    expect(reader?.rules).toEqual([{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }]);
    // The operator's own ClusterRole may create (claim tokens) but not read, and the reader is not bound cluster-wide.
    expect(readsSecrets(clusterRoles.find((d) => d.metadata.name === 'cloudphone-operator')?.rules)).toBe(false);
    for (const binding of docs.filter((d) => d.kind === 'ClusterRoleBinding'))
      expect(binding.roleRef?.name).not.toBe('cloudphone-operator-secret-reader');
    const bindings = docs.filter((d) => d.kind === 'RoleBinding' && d.roleRef?.name === reader?.metadata.name);
    expect(bindings.map((b) => b.metadata.namespace)).toEqual(['phones', 'staging']);
    expect(render().filter((d) => d.kind === 'RoleBinding')).toHaveLength(1); // the operator's own namespace only
    expect(refusal('--set', 'rbac.secretNamespaces={Not_A_Namespace}')).toContain('secretNamespaces');
  });

  it('scrapes and fences the operator with ci/monitoring-values.yaml, on ports its Service and pods name', () => {
    const docs = render('--values', join(chart, 'ci/monitoring-values.yaml'));
    const service = docs.find((d) => d.kind === 'Service') as {
      metadata: { labels: Record<string, string> };
      spec: { ports: { name: string }[] };
    };
    const monitor = docs.find((d) => d.kind === 'ServiceMonitor') as {
      metadata: { labels: Record<string, string> };
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; interval: string }[] };
    };
    expect(monitor.metadata.labels.release).toBe('prometheus');
    expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(service.spec.ports.map((p) => p.name)).toContain(monitor.spec.endpoints[0]?.port);
    expect(monitor.spec.endpoints[0]?.interval).toBe('15s');

    const deployment = docs.find((d) => d.kind === 'Deployment') as {
      spec: {
        template: {
          metadata: { labels: Record<string, string> };
          spec: { containers: { ports: { name: string }[] }[] };
        };
      };
    };
    const policy = docs.find((d) => d.kind === 'NetworkPolicy') as {
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        ingress: { ports: { port: string }[]; from?: unknown[] }[];
      };
    };
    expect(deployment.spec.template.metadata.labels).toMatchObject(policy.spec.podSelector.matchLabels);
    const podPorts = deployment.spec.template.spec.containers[0]?.ports.map((p) => p.name);
    for (const rule of policy.spec.ingress) for (const port of rule.ports) expect(podPorts).toContain(port.port);
    // The webhook and report ports are open to all (the apiserver, the sidecars); metrics only from monitoring.
    expect(policy.spec.ingress.map((r) => r.ports[0]?.port)).toEqual(['https', 'reports', 'health']);
    expect(policy.spec.ingress[0]?.from).toBeUndefined();
    expect(policy.spec.ingress[1]?.from).toBeUndefined();
    expect(policy.spec.ingress[2]?.from).toEqual([
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ]);
    expect(render().some((d) => d.kind === 'ServiceMonitor' || d.kind === 'NetworkPolicy')).toBe(false);
  });

  it('has a values schema generated from schemas/json/chart-values.json, with the API definitions inlined', () => {
    const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8')) as {
      $comment: string;
      properties: { sidecar: { properties: { imagePullPolicy: { enum: string[] } } } };
    };
    expect(schema.$comment).toContain('schemas/json/chart-values.json');
    // The same choices as a stream's spec.sidecar.imagePullPolicy.
    expect(schema.properties.sidecar.properties.imagePullPolicy.enum).toEqual(['Always', 'IfNotPresent', 'Never']);
    expect(JSON.stringify(schema)).not.toContain('$ref');
  });
});
