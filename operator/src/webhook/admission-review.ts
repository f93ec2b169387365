// The AdmissionReview envelope (admission.k8s.io/v1): decoding requests and encoding responses. Kept apart from
// the decisions, which never see HTTP or the envelope.

import type { Operation } from 'fast-json-patch';
import type { HttpReply } from '../https-endpoints.ts';

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  namespace?: string;
  name?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export type AdmissionOutcome =
  | { allowed: true; patch?: Operation[]; warnings?: string[] }
  | { allowed: false; message: string; code?: number; reason?: string; causes?: { field: string; message: string }[] };

export function parseAdmissionReview(body: Buffer): AdmissionRequest | string {
  let review: unknown;
  try {
    review = JSON.parse(body.toString('utf8'));
  } catch {
    return 'the body is not JSON';
  }
  const r = review as { apiVersion?: unknown; kind?: unknown; request?: Partial<AdmissionRequest> };
  if (r.apiVersion !== 'admission.k8s.io/v1' || r.kind !== 'AdmissionReview')
    return 'expected an admission.k8s.io/v1 AdmissionReview';
  const request = r.request;
  if (!request || typeof request.uid !== 'string' || typeof request.kind?.kind !== 'string') {
    return 'the AdmissionReview has no request';
  }
  return request as AdmissionRequest;
}

export function admissionReply(uid: string, outcome: AdmissionOutcome): HttpReply {
  const response: Record<string, unknown> = { uid, allowed: outcome.allowed };
  if (outcome.allowed) {
    if (outcome.patch && outcome.patch.length > 0) {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(outcome.patch)).toString('base64');
    }
    if (outcome.warnings?.length) response.warnings = outcome.warnings;
  } else {
    response.status = {
      code: outcome.code ?? 403,
      reason: outcome.reason ?? 'Forbidden',
      message: outcome.message,
      ...(outcome.causes
        ? { details: { causes: outcome.causes.map((c) => ({ field: c.field, message: c.message })) } }
        : {}),
    };
  }
  return { status: 200, body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response } };
}
