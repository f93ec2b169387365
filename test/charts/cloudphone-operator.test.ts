// The Helm chart, rendered by the pinned helm: lint, the values schema, and agreement with the operator's code
// and the generated CRDs. (Installing it into the local control plane is still to come: see issue 7.)

import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { webhookConfigurations } from '../../operator/src/webhook/webhook-configurations.ts';

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
});
