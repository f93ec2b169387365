// What an integration test needs from the local control plane: clients for it, a namespace of its own, and
// a way to wait for the cluster to reach a state.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiException, CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import type { CloudPhoneStream } from '../../generated/ts/api-types.ts';
import { afterAll, beforeAll, inject } from 'vitest';
import { stringify } from 'yaml';
import { pooledKubeConfig } from '../../operator/src/kube/kube-config.ts';
import { waitFor } from './wait-for.ts';

export const repoRoot = join(import.meta.dirname, '../..');
export { waitFor } from './wait-for.ts';

export function kubeConfig(): KubeConfig {
  return pooledKubeConfig((kc) => {
    kc.loadFromFile(inject('kubeconfig'));
  });
}

/**
 * A fresh namespace for the calling test file, deleted after it. Returns a getter because the name is only
 * known once beforeAll has run.
 */
export function useTestNamespace(prefix: string, labels: Record<string, string> = {}): () => string {
  let name = '';
  beforeAll(async () => {
    const core = kubeConfig().makeApiClient(CoreV1Api);
    name = `${prefix}-${randomBytes(3).toString('hex')}`;
    await core.createNamespace({ body: { metadata: { name, labels: { 'cloudphone-test': 'true', ...labels } } } });
    // The ServiceAccount admission plugin refuses pods until the controller-manager made the default account.
    await waitFor(`default ServiceAccount in ${name}`, async () =>
      core.readNamespacedServiceAccount({ name: 'default', namespace: name }),
    );
  });
  afterAll(async () => {
    if (name) await kubeConfig().makeApiClient(CoreV1Api).deleteNamespace({ name });
  });
  return () => name;
}

/** Runs the pinned kubectl against the local control plane. */
export function kubectl(...args: string[]): string {
  return execFileSync(join(repoRoot, '.cache/bin/kubectl'), ['--kubeconfig', inject('kubeconfig'), ...args], {
    encoding: 'utf8',
  });
}

/**
 * Installs (or updates) the CRDs of crds/ and waits until the apiserver serves them. kubectl rather than
 * client-node's KubernetesObjectApi: the latter re-serializes a CRD through its typed model, which drops
 * wire-named keys such as x-kubernetes-int-or-string.
 */
export function installCrds(): void {
  kubectl('apply', '--server-side', '--field-manager', 'cloudphone-tests', '-f', join(repoRoot, 'crds'));
  kubectl('wait', '--for', 'condition=Established', '--timeout', '60s', '-f', join(repoRoot, 'crds'));
}

/** The apiserver's error message of a failed call, or rethrows what is not an API error. */
export function apiErrorMessage(error: unknown): string {
  if (!(error instanceof ApiException)) throw error;
  const body = (error as ApiException<unknown>).body;
  try {
    return (JSON.parse(String(body)) as { message: string }).message;
  } catch {
    return String(body);
  }
}

/** A CloudPhoneStream of the pods labelled app=`app`, its viewers' tokens in the Secret viewer-tokens. */
export function streamBody(name: string, app: string, extra: object = {}, finalizers: string[] = []) {
  return {
    apiVersion: 'cloudphone.io/v1alpha1',
    kind: 'CloudPhoneStream',
    metadata: { name, ...(finalizers.length > 0 ? { finalizers } : {}) },
    spec: {
      selector: { matchLabels: { app } },
      phoneContainer: 'android',
      webrtc: { whep: { authSecretRef: { name: 'viewer-tokens' } } },
      ...extra,
    },
  };
}

const STREAMS = { group: 'cloudphone.io', version: 'v1alpha1', plural: 'cloudphonestreams' };

export async function createStream(namespace: string, body: object): Promise<void> {
  await kubeConfig()
    .makeApiClient(CustomObjectsApi)
    .createNamespacedCustomObject({ ...STREAMS, namespace, body });
}

export async function getStream(namespace: string, name: string): Promise<CloudPhoneStream> {
  return (await kubeConfig()
    .makeApiClient(CustomObjectsApi)
    .getNamespacedCustomObject({ ...STREAMS, namespace, name })) as CloudPhoneStream;
}

/** Waits until the operator has reconciled the stream's first generation. */
export async function reconciledStream(namespace: string, name: string): Promise<CloudPhoneStream> {
  return waitFor(`stream ${name} to be reconciled`, async () => {
    const stream = await getStream(namespace, name);
    return stream.status?.observedGeneration === 1 ? stream : undefined;
  });
}

/**
 * Deletes the CloudPhoneStreams of a namespace and waits until they are gone (streams of older releases carried
 * a finalizer of the operator's: call it while an operator runs).
 */
export async function deleteStreams(namespace: string): Promise<void> {
  kubectl('delete', 'cloudphonestreams', '--all', '--namespace', namespace, '--wait=true', '--timeout=60s');
  await waitFor(`the streams of ${namespace} to be gone`, () =>
    Promise.resolve(
      kubectl('get', 'cloudphonestreams', '--namespace', namespace, '-o', 'name').trim() === '' || undefined,
    ),
  );
}

/** A kubeconfig file of the admin user acting as a ServiceAccount (impersonation): that account's RBAC, exactly. */
export function impersonatingKubeconfig(namespace: string, serviceAccount: string): string {
  const admin = kubeConfig();
  const path = join(tmpdir(), `sa-${namespace}-${serviceAccount}.kubeconfig`);
  const user = admin.getCurrentUser();
  const cluster = admin.getCurrentCluster();
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'local', cluster: { server: cluster?.server, 'certificate-authority-data': cluster?.caData } },
      ],
      users: [
        {
          name: 'service-account',
          user: {
            'client-certificate-data': user?.certData,
            'client-key-data': user?.keyData,
            as: `system:serviceaccount:${namespace}:${serviceAccount}`,
          },
        },
      ],
      contexts: [{ name: 'local', context: { cluster: 'local', user: 'service-account' } }],
      'current-context': 'local',
    }),
  );
  return path;
}

/** Lets a Helm release take over CRDs that another test installed without Helm, as a user would. */
export function adoptCrds(release: string, releaseNamespace: string): void {
  const existing = kubectl('get', 'crd', '-o', 'name').split('\n');
  for (const crd of ['cloudphonestreams', 'cloudphonepools', 'cloudphoneclaims']) {
    const name = `${crd}.cloudphone.io`;
    if (!existing.includes(`customresourcedefinition.apiextensions.k8s.io/${name}`)) continue;
    const owner = [`meta.helm.sh/release-name=${release}`, `meta.helm.sh/release-namespace=${releaseNamespace}`];
    kubectl('annotate', 'crd', name, '--overwrite', ...owner);
    kubectl('label', 'crd', name, '--overwrite', 'app.kubernetes.io/managed-by=Helm');
  }
}

/**
 * The token a phone's sidecar reports with, as the kubelet projects it into the pod: its ServiceAccount's, for the
 * operator's audience, bound to that pod (here made with a TokenRequest, for a sidecar this test plays itself).
 */
export async function sidecarReportToken(pod: V1Pod): Promise<string> {
  const request = await kubeConfig()
    .makeApiClient(CoreV1Api)
    .createNamespacedServiceAccountToken({
      name: pod.spec?.serviceAccountName ?? 'default',
      namespace: pod.metadata?.namespace ?? '',
      body: {
        spec: {
          audiences: ['cloudphone-operator'],
          expirationSeconds: 600,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name, uid: pod.metadata?.uid },
        },
      },
    });
  return request.status?.token ?? '';
}
