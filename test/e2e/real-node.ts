// What the end-to-end tests need from the real node (test/cluster/node-up.sh): its name, address, taint and
// label, the images built for it, the chart installed with them, and a way to kill one container as a crash
// would (containerd's ctr, SIGKILL to the container's process).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { adoptCrds, repoRoot } from '../cluster/test-cluster.ts';

function envFile(name: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of readFileSync(join(repoRoot, 'test/cluster', name), 'utf8').split('\n')) {
    const match = /^([A-Z_]+)=(\S*)$/.exec(line);
    if (match?.[1]) values[match[1]] = match[2] ?? '';
  }
  return values;
}

const ports = envFile('ports.env');
const images = envFile('images.env');
const [labelKey = '', labelValue = ''] = (ports.NODE_LABEL ?? '').split('=');

export const realNode = {
  name: ports.NODE_NAME ?? '',
  ip: ports.NODE_IP ?? '',
  stateDir: ports.NODE_STATE_DIR ?? '',
  /** What a pod spec needs to run there (and nowhere else). */
  placement: {
    nodeSelector: { [labelKey]: labelValue },
    tolerations: [{ key: ports.NODE_TAINT_KEY ?? '', operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
  },
};

export const localImages = {
  operator: images.OPERATOR_IMAGE ?? '',
  sidecar: images.SIDECAR_IMAGE ?? '',
  simulator: images.SIMULATOR_IMAGE ?? '',
};

export function helm(...args: string[]): string {
  return execFileSync(join(repoRoot, '.cache/bin/helm'), ['--kubeconfig', inject('kubeconfig'), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Installs the chart with the images built for the node, its pods on the real node. */
export function installChartOnRealNode(release: string, releaseNamespace: string): void {
  adoptCrds(release, releaseNamespace);
  const [repository, tag] = localImages.operator.split(/:(?=[^:/]+$)/);
  helm(
    'install',
    release,
    join(repoRoot, 'charts/cloudphone-operator'),
    '--namespace',
    releaseNamespace,
    '--create-namespace',
    '--set',
    `image.repository=${repository ?? ''}`,
    '--set',
    `image.tag=${tag ?? ''}`,
    // The node has the images already (imported, never pulled).
    '--set',
    'image.pullPolicy=Never',
    '--set',
    `sidecar.image=${localImages.sidecar}`,
    '--set',
    'sidecar.imagePullPolicy=Never',
    // A replaced CA is served after 120 s: longer than this kubelet (a one-minute sync, the default) takes to
    // bring the new bundle into the pods, shorter than the default three minutes, for the tests' sake; and the
    // certificates are looked at every 10 s rather than every minute.
    '--set-json',
    'extraArgs=["--ca-rollover-seconds=120","--certificate-check-seconds=10"]',
    '--set-json',
    `nodeSelector=${JSON.stringify(realNode.placement.nodeSelector)}`,
    '--set-json',
    `tolerations=${JSON.stringify(realNode.placement.tolerations)}`,
    '--wait',
    '--timeout',
    '5m',
  );
}

/** The id containerd knows a container of a pod by (init containers too: the sidecar is one). */
export function containerId(pod: V1Pod, container: string): string {
  const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  const id = statuses.find((s) => s.name === container)?.containerID;
  if (!id) throw new Error(`pod ${pod.metadata?.name ?? ''} has no running container ${container}`);
  return id.replace(/^containerd:\/\//, '');
}

export function restartCount(pod: V1Pod, container: string): number {
  const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  return statuses.find((s) => s.name === container)?.restartCount ?? 0;
}

/** SIGKILL to a container's process, as an out-of-memory kill or a crash would end it: the kubelet sees it die. */
export function killContainer(pod: V1Pod, container: string): void {
  execFileSync(join(repoRoot, '.cache/bin/ctr'), [
    '--address',
    join(realNode.stateDir, 'containerd/containerd.sock'),
    '--namespace',
    'k8s.io',
    'tasks',
    'kill',
    '--signal',
    'SIGKILL',
    containerId(pod, container),
  ]);
}
