/**
 * Finite-difference gradient checks in float64. The scalar checked is L = sum(f(x...) * w) for a
 * fixed, irregular weight w, so that every output element counts with a different factor; the
 * analytic dL/dx (autograd) must match central differences (L(x + eps) - L(x - eps)) / 2 eps.
 */
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { Tensor, grad, noGrad, tensor, tidy } from '../../src/tensor/index.js';

export interface GradcheckOptions {
  eps?: number;
  rtol?: number;
  atol?: number;
  /** Which inputs to check (default: every floating input). */
  check?: boolean[];
}

/** Irregular fixed weights in (-1, 1). */
export function weightsFor(n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, k) => Math.sin(1.3 * k + 0.7) * 0.9 + 0.05);
}

/** A float64 tensor of normal values from a seeded JS generator (independent of libtorch's RNG). */
export function randn64(rng: Rng, shape: number[], scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float64Array.from({ length: n }, () => rng.normal() * scale), { shape });
}

/** Distinct float64 values (a shuffled grid with spacing `step`), for max, sort and pooling. */
export function distinct64(rng: Rng, shape: number[], step = 0.1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const p = rng.permutation(n);
  return tensor(Float64Array.from(p, (v) => (v - n / 2) * step + 0.013), { shape });
}

function lossValue(y: Tensor, w: Float64Array): number {
  const v = y.dataSync();
  let s = 0;
  for (let k = 0; k < v.length; k++) s += v[k] * w[k];
  return s;
}

/** Check autograd against central differences for every checked input; returns the largest error seen. */
export function gradcheck(name: string, fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], o: GradcheckOptions = {}): number {
  const eps = o.eps ?? 1e-6, rtol = o.rtol ?? 1e-5, atol = o.atol ?? 1e-6;
  return tidy(() => {
    const check = inputs.map((x, k) => o.check?.[k] ?? x.dtype === 'float64');
    for (const [k, x] of inputs.entries()) {
      if (check[k]) assert.equal(x.dtype, 'float64', `${name}: input ${k} must be float64 for a gradient check`);
    }
    const leaves = inputs.map((x, k) => (check[k] ? x.detach().requiresGrad_(true) : x));
    const y = fn(...leaves);
    assert.equal(y.dtype, 'float64', `${name}: output dtype`);
    const w = weightsFor(y.numel);
    const wt = tensor(w, { shape: y.shape });
    const checked = leaves.filter((_, k) => check[k]);
    const analytic = grad(y.mul(wt).sum(), checked, { allowUnused: true });
    let worst = 0;
    let ci = 0;
    for (const [k, x] of inputs.entries()) {
      if (!check[k]) continue;
      const g = analytic[ci++];
      const ga = g === null ? new Float64Array(x.numel) : (g.toTypedArray() as Float64Array);
      assert.deepEqual(g?.shape ?? x.shape, x.shape, `${name}: gradient shape of input ${k}`);
      const base = x.toTypedArray() as Float64Array;
      const shape = x.shape;
      let anyNonzero = false;
      for (let e = 0; e < base.length; e++) {
        const at = (delta: number): number => tidy(() => noGrad(() => {
          const xs = Float64Array.from(base);
          xs[e] += delta;
          const args = inputs.map((v, j) => (j === k ? tensor(xs, { shape }) : v));
          return lossValue(fn(...args), w);
        }));
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        const err = Math.abs(ga[e] - numeric);
        worst = Math.max(worst, err / (atol + rtol * Math.abs(numeric)));
        if (ga[e] !== 0) anyNonzero = true;
        assert.ok(err <= atol + rtol * Math.abs(numeric),
          `${name}: d/d(input ${k})[${e}]: autograd ${ga[e]}, finite differences ${numeric} (|diff| ${err.toExponential(2)})`);
      }
      assert.ok(anyNonzero, `${name}: the gradient of input ${k} is all zeros, the check proves nothing`);
    }
    return worst;
  });
}
