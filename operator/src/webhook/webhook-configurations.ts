// The admission webhook configurations that route pod creations and cloudphone.io resources to the operator.
// The Helm chart installs them; the operator keeps their caBundle current (leader only), and in development
// mode, with no chart, applies them itself pointing at its local URL.

import type {
  AdmissionregistrationV1Api,
  V1MutatingWebhookConfiguration,
  V1ValidatingWebhookConfiguration,
  AdmissionregistrationV1WebhookClientConfig as WebhookClientConfig,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { applyPatchOptions, jsonPatchOptions } from '../kube/patch-options.ts';
import { GROUP, INJECT_OPT_OUT, INJECTION_ENABLED, INJECTION_LABEL, SYSTEM_NAMESPACES, VERSION } from '../labels.ts';

export const WEBHOOK_CONFIGURATION_NAME = 'cloudphone-operator';
export const INJECTOR_WEBHOOK = 'sidecar-injector.cloudphone.io';
export const VALIDATOR_WEBHOOK = 'resources.cloudphone.io';
export const MUTATE_PATH = '/mutate-pods';
export const VALIDATE_PATH = '/validate-resources';

export interface WebhookEndpoint {
  /** In the cluster: the operator's Service. */
  service?: { namespace: string; name: string; port: number };
  /** Out of the cluster (development): a URL such as https://127.0.0.1:9443. */
  url?: string;
  operatorNamespace: string;
  /** Name of the two configurations (the chart's fullname); WEBHOOK_CONFIGURATION_NAME when not given. */
  configurationName?: string;
}

function clientConfig(endpoint: WebhookEndpoint, path: string, caBundle: string): WebhookClientConfig {
  const ca = Buffer.from(caBundle).toString('base64');
  if (endpoint.url) return { url: `${endpoint.url}${path}`, caBundle: ca };
  if (!endpoint.service) throw new Error('a webhook endpoint needs a service or a url');
  return { service: { ...endpoint.service, path }, caBundle: ca };
}

/**
 * Chosen on purpose:
 * - failurePolicy Fail for pods: a pod created while no replica answers would run without its sidecar and never
 *   stream; opted-in namespaces only, and two replicas with a PodDisruptionBudget keep the webhook up.
 * - namespaceSelector: opted-in namespaces only, never kube-system, kube-public, kube-node-lease or our own.
 * - objectSelector: pods labelled cloudphone.io/inject=false never reach the webhook at all.
 * - sideEffects None; reinvocationPolicy Never: the injection depends on nothing a later webhook or plugin adds
 *   (reinvocation would double the calls per pod, since the ServiceAccount plugin always edits our sidecar).
 * - 5 s timeout: a slow answer must not hold up pod creation for the apiserver's default 10 s.
 */
export function webhookConfigurations(
  endpoint: WebhookEndpoint,
  caBundle: string,
): { mutating: V1MutatingWebhookConfiguration; validating: V1ValidatingWebhookConfiguration } {
  const excluded = [...SYSTEM_NAMESPACES, endpoint.operatorNamespace];
  const name = endpoint.configurationName ?? WEBHOOK_CONFIGURATION_NAME;
  const labels = { 'app.kubernetes.io/part-of': 'cloudphone' };
  return {
    mutating: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name, labels },
      webhooks: [
        {
          name: INJECTOR_WEBHOOK,
          clientConfig: clientConfig(endpoint, MUTATE_PATH, caBundle),
          rules: [
            { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
          ],
          namespaceSelector: {
            matchLabels: { [INJECTION_LABEL]: INJECTION_ENABLED },
            matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: excluded }],
          },
          objectSelector: { matchExpressions: [{ key: INJECT_OPT_OUT, operator: 'NotIn', values: ['false'] }] },
          failurePolicy: 'Fail',
          matchPolicy: 'Equivalent',
          sideEffects: 'None',
          reinvocationPolicy: 'Never',
          timeoutSeconds: 5,
          admissionReviewVersions: ['v1'],
        },
      ],
    },
    validating: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name, labels },
      webhooks: [
        {
          name: VALIDATOR_WEBHOOK,
          clientConfig: clientConfig(endpoint, VALIDATE_PATH, caBundle),
          rules: [
            {
              apiGroups: [GROUP],
              apiVersions: [VERSION],
              operations: ['CREATE', 'UPDATE'],
              resources: ['cloudphonestreams', 'cloudphonepools', 'cloudphoneclaims'],
              scope: 'Namespaced',
            },
          ],
          namespaceSelector: {
            matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: SYSTEM_NAMESPACES }],
          },
          // The apiserver does not even call us for an update that leaves the spec alone (a finalizer removed,
          // labels edited) or touches a resource being deleted: with no replica up, those still go through,
          // so nothing hangs (a namespace being deleted, a finalizer someone removes by hand).
          matchConditions: VALIDATION_MATCH_CONDITIONS,
          failurePolicy: 'Fail',
          matchPolicy: 'Equivalent',
          sideEffects: 'None',
          timeoutSeconds: 5,
          admissionReviewVersions: ['v1'],
        },
      ],
    },
  };
}

/** The same conditions are in the chart's webhooks.yaml (a chart test compares them). */
export const VALIDATION_MATCH_CONDITIONS = [
  {
    name: 'not-being-deleted',
    expression: "request.operation != 'UPDATE' || !has(object.metadata.deletionTimestamp)",
  },
  {
    name: 'spec-changed',
    expression:
      "request.operation != 'UPDATE' || !has(object.spec) || !has(oldObject.spec) || object.spec != oldObject.spec",
  },
];

/**
 * Brings the webhook configurations in line: in development mode the whole objects (server-side apply), in
 * the cluster only the caBundle of our webhooks in the chart's objects, and only when it differs.
 */
export async function syncWebhookConfigurations(
  api: AdmissionregistrationV1Api,
  endpoint: WebhookEndpoint,
  caBundle: string,
  manageWholeObjects: boolean,
  log: Logger,
): Promise<void> {
  const wanted = webhookConfigurations(endpoint, caBundle);
  const ca = Buffer.from(caBundle).toString('base64');
  const name = endpoint.configurationName ?? WEBHOOK_CONFIGURATION_NAME;
  if (manageWholeObjects) {
    const options = { fieldManager: 'cloudphone-operator', force: true };
    await api.patchMutatingWebhookConfiguration({ name, body: wanted.mutating, ...options }, applyPatchOptions());
    await api.patchValidatingWebhookConfiguration({ name, body: wanted.validating, ...options }, applyPatchOptions());
    return;
  }
  const mutating = await api.readMutatingWebhookConfiguration({ name });
  const mutatingPatch = caBundlePatch(mutating.webhooks ?? [], INJECTOR_WEBHOOK, ca);
  if (mutatingPatch.length > 0) {
    await api.patchMutatingWebhookConfiguration({ name, body: mutatingPatch }, jsonPatchOptions());
    log.info({ configuration: name }, 'updated the mutating webhook caBundle');
  }
  const validating = await api.readValidatingWebhookConfiguration({ name });
  const validatingPatch = caBundlePatch(validating.webhooks ?? [], VALIDATOR_WEBHOOK, ca);
  if (validatingPatch.length > 0) {
    await api.patchValidatingWebhookConfiguration({ name, body: validatingPatch }, jsonPatchOptions());
    log.info({ configuration: name }, 'updated the validating webhook caBundle');
  }
}

function caBundlePatch(webhooks: { name: string; clientConfig: { caBundle?: string } }[], name: string, ca: string) {
  const index = webhooks.findIndex((w) => w.name === name);
  if (index < 0 || webhooks[index]?.clientConfig.caBundle === ca) return [];
  return [
    // test first: the patch applies only to the webhook we looked at, even if the list changed meanwhile
    { op: 'test', path: `/webhooks/${String(index)}/name`, value: name },
    { op: 'replace', path: `/webhooks/${String(index)}/clientConfig/caBundle`, value: ca },
  ];
}

/** Development mode only: removes the configurations the operator applied itself. */
export async function deleteWebhookConfigurations(api: AdmissionregistrationV1Api): Promise<void> {
  await api.deleteMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME }).catch(() => undefined);
  await api.deleteValidatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME }).catch(() => undefined);
}
