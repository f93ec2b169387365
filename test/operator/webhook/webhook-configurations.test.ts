import { describe, expect, it } from 'vitest';
import { webhookConfigurations } from '../../../operator/src/webhook/webhook-configurations.ts';

describe('webhookConfigurations', () => {
  const { mutating, validating } = webhookConfigurations(
    {
      service: { namespace: 'cloudphone-system', name: 'cloudphone-operator', port: 443 },
      operatorNamespace: 'cloudphone-system',
    },
    '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n',
  );
  const injector = mutating.webhooks?.[0];
  const validator = validating.webhooks?.[0];

  it('sends only pod creations of opted-in namespaces to the injector, never system namespaces or our own', () => {
    expect(injector?.rules).toEqual([
      { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
    ]);
    expect(injector?.namespaceSelector).toEqual({
      matchLabels: { 'cloudphone.io/injection': 'enabled' },
      matchExpressions: [
        {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: ['kube-system', 'kube-public', 'kube-node-lease', 'cloudphone-system'],
        },
      ],
    });
    expect(injector?.objectSelector).toEqual({
      matchExpressions: [{ key: 'cloudphone.io/inject', operator: 'NotIn', values: ['false'] }],
    });
  });

  it('states the failure policy, side effects, timeout and reinvocation on purpose', () => {
    expect(injector).toMatchObject({
      failurePolicy: 'Fail',
      sideEffects: 'None',
      timeoutSeconds: 5,
      reinvocationPolicy: 'Never',
      admissionReviewVersions: ['v1'],
    });
    expect(validator).toMatchObject({ failurePolicy: 'Fail', sideEffects: 'None', timeoutSeconds: 5 });
  });

  it('reaches the operator through its Service with the CA it trusts', () => {
    expect(injector?.clientConfig).toEqual({
      service: { namespace: 'cloudphone-system', name: 'cloudphone-operator', port: 443, path: '/mutate-pods' },
      caBundle: Buffer.from('-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n').toString('base64'),
    });
    expect(validator?.rules?.[0]?.resources).toEqual(['cloudphonestreams', 'cloudphonepools', 'cloudphoneclaims']);
  });
});
