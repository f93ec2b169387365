import { describe, expect, it } from 'vitest';
import { SchemaValidator, ValidationError, type SchemaName } from '../../schemas/runtime/validator.ts';
import { invalidExamples, validExamples } from '../fixtures/schema-fixtures.ts';

const validator = new SchemaValidator();

describe('SchemaValidator', () => {
  it.each(validExamples().map((e) => [e.name, e] as const))('accepts the valid example %s', (_name, example) => {
    expect(validator.check(example.kind as SchemaName, example.document)).toEqual([]);
  });

  it.each(invalidExamples().map((e) => [e.name, e] as const))(
    'rejects the invalid example %s, naming the field',
    (_name, example) => {
      const errors = validator.check(example.kind as SchemaName, example.document);
      expect(errors.length).toBeGreaterThan(0);
      expect(errors).toContainEqual({
        path: example.field,
        message: expect.stringContaining(example.message) as string,
      });
    },
  );

  it('fills in the defaults the apiserver would, without touching its input', () => {
    const example = validExamples().find((e) => e.name === 'stream-minimal');
    const input = structuredClone(example?.document);
    const stream = validator.parse('CloudPhoneStream', input);
    expect(input).toEqual(example?.document);
    expect(stream.spec.rollout).toBe('onCreate');
    expect(stream.spec.video).toEqual({
      codec: 'h264',
      maxSize: 2560,
      fps: 30,
      bitrate: { targetKbps: 4000, minKbps: 500, maxKbps: 8000 },
      keyframeIntervalSeconds: 2,
      intraRefresh: false,
      encoder: 'auto',
    });
    expect(stream.spec.webrtc?.whep).toMatchObject({ enabled: true, port: 8443, maxViewers: 8 });
    expect(stream.spec.input).toEqual({ enabled: true, backend: 'socket', maxEventsPerSecond: 1500 });
  });

  it('judges cross-field rules on the defaulted document, as the apiserver does', () => {
    // minKbps alone above the default maxKbps is only wrong once the defaults are in.
    const stream = validExamples().find((e) => e.name === 'stream-minimal')?.document as { spec: object };
    const errors = validator.check('CloudPhoneStream', {
      ...stream,
      spec: { ...stream.spec, video: { bitrate: { minKbps: 9000 } } },
    });
    expect(errors).toEqual([
      { path: 'spec.video.bitrate', message: 'bitrate must satisfy minKbps <= targetKbps <= maxKbps' },
    ]);
  });

  it('reports every bad field at once', () => {
    const errors = validator.check('CloudPhoneStream', {
      spec: { phoneContainer: 'Not A Name', video: { fps: 0, encoder: 'magic' }, srt: { mode: 'caller' } },
    });
    expect(errors.map((e) => e.path).sort()).toEqual([
      'spec.phoneContainer',
      'spec.selector',
      'spec.srt.url',
      'spec.video.encoder',
      'spec.video.fps',
    ]);
  });

  it('throws a ValidationError whose message names the fields', () => {
    expect(() => validator.parse('CloudPhoneClaim', { spec: { poolRef: { name: 'p' }, access: 'root' } })).toThrow(
      ValidationError,
    );
    expect(() => validator.parse('CloudPhoneClaim', { spec: { poolRef: { name: 'p' }, access: 'root' } })).toThrow(
      /spec\.access: must be one of: view, control/,
    );
  });

  it('treats int-or-string values by their type', () => {
    const pool = validExamples().find((e) => e.name === 'pool')?.document as { spec: { autoscaling: object } };
    const withBuffer = (buffer: unknown) => ({
      ...pool,
      spec: { ...pool.spec, autoscaling: { ...pool.spec.autoscaling, buffer } },
    });
    expect(validator.check('CloudPhonePool', withBuffer(5))).toEqual([]);
    expect(validator.check('CloudPhonePool', withBuffer('35%'))).toEqual([]);
    expect(validator.check('CloudPhonePool', withBuffer(-1))[0]?.path).toBe('spec.autoscaling.buffer');
    expect(validator.check('CloudPhonePool', withBuffer(true))[0]).toEqual({
      path: 'spec.autoscaling.buffer',
      message: 'must be an integer or a string',
    });
  });
});
