// Glue between the HTTPS endpoints and the admission decisions: decode the review, look up what the decision
// needs from the informers and the API, encode the answer, log and count it.

import type { IncomingMessage } from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import type { CustomObjectsApi, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { CloudPhoneClaim, CloudPhonePool, CloudPhoneStream } from '../../../generated/ts/api-types.ts';
import type { SchemaValidator } from '../../../schemas/runtime/validator.ts';
import type { HttpReply } from '../https-endpoints.ts';
import type { ResilientInformer } from '../kube/resilient-informer.ts';
import { GROUP, SYSTEM_NAMESPACES, VERSION } from '../labels.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { admissionReply, parseAdmissionReview, type AdmissionRequest } from './admission-review.ts';
import type { InjectionSettings } from './injection-settings.ts';
import { injectSidecar } from './pod-injector.ts';
import {
  validateClaim,
  validatePool,
  validateStream,
  type Refusal,
  type ValidationLookups,
} from './resource-validator.ts';

export interface AdmissionHandlersOptions {
  streams: ResilientInformer<CloudPhoneStream>;
  settings: () => InjectionSettings;
  validator: SchemaValidator;
  custom: CustomObjectsApi;
  metrics: OperatorMetrics;
  log: Logger;
  operatorNamespace: string;
}

export class AdmissionHandlers {
  private readonly o: AdmissionHandlersOptions;

  constructor(options: AdmissionHandlersOptions) {
    this.o = options;
  }

  /** POST /mutate-pods */
  mutatePods = (_req: IncomingMessage, body: Buffer): Promise<HttpReply> => {
    const end = this.o.metrics.webhookDuration.startTimer({ webhook: 'mutate-pods' });
    const request = parseAdmissionReview(body);
    if (typeof request === 'string') return Promise.resolve({ status: 400, body: { message: request } });
    const namespace = request.namespace ?? '';
    const pod = request.object as V1Pod;
    // Belt and braces: the webhook configuration already keeps these namespaces away.
    if (
      SYSTEM_NAMESPACES.includes(namespace) ||
      namespace === this.o.operatorNamespace ||
      request.operation !== 'CREATE'
    ) {
      end({ allowed: 'true' });
      return Promise.resolve(admissionReply(request.uid, { allowed: true }));
    }
    const decision = injectSidecar(pod, [...this.o.streams.list(namespace)], this.o.settings(), this.o.validator);
    end({ allowed: String(decision.allowed) });
    const podName = pod.metadata?.name ?? `${pod.metadata?.generateName ?? ''}*`;
    if (!decision.allowed) {
      this.o.log.info({ namespace, pod: podName, reason: decision.message }, 'pod denied');
      return Promise.resolve(
        admissionReply(request.uid, { allowed: false, message: decision.message, code: 400, reason: 'BadRequest' }),
      );
    }
    if (decision.injected) {
      this.o.metrics.podsInjected.inc({ namespace });
      this.o.log.info(
        { namespace, pod: podName, stream: decision.injected.stream, dryRun: request.dryRun ?? false },
        'sidecar injected',
      );
    }
    return Promise.resolve(
      admissionReply(request.uid, { allowed: true, patch: decision.patch, warnings: decision.warnings }),
    );
  };

  /** POST /validate-resources */
  validateResources = async (_req: IncomingMessage, body: Buffer): Promise<HttpReply> => {
    const end = this.o.metrics.webhookDuration.startTimer({ webhook: 'validate-resources' });
    const request = parseAdmissionReview(body);
    if (typeof request === 'string') return { status: 400, body: { message: request } };
    const refusals = await this.refusals(request);
    end({ allowed: String(refusals.length === 0) });
    if (refusals.length === 0) return admissionReply(request.uid, { allowed: true });
    const kind = request.kind.kind;
    const message = `${kind} ${request.name ?? ''} is invalid: ${refusals.map((r) => `${r.field}: ${r.message}`).join('; ')}`;
    this.o.log.info(
      { namespace: request.namespace, kind, name: request.name, refusals: refusals.length },
      'resource refused',
    );
    return admissionReply(request.uid, { allowed: false, message, code: 422, reason: 'Invalid', causes: refusals });
  };

  private async refusals(request: AdmissionRequest): Promise<Refusal[]> {
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return [];
    const object = request.object as { metadata?: { deletionTimestamp?: string }; spec?: unknown } | undefined;
    const old = request.oldObject as { spec?: unknown } | undefined;
    // Never stand in the way of a deletion (removing a finalizer is an UPDATE, and the Secrets may be gone by
    // then), nor of an update that leaves the spec alone: only what the user changed is judged.
    if (object?.metadata?.deletionTimestamp) return [];
    if (request.operation === 'UPDATE' && isDeepStrictEqual(object?.spec, old?.spec)) return [];
    const namespace = request.namespace ?? '';
    const lookups = this.lookups(namespace);
    switch (request.kind.kind) {
      case 'CloudPhoneStream':
        return validateStream(request.object as CloudPhoneStream, lookups);
      case 'CloudPhonePool':
        return validatePool(request.object as CloudPhonePool, lookups);
      case 'CloudPhoneClaim':
        return validateClaim(request.object as CloudPhoneClaim, await this.withPools(namespace, lookups));
      default:
        return [];
    }
  }

  private lookups(namespace: string): ValidationLookups {
    return {
      streams: () => [...this.o.streams.list(namespace)],
      pools: () => [],
    };
  }

  private async withPools(namespace: string, lookups: ValidationLookups): Promise<ValidationLookups> {
    const list = (await this.o.custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'cloudphonepools',
    })) as { items: CloudPhonePool[] };
    return { ...lookups, pools: () => list.items };
  }
}
