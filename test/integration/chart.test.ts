// The chart installed into the real control plane, and the operator run with exactly the chart's permissions:
// out of the cluster (kwok pods run no containers), impersonating the chart's ServiceAccount, behind the chart's
// own webhook configurations pointed at it. If the chart's RBAC lacks a verb the operator uses, this fails.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { jsonPatchOptions } from '../../operator/src/kube/patch-options.ts';
import { OperatorProcess } from '../cluster/operator-process.ts';
import {
  adoptCrds,
  createStream,
  deleteStreams,
  getStream,
  impersonatingKubeconfig,
  kubeConfig,
  kubectl,
  repoRoot,
  streamBody,
  useTestNamespace,
  waitFor,
} from '../cluster/test-cluster.ts';

const release = 'cloudphone';
const releaseNamespace = `cloudphone-chart-${randomBytes(3).toString('hex')}`;
const phones = useTestNamespace('chart-phones', { 'cloudphone.io/injection': 'enabled' });
// Opted in for injection, but not listed in rbac.secretNamespaces: the operator may not read its Secrets.
const unlisted = useTestNamespace('chart-unlisted', { 'cloudphone.io/injection': 'enabled' });
const helm = (...args: string[]): string =>
  execFileSync(join(repoRoot, '.cache/bin/helm'), ['--kubeconfig', inject('kubeconfig'), ...args], {
    encoding: 'utf8',
  });

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
  });
}

describe('the chart on the local control plane', () => {
  let operator: OperatorProcess | undefined;
  let installed = false;

  beforeAll(() => {
    // Other test files may have installed the CRDs without Helm: let this release adopt them, as a user would.
    adoptCrds(release, releaseNamespace);
    const chart = join(repoRoot, 'charts/cloudphone-operator');
    helm(
      'install',
      release,
      chart,
      '--namespace',
      releaseNamespace,
      '--create-namespace',
      '--set',
      `rbac.secretNamespaces={${phones()}}`,
    );
    installed = true;
  });

  afterAll(async () => {
    if (operator) await Promise.all([deleteStreams(phones()), deleteStreams(unlisted())]);
    await operator?.stop();
    if (installed) helm('uninstall', release, '--namespace', releaseNamespace);
    await kubeConfig().makeApiClient(CoreV1Api).deleteNamespace({ name: releaseNamespace });
  });

  it('installs the CRDs established and the RBAC objects', async () => {
    const ext = kubeConfig().makeApiClient(ApiextensionsV1Api);
    const crd = await ext.readCustomResourceDefinition({ name: 'cloudphonestreams.cloudphone.io' });
    expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
    expect(crd.metadata?.annotations?.['helm.sh/resource-policy']).toBe('keep');
    const rbac = kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    expect((await rbac.readClusterRole({ name: 'cloudphone-operator' })).rules?.length).toBeGreaterThan(5);
    expect(
      (await rbac.readNamespacedRole({ name: 'cloudphone-operator', namespace: releaseNamespace })).rules,
    ).toBeDefined();
  });

  it('gives the operator enough permissions to inject a phone pod and reconcile its stream', async () => {
    const port = await freePort();
    // Point the chart's webhooks at the operator running here instead of its in-cluster Service.
    const admission = kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    for (const [kind, path] of [
      ['mutating', '/mutate-pods'],
      ['validating', '/validate-resources'],
    ] as const) {
      const patch = [
        { op: 'remove', path: '/webhooks/0/clientConfig/service' },
        { op: 'add', path: '/webhooks/0/clientConfig/url', value: `https://127.0.0.1:${String(port)}${path}` },
      ];
      if (kind === 'mutating') {
        await admission.patchMutatingWebhookConfiguration(
          { name: 'cloudphone-operator', body: patch },
          jsonPatchOptions(),
        );
      } else {
        await admission.patchValidatingWebhookConfiguration(
          { name: 'cloudphone-operator', body: patch },
          jsonPatchOptions(),
        );
      }
    }
    operator = await new OperatorProcess(
      'chart-operator',
      impersonatingKubeconfig(releaseNamespace, 'cloudphone-operator'),
      ['--namespace', releaseNamespace, '--https-port', String(port), '--listen-host', '127.0.0.1'],
      false,
    ).started();
    await waitFor('the operator to lead', () => Promise.resolve(operator?.isLeaderInLogs() ? true : undefined));
    // The leader fills in the caBundle, which the chart leaves empty.
    await waitFor('the caBundle', async () => {
      const mutating = await admission.readMutatingWebhookConfiguration({ name: 'cloudphone-operator' });
      return mutating.webhooks?.[0]?.clientConfig.caBundle ? true : undefined;
    });

    const core = kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace: phones(),
      body: { metadata: { name: 'viewer-tokens' }, stringData: { view: 'chart-view-1', control: 'chart-control-1' } },
    });
    const custom = kubeConfig().makeApiClient(CustomObjectsApi);
    await waitFor('the apiserver to call the operator', () =>
      custom
        .createNamespacedCustomObject({
          group: 'cloudphone.io',
          version: 'v1alpha1',
          namespace: phones(),
          plural: 'cloudphonestreams',
          body: {
            apiVersion: 'cloudphone.io/v1alpha1',
            kind: 'CloudPhoneStream',
            metadata: { name: 'fleet' },
            spec: {
              selector: { matchLabels: { app: 'phone' } },
              phoneContainer: 'android',
              webrtc: { whep: { authSecretRef: { name: 'viewer-tokens' } } },
            },
          },
        })
        .then(() => true),
    );
    const pod = await waitFor('a phone pod with its sidecar', async () => {
      const created = await core.createNamespacedPod({
        namespace: phones(),
        body: {
          metadata: { generateName: 'phone-', labels: { app: 'phone' } },
          spec: { containers: [{ name: 'android', image: 'redroid/redroid:14.0.0-latest' }] },
        },
      });
      return created.spec?.initContainers?.some((c) => c.name === 'cloudphone-sidecar') ? created : undefined;
    });
    expect(pod.metadata?.labels?.['cloudphone.io/stream']).toBe('fleet');
    // Status and Service writes all went through under the chart's RBAC.
    await waitFor('the stream status', async () => {
      const s = (await custom.getNamespacedCustomObject({
        group: 'cloudphone.io',
        version: 'v1alpha1',
        namespace: phones(),
        plural: 'cloudphonestreams',
        name: 'fleet',
      })) as { status?: { injected?: number } };
      return (s.status?.injected ?? 0) >= 1 ? s : undefined;
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}\noperator log:\n${operator?.tail(20) ?? ''}`);
    });
    const services = await core.listNamespacedService({
      namespace: phones(),
      labelSelector: 'cloudphone.io/stream=fleet',
    });
    expect(services.items).toHaveLength(1);
    // Its Secrets were checked, in the one namespace where the chart lets the operator read Secrets.
    const resolved = await waitFor('ResolvedRefs', async () => {
      const s = await getStream(phones(), 'fleet');
      return s.status?.conditions?.find((c) => c.type === 'ResolvedRefs');
    });
    expect(resolved).toMatchObject({ status: 'True', reason: 'ResolvedRefs' });
    // Elsewhere it reads none: a stream naming a missing Secret is admitted, and its condition says why it cannot
    // tell (with cluster-wide read it would say SecretNotFound).
    await createStream(unlisted(), streamBody('elsewhere', 'phone'));
    const unknown = await waitFor('ResolvedRefs Unknown', async () => {
      const s = await getStream(unlisted(), 'elsewhere');
      return s.status?.conditions?.find((c) => c.type === 'ResolvedRefs');
    });
    expect(unknown).toMatchObject({ status: 'Unknown', reason: 'SecretsNotReadable' });
    const account = `system:serviceaccount:${releaseNamespace}:cloudphone-operator`;
    // kubectl auth can-i answers no with exit status 1.
    const canGetSecrets = (namespace: string): string => {
      try {
        return kubectl('auth', 'can-i', 'get', 'secrets', '--namespace', namespace, '--as', account).trim();
      } catch (error) {
        return String((error as { stdout?: string }).stdout).trim();
      }
    };
    expect(canGetSecrets(phones())).toBe('yes');
    expect(canGetSecrets(unlisted())).toBe('no');
    // No RBAC denial logged (other refusals, such as writes into a namespace being deleted, are not the chart's; the
    // Secret read refused above is a condition, not an error).
    const denials = operator.logs.map((l) => JSON.stringify(l)).filter((l) => /cannot \w+ resource/.test(l));
    expect(denials).toEqual([]);
  });

  it('uninstalls everything but the CRDs (crds.keep)', async () => {
    if (operator) await Promise.all([deleteStreams(phones()), deleteStreams(unlisted())]);
    await operator?.stop();
    operator = undefined;
    helm('uninstall', release, '--namespace', releaseNamespace, '--wait');
    installed = false;
    const ext = kubeConfig().makeApiClient(ApiextensionsV1Api);
    for (const crd of ['cloudphonestreams', 'cloudphonepools', 'cloudphoneclaims'])
      expect((await ext.readCustomResourceDefinition({ name: `${crd}.cloudphone.io` })).metadata?.name).toBeDefined();
    const gone = async (read: () => Promise<unknown>): Promise<boolean> =>
      read().then(
        () => false,
        () => true,
      );
    const rbac = kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const admission = kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    const core = kubeConfig().makeApiClient(CoreV1Api);
    expect(await gone(() => rbac.readClusterRole({ name: 'cloudphone-operator' }))).toBe(true);
    expect(await gone(() => rbac.readClusterRoleBinding({ name: 'cloudphone-operator' }))).toBe(true);
    expect(await gone(() => admission.readMutatingWebhookConfiguration({ name: 'cloudphone-operator' }))).toBe(true);
    expect(await gone(() => admission.readValidatingWebhookConfiguration({ name: 'cloudphone-operator' }))).toBe(true);
    expect(
      await gone(() => core.readNamespacedService({ name: 'cloudphone-operator', namespace: releaseNamespace })),
    ).toBe(true);
    expect(
      await gone(() => core.readNamespacedServiceAccount({ name: 'cloudphone-operator', namespace: releaseNamespace })),
    ).toBe(true);
    expect(helm('list', '--namespace', releaseNamespace, '--short').trim()).toBe('');
  });

  it.each(['single-replica-values.yaml', 'custom-sidecar-values.yaml'])(
    'installs with ci/%s too, and uninstalls cleanly',
    async (scenario) => {
      const namespace = `cloudphone-${scenario.split('-')[0] ?? 'ci'}-${randomBytes(2).toString('hex')}`;
      const chart = join(repoRoot, 'charts/cloudphone-operator');
      // The CRDs stay from the release before (kept on uninstall): a scenario that installs them adopts them.
      for (const crd of ['cloudphonestreams', 'cloudphonepools', 'cloudphoneclaims']) {
        const name = `${crd}.cloudphone.io`;
        kubectl(
          'annotate',
          'crd',
          name,
          '--overwrite',
          `meta.helm.sh/release-name=ci`,
          `meta.helm.sh/release-namespace=${namespace}`,
        );
        kubectl('label', 'crd', name, '--overwrite', 'app.kubernetes.io/managed-by=Helm');
      }
      helm(
        'install',
        'ci',
        chart,
        '--namespace',
        namespace,
        '--create-namespace',
        '--values',
        join(chart, 'ci', scenario),
      );
      try {
        const admission = kubeConfig().makeApiClient(AdmissionregistrationV1Api);
        const mutating = await admission.readMutatingWebhookConfiguration({ name: 'cloudphone-operator' });
        const values = parse(readFileSync(join(chart, 'ci', scenario), 'utf8')) as {
          webhook?: { failurePolicy?: string };
          replicaCount?: number;
        };
        expect(mutating.webhooks?.[0]?.failurePolicy).toBe(values.webhook?.failurePolicy ?? 'Fail');
        const apps = kubeConfig().makeApiClient(AppsV1Api);
        const deployment = await apps.readNamespacedDeployment({ name: 'cloudphone-operator', namespace });
        expect(deployment.spec?.replicas).toBe(values.replicaCount ?? 2);
      } finally {
        helm('uninstall', 'ci', '--namespace', namespace, '--wait');
        await kubeConfig().makeApiClient(CoreV1Api).deleteNamespace({ name: namespace });
      }
    },
  );

  it('refuses bad values at helm install with the schema message, installing nothing', () => {
    const chart = join(repoRoot, 'charts/cloudphone-operator');
    let message = '';
    try {
      helm('install', 'bad', chart, '--namespace', releaseNamespace, '--set', 'replicaCount=-1');
    } catch (error) {
      message = String((error as { stderr?: string }).stderr ?? error);
    }
    expect(message).toContain('replicaCount');
    expect(message).toMatch(/minimum|greater/);
    expect(helm('list', '--all-namespaces', '--short', '--filter', '^bad$').trim()).toBe('');
  });
});
