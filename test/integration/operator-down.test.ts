// Nothing hangs when no operator replica is up: its validating webhook (failurePolicy Fail) is not called for an
// update that leaves the spec alone or touches a resource being deleted (matchConditions), and streams carry no
// finalizer of ours (their Service goes by its owner reference). The operator here is killed, as when all its
// pods are gone, leaving its webhook configurations pointing at a closed port.

import { randomBytes } from 'node:crypto';
import { AdmissionregistrationV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jsonPatchOptions } from '../../operator/src/kube/patch-options.ts';
import { OperatorProcess } from '../cluster/operator-process.ts';
import {
  apiErrorMessage,
  createStream,
  getStream,
  installCrds,
  kubeConfig,
  streamBody,
  waitFor,
} from '../cluster/test-cluster.ts';

const core = () => kubeConfig().makeApiClient(CoreV1Api);
const custom = () => kubeConfig().makeApiClient(CustomObjectsApi);
const namespace = `down-${randomBytes(3).toString('hex')}`;
const streams = { group: 'cloudphone.io', version: 'v1alpha1', namespace, plural: 'cloudphonestreams' };
let operator: OperatorProcess;

async function gone(read: () => Promise<unknown>): Promise<true | undefined> {
  return read().then(
    () => undefined,
    () => true,
  );
}

describe('with the operator down', () => {
  beforeAll(async () => {
    installCrds();
    await core().createNamespace({ body: { metadata: { name: namespace, labels: { 'cloudphone-test': 'true' } } } });
    await core().createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'viewer-tokens' }, stringData: { view: 'view-token-1234', control: 'control-5678' } },
    });
    operator = await new OperatorProcess('down-operator', inject('kubeconfig')).started();
    await waitFor('the operator to lead', () => Promise.resolve(operator.isLeaderInLogs() || undefined));
    const admission = kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    await waitFor('its validating webhook', async () =>
      (
        await admission.readValidatingWebhookConfiguration({ name: 'cloudphone-operator' })
      ).webhooks?.[0]?.clientConfig.url?.includes(`:${String(operator.httpsPort)}/`)
        ? true
        : undefined,
    );
    // Made while it runs: a stream, and one that another tool holds with its own finalizer.
    await createStream(namespace, streamBody('phones', 'phones'));
    await createStream(namespace, streamBody('held', 'held', {}, ['example.com/hold']));
    // And one with the finalizer older releases put on every stream.
    await createStream(namespace, streamBody('legacy', 'legacy', {}, ['cloudphone.io/cleanup']));
    await waitFor('the streams to be reconciled', async () =>
      (await getStream(namespace, 'phones')).status?.observedGeneration === 1 &&
      (await getStream(namespace, 'held')).status?.observedGeneration === 1 &&
      (await getStream(namespace, 'legacy')).status?.observedGeneration === 1
        ? true
        : undefined,
    );
    await waitFor('the old finalizer to come off', async () =>
      (await getStream(namespace, 'legacy')).metadata?.finalizers === undefined ? true : undefined,
    );
    operator.kill();
  });

  afterAll(async () => {
    await operator.stop();
    const admission = kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    await admission.deleteMutatingWebhookConfiguration({ name: 'cloudphone-operator' }).catch(() => undefined);
    await admission.deleteValidatingWebhookConfiguration({ name: 'cloudphone-operator' }).catch(() => undefined);
    await core()
      .deleteNamespace({ name: namespace })
      .catch(() => undefined);
  });

  it('still refuses a spec change it cannot validate', async () => {
    const error = await custom()
      .patchNamespacedCustomObject(
        { ...streams, name: 'phones', body: [{ op: 'replace', path: '/spec/phoneContainer', value: 'other' }] },
        jsonPatchOptions(),
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(apiErrorMessage(error)).toMatch(/failed calling webhook "resources.cloudphone.io"/);
  });

  it('lets another tool remove its finalizer from a stream being deleted', async () => {
    await custom().deleteNamespacedCustomObject({ ...streams, name: 'held' });
    expect((await getStream(namespace, 'held')).metadata?.deletionTimestamp).toBeDefined();
    const held = await getStream(namespace, 'held');
    const index = held.metadata?.finalizers?.indexOf('example.com/hold') ?? -1;
    expect(index).toBeGreaterThanOrEqual(0);
    await custom().patchNamespacedCustomObject(
      {
        ...streams,
        name: 'held',
        body: [
          { op: 'test', path: `/metadata/finalizers/${String(index)}`, value: 'example.com/hold' },
          { op: 'remove', path: `/metadata/finalizers/${String(index)}` },
        ],
      },
      jsonPatchOptions(),
    );
    await waitFor('the held stream to be gone', () => gone(() => getStream(namespace, 'held')));
  });

  it('deletes a stream, and then its whole namespace, without the operator', async () => {
    await custom().deleteNamespacedCustomObject({ ...streams, name: 'phones' });
    await waitFor('the stream to be gone', () => gone(() => getStream(namespace, 'phones')), 15_000);
    await core().deleteNamespace({ name: namespace });
    await waitFor('the namespace to be gone', () => gone(() => core().readNamespace({ name: namespace })), 90_000);
  });
});
