import { describe, expect, it } from 'vitest';
import { quantityBytes, quantityValue } from '../../schemas/runtime/quantity.ts';

describe('quantityValue', () => {
  it('reads binary and decimal suffixes, exponents and plain numbers', () => {
    expect(quantityValue('10Gi')).toBe(10 * 1024 ** 3);
    expect(quantityValue('16Mi')).toBe(16 * 1024 ** 2);
    expect(quantityValue('1.5Ki')).toBe(1536);
    expect(quantityValue('100M')).toBe(100e6);
    expect(quantityValue('1e9')).toBe(1e9);
    expect(quantityValue('500m')).toBe(0.5);
    expect(quantityValue('.5k')).toBe(500);
    expect(quantityValue(4096)).toBe(4096);
  });

  it('gives NaN for anything else', () => {
    for (const bad of ['', 'Gi', '10GB', '10 Gi', '1.2.3', '10gi', '0x10']) expect(quantityValue(bad)).toBeNaN();
  });

  it('rounds sizes up to whole bytes', () => {
    expect(quantityBytes('1500m')).toBe(2);
    expect(quantityBytes('1Mi')).toBe(1048576);
  });
});
