/** Data types, with PyTorch's names; codes are libtorch's ScalarType values. */
import { DtypeError } from './errors.js';

export type DType = 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'float16' | 'float32' | 'float64' | 'bool';

const CODES: Record<DType, number> = {
  uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4, float16: 5, float32: 6, float64: 7, bool: 11,
};
const NAMES: Record<number, DType> = Object.fromEntries(Object.entries(CODES).map(([k, v]) => [v, k as DType]));

export const DTYPES = Object.keys(CODES) as DType[];

export function dtypeCode(d: DType): number {
  const c = CODES[d];
  if (c === undefined) throw new DtypeError(`unknown dtype '${d}' (known: ${DTYPES.join(', ')})`);
  return c;
}

export function dtypeName(code: number): DType {
  const n = NAMES[code];
  if (n === undefined) throw new DtypeError(`unsupported native dtype code ${code}`);
  return n;
}

export function isFloating(d: DType): boolean {
  return d === 'float16' || d === 'float32' || d === 'float64';
}

export type TypedArray = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array;

/** The typed array a dtype reads into (float16 is widened by the caller). */
export function typedArrayFor(d: DType, buf: ArrayBuffer): TypedArray {
  switch (d) {
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
    case 'int32': return new Int32Array(buf);
    case 'int16': return new Int16Array(buf);
    case 'int8': return new Int8Array(buf);
    case 'uint8': case 'bool': return new Uint8Array(buf);
    case 'int64': return new BigInt64Array(buf);
    default: throw new DtypeError(`no typed array for dtype ${d}: convert with .to('float32') first`);
  }
}

export function dtypeOfTypedArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof BigInt64Array) return 'int64';
  throw new DtypeError('unsupported typed array');
}

export function elementSize(d: DType): number {
  return { uint8: 1, int8: 1, bool: 1, int16: 2, float16: 2, int32: 4, float32: 4, int64: 8, float64: 8 }[d];
}
