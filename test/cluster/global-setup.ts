// Vitest global setup of the integration tests: a real control plane for the whole run. One that is already
// running (npm run cluster:up) is reused and left running; one started here is stopped at the end.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

const root = join(import.meta.dirname, '../..');

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
  }
}

function script(name: string, quiet = false): number {
  const result = spawnSync('bash', [join(root, 'test/cluster', name)], { stdio: quiet ? 'ignore' : 'inherit' });
  return result.status ?? 1;
}

export default function setup(project: TestProject): () => void {
  if (Number(process.versions.node.split('.')[0]) < 24) {
    throw new Error(`Node.js 24 is required, this is ${process.version}: run the tests with npm test`);
  }
  const reused = script('status.sh', true) === 0;
  if (!reused && script('up.sh') !== 0)
    throw new Error('the local control plane did not start: see .cache/cluster/logs');
  project.provide('kubeconfig', join(root, '.cache/cluster/kubeconfig'));
  return () => {
    if (!reused) script('down.sh');
  };
}
