// A Kubernetes resource quantity ("10Gi", "500M", "1e9", "1.5Ki") as a number, for sizes the operator compares
// or hands on in bytes. The schemas' Quantity pattern has already checked the form; anything else is NaN.

const SUFFIXES: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const FORM = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?(?:\d+(?:\.\d*)?|\.\d+))|([KMGTPE]i|[numkMGTPE]))?$/;

export function quantityValue(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  const match = FORM.exec(quantity.trim());
  if (!match) return NaN;
  const [, number = '', exponent, suffix = ''] = match;
  if (exponent !== undefined) return Number(`${number}${exponent}`);
  const scale = SUFFIXES[suffix];
  return scale === undefined ? NaN : Number(number) * scale;
}

/** Whole bytes of a size quantity, rounded up. */
export function quantityBytes(quantity: string | number): number {
  return Math.ceil(quantityValue(quantity));
}
