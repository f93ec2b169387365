// Golden-file tests of the injection webhook's pure core, as Istio tests its injector: each
// test/fixtures/injection/<case>.input.yaml (streams, pod, optional settings) has a <case>.golden.yaml with the
// pod after the patch (or the denial), and a second pass over the patched pod must change nothing.
// UPDATE_GOLDEN=1 npx vitest run test/operator/webhook rewrites the golden files; review their diff.

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import { injectSidecar } from '../../../operator/src/webhook/pod-injector.ts';
import type { InjectionSettings } from '../../../operator/src/webhook/injection-settings.ts';
import { SchemaValidator } from '../../../schemas/runtime/validator.ts';

const dir = join(import.meta.dirname, '../../fixtures/injection');
const validator = new SchemaValidator();

export const testSettings: InjectionSettings = {
  sidecarImage: 'cloudphone/sidecar:test',
  sidecarImagePullPolicy: 'IfNotPresent',
  sidecarResources: { requests: { cpu: '250m', memory: '128Mi' }, limits: { memory: '512Mi' } },
  sharedVolumeSizeLimit: '256Mi',
  nativeSidecars: true,
  metricsPort: 9090,
  report: {
    url: 'https://cloudphone-operator.cloudphone-system.svc:9444/report',
    caConfigMap: 'cloudphone-operator-ca',
    intervalSeconds: 10,
  },
};

interface InjectionCase {
  settings?: Partial<InjectionSettings>;
  streams: CloudPhoneStream[];
  pod: V1Pod;
}

function load(name: string) {
  const input = parse(readFileSync(join(dir, `${name}.input.yaml`), 'utf8')) as InjectionCase;
  // Streams as the apiserver stores them: with their defaults.
  const streams = input.streams.map((s) => ({ ...s, spec: validator.parse('CloudPhoneStream', s).spec }));
  return { settings: { ...testSettings, ...input.settings }, streams, pod: input.pod };
}

/** What a golden file holds: the outcome, the patched pod, and the sidecar's config decoded for review. */
function outcome(name: string) {
  const { settings, streams, pod } = load(name);
  const decision = injectSidecar(pod, streams, settings, validator);
  if (!decision.allowed) return { golden: { denied: decision.message }, patched: undefined, settings, streams };
  const patched = fastJsonPatch.applyPatch(structuredClone(pod), decision.patch, true, false).newDocument;
  const sidecar = [...(patched.spec?.initContainers ?? []), ...(patched.spec?.containers ?? [])].find(
    (c) => c.name === 'cloudphone-sidecar',
  );
  const configJson = sidecar?.env?.find((e) => e.name === 'CLOUDPHONE_SIDECAR_CONFIG')?.value;
  const golden = {
    ...(decision.skipped ? { skipped: decision.skipped } : {}),
    ...(decision.warnings.length ? { warnings: decision.warnings } : {}),
    ...(configJson ? { sidecarConfig: JSON.parse(configJson) as unknown } : {}),
    pod: patched,
  };
  return { golden, patched, settings, streams };
}

const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.input.yaml'))
  .map((f) => f.replace(/\.input\.yaml$/, ''))
  .sort();

describe('injectSidecar', () => {
  it.each(cases)('produces the golden result for %s', (name) => {
    const { golden } = outcome(name);
    const goldenPath = join(dir, `${name}.golden.yaml`);
    const text = stringify(golden, { lineWidth: 0 });
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(goldenPath)) writeFileSync(goldenPath, text);
    expect(text).toBe(readFileSync(goldenPath, 'utf8'));
  });

  it.each(cases)('changes nothing on a second pass over the result of %s', (name) => {
    const { patched, settings, streams } = outcome(name);
    if (!patched) return; // a denial has no second pass
    const again = injectSidecar(patched, streams, settings, validator);
    expect(again).toMatchObject({ allowed: true, patch: [] });
  });

  it('never writes a Secret value, only the paths of mounted Secret files', () => {
    const { golden } = outcome('full-stream');
    const text = JSON.stringify(golden);
    expect(text).toContain('/var/run/secrets/cloudphone/srt-passphrase/passphrase');
    expect(text).not.toMatch(/passphraseSecretRef|credentialSecretRef|tokenSecretRef/);
  });

  it('gives the sidecar a least-privilege security context', () => {
    const { patched } = outcome('basic');
    const sidecar = patched?.spec?.initContainers?.[0];
    expect(sidecar?.name).toBe('cloudphone-sidecar');
    expect(sidecar?.restartPolicy).toBe('Always');
    expect(sidecar?.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('shares the frame memory and control socket through the pod fsGroup, keeping one the pod has', () => {
    const { settings, streams, pod } = load('basic');
    const fresh = outcome('basic').patched;
    expect(fresh?.spec?.securityContext).toEqual({ fsGroup: 65532, fsGroupChangePolicy: 'OnRootMismatch' });

    const own = structuredClone(pod);
    own.spec = {
      ...own.spec,
      containers: own.spec?.containers ?? [],
      securityContext: { fsGroup: 3003, runAsUser: 1000 },
    };
    const decision = injectSidecar(own, streams, settings, validator);
    if (!decision.allowed) throw new Error(decision.message);
    const patched = fastJsonPatch.applyPatch(structuredClone(own), decision.patch, true, false).newDocument;
    expect(patched.spec?.securityContext).toEqual({ fsGroup: 3003, runAsUser: 1000 });
  });

  it("lets only the phone's users reach the control socket: the stream's phoneUids, else the uid the pod gives the phone", () => {
    const { settings, streams, pod } = load('basic');
    const [stream] = streams;
    if (!stream) throw new Error('basic has a stream');
    const uidsFor = (p: V1Pod, s: CloudPhoneStream): unknown => {
      const decision = injectSidecar(p, [s], settings, validator);
      if (!decision.allowed) throw new Error(decision.message);
      const patched = fastJsonPatch.applyPatch(structuredClone(p), decision.patch, true, false).newDocument;
      const sidecar = [...(patched.spec?.initContainers ?? []), ...(patched.spec?.containers ?? [])].find(
        (c) => c.name === 'cloudphone-sidecar',
      );
      const config = sidecar?.env?.find((e) => e.name === 'CLOUDPHONE_SIDECAR_CONFIG')?.value ?? '{}';
      return (JSON.parse(config) as { shared?: { phoneUids?: number[] } }).shared?.phoneUids;
    };
    const withUids = (container?: number, podUid?: number): V1Pod => {
      const copy = structuredClone(pod);
      if (!copy.spec) throw new Error('basic has a pod spec');
      if (podUid !== undefined) copy.spec.securityContext = { runAsUser: podUid };
      const phone = copy.spec.containers.find((c) => c.name === stream.spec.phoneContainer);
      if (phone && container !== undefined) phone.securityContext = { runAsUser: container };
      return copy;
    };
    // Nothing set: the image's user, unknown here; root and Android's system user, as Redroid runs its composer.
    expect(uidsFor(withUids(), stream)).toEqual([0, 1000]);
    expect(uidsFor(withUids(undefined, 2000), stream)).toEqual([2000]);
    expect(uidsFor(withUids(3000, 2000), stream)).toEqual([3000]);
    expect(uidsFor(withUids(0), stream)).toEqual([0, 1000]);
    expect(uidsFor(withUids(3000), { ...stream, spec: { ...stream.spec, phoneUids: [1041, 1000] } })).toEqual([
      1041, 1000,
    ]);
  });

  it('refuses a pod of a stream that listens for SRT without a passphrase (one stored before the rule)', () => {
    const { settings, streams, pod } = load('basic');
    const [stream] = streams;
    if (!stream) throw new Error('basic has a stream');
    // The apiserver refuses such a stream now; one it stored earlier still reaches the webhook.
    const old = { ...stream, spec: { ...stream.spec, srt: { mode: 'listener' as const, port: 9000 } } };
    const decision = injectSidecar(pod, [old], settings, validator);
    expect(decision).toMatchObject({ allowed: false });
    const message = decision.allowed ? '' : decision.message;
    expect(message).toContain(`CloudPhoneStream ${stream.metadata?.name ?? ''}`);
    expect(message).toContain('passphraseFile is required in listener mode');
    expect(message).not.toContain('annotation');
  });
});
