// The local control plane is the real thing: the apiserver validates our CRDs, the controller-manager and the
// scheduler run pods onto kwok nodes, garbage collection works, and admission webhooks are called.

import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  VersionApi,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invalidExamples, validExamples } from '../fixtures/schema-fixtures.ts';
import {
  apiErrorMessage,
  installCrds,
  kubeConfig,
  kubectl,
  repoRoot,
  useTestNamespace,
  waitFor,
} from '../cluster/test-cluster.ts';

const namespace = useTestNamespace('control-plane', { 'webhook-test': 'true' });
const plurals: Record<string, string> = {
  CloudPhoneStream: 'cloudphonestreams',
  CloudPhonePool: 'cloudphonepools',
  CloudPhoneClaim: 'cloudphoneclaims',
};
const resourceExamples = <T extends { kind: string }>(examples: T[]): T[] => examples.filter((e) => e.kind in plurals);

describe('the local control plane', () => {
  it('is reused, not restarted, when started again', () => {
    const pid = () => readFileSync(join(repoRoot, '.cache/cluster/pids/kube-apiserver.pid'), 'utf8');
    const before = pid();
    const output = execFileSync('bash', [join(repoRoot, 'test/cluster/up.sh')], { encoding: 'utf8' });
    expect(output).toContain('already running');
    expect(pid()).toBe(before);
  });

  it('serves the pinned Kubernetes version', async () => {
    const pins = readFileSync(join(repoRoot, 'test/cluster/versions.env'), 'utf8');
    const pinned = /^K8S_VERSION=(\S+)$/m.exec(pins)?.[1];
    const version = await kubeConfig().makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(pinned);
  });

  it('has kwok nodes that are Ready', async () => {
    const nodes = await kubeConfig().makeApiClient(CoreV1Api).listNode({ labelSelector: 'type=kwok' });
    expect(nodes.items.length).toBeGreaterThan(0);
    for (const node of nodes.items) {
      expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    }
  });
});

describe('our CRDs on the real apiserver', () => {
  beforeAll(() => {
    installCrds();
  });

  it.each(resourceExamples(validExamples()).map((e) => [e.name, e] as const))(
    'accept the valid example %s',
    async (_name, example) => {
      const custom = kubeConfig().makeApiClient(CustomObjectsApi);
      const created = (await custom.createNamespacedCustomObject({
        group: 'cloudphone.io',
        version: 'v1alpha1',
        namespace: namespace(),
        plural: plurals[example.kind] ?? '',
        body: example.document,
        fieldValidation: 'Strict',
        dryRun: 'All',
      })) as { spec: object };
      expect(created.spec).toBeDefined();
    },
  );

  it.each(resourceExamples(invalidExamples()).map((e) => [e.name, e] as const))(
    'reject the invalid example %s with a message naming the field',
    async (_name, example) => {
      const custom = kubeConfig().makeApiClient(CustomObjectsApi);
      const message = await custom
        .createNamespacedCustomObject({
          group: 'cloudphone.io',
          version: 'v1alpha1',
          namespace: namespace(),
          plural: plurals[example.kind] ?? '',
          body: example.document,
          fieldValidation: 'Strict',
        })
        .then(
          () => 'accepted',
          (error: unknown) => apiErrorMessage(error),
        );
      expect(message).toContain(example.field);
      expect(message).toContain(example.message);
    },
  );

  it('apply the same defaults as the runtime validator', async () => {
    const custom = kubeConfig().makeApiClient(CustomObjectsApi);
    const example = validExamples().find((e) => e.name === 'stream-minimal');
    const created = (await custom.createNamespacedCustomObject({
      group: 'cloudphone.io',
      version: 'v1alpha1',
      namespace: namespace(),
      plural: 'cloudphonestreams',
      body: example?.document,
    })) as { spec: unknown };
    const { SchemaValidator } = await import('../../schemas/runtime/validator.ts');
    expect(created.spec).toEqual(new SchemaValidator().parse('CloudPhoneStream', example?.document).spec);
  });

  it('describe their fields to kubectl explain', () => {
    expect(kubectl('explain', 'cloudphonestream.spec.video.fps')).toContain('Highest frame rate encoded');
  });

  it('scale a pool through its scale subresource', async () => {
    const custom = kubeConfig().makeApiClient(CustomObjectsApi);
    const pool = validExamples().find((e) => e.name === 'pool')?.document;
    await custom.createNamespacedCustomObject({
      group: 'cloudphone.io',
      version: 'v1alpha1',
      namespace: namespace(),
      plural: 'cloudphonepools',
      body: pool,
    });
    const scale = (await custom.getNamespacedCustomObjectScale({
      group: 'cloudphone.io',
      version: 'v1alpha1',
      namespace: namespace(),
      plural: 'cloudphonepools',
      name: 'gaming',
    })) as { spec: { replicas: number } };
    expect(scale.spec.replicas).toBe(3);
  });
});

describe('the controllers of the local control plane', () => {
  it('create, schedule and run the pods of a Deployment on kwok nodes', async () => {
    const kc = kubeConfig();
    const apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    await apps.createNamespacedDeployment({
      namespace: namespace(),
      body: {
        metadata: { name: 'phones' },
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: 'phones' } },
          template: {
            metadata: { labels: { app: 'phones' } },
            spec: { containers: [{ name: 'android', image: 'redroid/redroid:14.0.0' }] },
          },
        },
      },
    });
    const pods = await waitFor('3 Running pods', async () => {
      const list = await core.listNamespacedPod({ namespace: namespace(), labelSelector: 'app=phones' });
      const running = list.items.filter((p) => p.status?.phase === 'Running');
      return running.length === 3 ? running : undefined;
    });
    for (const pod of pods) expect(pod.spec?.nodeName).toMatch(/^kwok-node-/);
  });

  it('garbage-collect the objects an owner owned once the owner is deleted', async () => {
    const core = kubeConfig().makeApiClient(CoreV1Api);
    const owner = await core.createNamespacedConfigMap({
      namespace: namespace(),
      body: { metadata: { name: 'owner' } },
    });
    await core.createNamespacedConfigMap({
      namespace: namespace(),
      body: {
        metadata: {
          name: 'owned',
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata?.uid ?? '' }],
        },
      },
    });
    await core.deleteNamespacedConfigMap({ name: 'owner', namespace: namespace() });
    await waitFor('the owned ConfigMap to be collected', async () => {
      const list = await core.listNamespacedConfigMap({ namespace: namespace(), fieldSelector: 'metadata.name=owned' });
      return list.items.length === 0 ? true : undefined;
    });
  });
});

describe('admission webhooks', () => {
  let server: Server;
  let pki: string;
  const reviewed: string[] = [];

  beforeAll(async () => {
    // A throwaway CA and serving certificate for 127.0.0.1, made with openssl.
    pki = mkdtempSync(join(tmpdir(), 'webhook-pki-'));
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: 'ignore' });
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=test-ca',
    );
    openssl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'tls.key',
      '-out',
      'tls.csr',
      '-subj',
      '/CN=127.0.0.1',
    );
    openssl(
      'x509',
      '-req',
      '-in',
      'tls.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-out',
      'tls.crt',
      '-extfile',
      join(repoRoot, 'test/fixtures/webhook-san.ext'),
    );

    server = createServer(
      { key: readFileSync(join(pki, 'tls.key')), cert: readFileSync(join(pki, 'tls.crt')) },
      (req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          const review = JSON.parse(body) as { request: { uid: string; object: V1Pod } };
          reviewed.push(review.request.object.metadata?.name ?? review.request.object.metadata?.generateName ?? '');
          const patch = [{ op: 'add', path: '/metadata/labels/webhook-called', value: 'true' }];
          res.setHeader('Content-Type', 'application/json');
          res.end(
            JSON.stringify({
              apiVersion: 'admission.k8s.io/v1',
              kind: 'AdmissionReview',
              response: {
                uid: review.request.uid,
                allowed: true,
                patchType: 'JSONPatch',
                patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
              },
            }),
          );
        });
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    await kubeConfig()
      .makeApiClient(AdmissionregistrationV1Api)
      .createMutatingWebhookConfiguration({
        body: {
          metadata: { name: `test-${namespace()}` },
          webhooks: [
            {
              name: 'label.test.cloudphone.io',
              clientConfig: {
                url: `https://127.0.0.1:${port}/mutate`,
                caBundle: readFileSync(join(pki, 'ca.crt')).toString('base64'),
              },
              rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace() } },
              objectSelector: { matchLabels: { webhook: 'me' } },
              sideEffects: 'None',
              failurePolicy: 'Fail',
              admissionReviewVersions: ['v1'],
              timeoutSeconds: 5,
            },
          ],
        },
      });
  });

  afterAll(async () => {
    await kubeConfig()
      .makeApiClient(AdmissionregistrationV1Api)
      .deleteMutatingWebhookConfiguration({ name: `test-${namespace()}` })
      .catch(() => undefined);
    server.close();
    server.closeAllConnections(); // the apiserver keeps its connections to webhooks alive
    rmSync(pki, { recursive: true, force: true });
  });

  it('are called by the apiserver when a pod is created, and their patch is applied', async () => {
    const core = kubeConfig().makeApiClient(CoreV1Api);
    const pod = {
      spec: { containers: [{ name: 'android', image: 'redroid/redroid:14.0.0' }] },
    };
    // The webhook registration takes effect asynchronously in the apiserver.
    const created = await waitFor('the webhook to be called', async () => {
      const name = `hooked-${String(Date.now())}`;
      const result = await core.createNamespacedPod({
        namespace: namespace(),
        body: { ...pod, metadata: { name, labels: { webhook: 'me' } } },
      });
      if (result.metadata?.labels?.['webhook-called'] === 'true') return result;
      await core.deleteNamespacedPod({ name, namespace: namespace() });
      return undefined;
    });
    expect(reviewed).toContain(created.metadata?.name);

    const untouched = await core.createNamespacedPod({
      namespace: namespace(),
      body: { ...pod, metadata: { name: 'not-selected' } },
    });
    expect(untouched.metadata?.labels?.['webhook-called']).toBeUndefined();
    expect(reviewed).not.toContain('not-selected');
  });
});
