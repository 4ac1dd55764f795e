/** Test helpers: tensors from fixture records, and element-wise comparison with a tolerance. */
import assert from 'node:assert/strict';
import { type DType } from '../../src/core/dtype.js';
import { Tensor, tensor } from '../../src/tensor/index.js';

/** A tensor as the fixture script writes it: flat data, non-finite numbers as strings. */
export interface TensorRecord { dtype: DType; shape: number[]; data: (number | string)[] }

export const num = (v: number | string): number =>
  typeof v === 'number' ? v : v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number.parseFloat(v);

export function fromRecord(r: TensorRecord): Tensor {
  const data = r.data.map(num);
  if (r.dtype === 'float16') {
    const f = tensor(data, { dtype: 'float32', shape: r.shape });
    const h = f.to('float16');
    f.dispose();
    return h;
  }
  return tensor(data, { dtype: r.dtype, shape: r.shape });
}

export interface Tol { rtol: number; atol: number }
export function defaultTol(d: DType): Tol {
  if (d === 'float64') return { rtol: 1e-10, atol: 1e-12 };
  if (d === 'float16') return { rtol: 1e-3, atol: 1e-3 };
  return { rtol: 1e-5, atol: 1e-5 };
}

/** Assert `actual` has the record's dtype, shape and values (floats within tol, others exact). */
export function assertMatches(actual: Tensor, expected: TensorRecord, what: string, tol?: Tol): void {
  assert.ok(actual instanceof Tensor, `${what}: expected a Tensor, got ${String(actual)}`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const got = actual.dataSync();
  const want = expected.data.map(num);
  assert.equal(got.length, want.length, `${what}: element count`);
  const floating = expected.dtype.startsWith('float');
  const { rtol, atol } = tol ?? defaultTol(expected.dtype);
  for (let k = 0; k < want.length; k++) {
    const g = got[k], w = want[k];
    if (!floating) {
      assert.equal(g, w, `${what}: element ${k} is ${g}, PyTorch gives ${w}`);
    } else if (Number.isNaN(w)) {
      assert.ok(Number.isNaN(g), `${what}: element ${k} is ${g}, PyTorch gives NaN`);
    } else if (!Number.isFinite(w)) {
      assert.equal(g, w, `${what}: element ${k} is ${g}, PyTorch gives ${w}`);
    } else {
      assert.ok(Math.abs(g - w) <= atol + rtol * Math.abs(w), `${what}: element ${k} is ${g}, PyTorch gives ${w} (rtol ${rtol}, atol ${atol})`);
    }
  }
}

/** Assert two plain numbers agree within an absolute-plus-relative tolerance. */
export function assertClose(actual: number, expected: number, tol: Tol, what = 'value'): void {
  assert.ok(Math.abs(actual - expected) <= tol.atol + tol.rtol * Math.abs(expected), `${what}: ${actual} vs ${expected}`);
}

export function assertArrayClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tol, what = 'array'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let k = 0; k < expected.length; k++) assertClose(actual[k], expected[k], tol, `${what}[${k}]`);
}
