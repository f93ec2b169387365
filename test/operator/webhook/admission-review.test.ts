import { describe, expect, it } from 'vitest';
import { admissionReply, parseAdmissionReview } from '../../../operator/src/webhook/admission-review.ts';

const review = (request: unknown) =>
  Buffer.from(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request }));

describe('parseAdmissionReview', () => {
  it('returns the request of a v1 AdmissionReview', () => {
    const request = { uid: 'u1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE' };
    expect(parseAdmissionReview(review(request))).toEqual(request);
  });

  it('explains what is wrong with anything else', () => {
    expect(parseAdmissionReview(Buffer.from('{'))).toBe('the body is not JSON');
    expect(
      parseAdmissionReview(Buffer.from('{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}')),
    ).toBe('expected an admission.k8s.io/v1 AdmissionReview');
    expect(parseAdmissionReview(review({ kind: { kind: 'Pod' } }))).toBe('the AdmissionReview has no request');
  });
});

describe('admissionReply', () => {
  it('carries a JSON Patch base64-encoded, and no patch when there is nothing to change', () => {
    const patch = [{ op: 'add' as const, path: '/metadata/labels', value: { a: 'b' } }];
    const { body } = admissionReply('u1', { allowed: true, patch, warnings: ['w'] }) as {
      body: { response: { patch: string; patchType: string; warnings: string[] } };
    };
    expect(JSON.parse(Buffer.from(body.response.patch, 'base64').toString())).toEqual(patch);
    expect(body.response).toMatchObject({ uid: 'u1', allowed: true, patchType: 'JSONPatch', warnings: ['w'] });
    expect((admissionReply('u2', { allowed: true, patch: [] }).body as { response: object }).response).toEqual({
      uid: 'u2',
      allowed: true,
    });
  });

  it('carries a denial with its status code, reason and field causes', () => {
    const { body } = admissionReply('u3', {
      allowed: false,
      message: 'no',
      code: 422,
      reason: 'Invalid',
      causes: [{ field: 'spec.x', message: 'bad' }],
    }) as { body: { response: object } };
    expect(body.response).toEqual({
      uid: 'u3',
      allowed: false,
      status: {
        code: 422,
        reason: 'Invalid',
        message: 'no',
        details: { causes: [{ field: 'spec.x', message: 'bad' }] },
      },
    });
  });
});
