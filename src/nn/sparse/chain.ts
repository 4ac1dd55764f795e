/**
 * Fused sparse inference for chains of Linear (+ ReLU) layers, and a sparse Conv2d path.
 *
 * A chain (LeNet-300-100's Linear, ReLU, Linear, ReLU, Linear) runs in one native call
 * (native/src/ops_sparse.cc, sparseChain): bias and ReLU are applied where each result is made, the
 * activations between layers stay in a per-thread scratch buffer, and at batch > 1 they stay in the
 * transposed tiles the next sparse product reads. A layer too dense for the sparse kernel runs
 * inside the chain only when it is small (under SPARSE_RULE's minElements, where the call and not the
 * product is the cost). Otherwise (no layer sparse enough, or a larger layer that is not) the same call
 * runs the layers one by one, each as Linear's automatic path would (libtorch's linear and relu, or the
 * per-layer sparse kernel): no layer runs sparse where the rule says the dense op is faster, and a
 * dense model pays one native call for the stack instead of one per op.
 */
import { call, type Handle } from '../../core/binding.js';
import { ShapeError } from '../../core/errors.js';
import { recorder } from '../../tensor/record.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Module } from '../module.js';
import { Flatten, Linear, ReLU } from '../layers.js';
import { SPARSE_RULE, sparseInferenceEnabled, sparseMaxDensity } from './linear.js';

export interface ChainLayer { weight: Tensor; bias: Tensor | null; relu: boolean }

/** Elements up to which a layer too dense for the sparse kernel still runs inside a chain. */
export const CHAIN_MAX_DENSE_ELEMENTS = Math.min(...SPARSE_RULE.map((r) => r.minElements));

/**
 * The automatic path (`flattenFrom`: a Flatten(flattenFrom) before the chain, done in the same
 * call): the stack's output (fused, or layer by layer in the same call: see above), or null when
 * tracing, when the sparse path is switched off, and for inputs the kernel does not take (grad mode
 * on, another dtype or device, shapes that do not chain).
 */
export function autoSparseChain(x: Tensor, layers: ChainLayer[], o: { flattenFrom?: number } = {}): Tensor | null {
  if (!sparseInferenceEnabled() || recorder !== null || layers.length === 0) return null;
  return runChain(x, layers.map((l) => l.weight), layers.map((l) => l.bias), layers.map((l) => (l.relu ? 1 : 0)), o.flattenFrom);
}

function runChain(x: Tensor, ws: Tensor[], bs: (Tensor | null)[], relu: number[], flattenFrom: number | undefined): Tensor | null {
  const xs = x.shape;
  const from = flattenFrom ?? xs.length - 1;
  if (xs.length === 0 || from < 0 || from >= xs.length) return null;
  let batch = 1;
  for (let i = 0; i < from; i++) batch *= xs[i];
  const h = call('sparseChain', x.h, ws.map((w) => w.h), bs.map((b) => (b ? b.h : null)), relu,
    ws.map((w) => sparseMaxDensity(batch, w.numel)), CHAIN_MAX_DENSE_ELEMENTS, true, flattenFrom ?? null) as Handle | null;
  return h === null ? null : new Tensor(h);
}

/**
 * The chain through the fused kernel whatever the densities (no autograd: inference only).
 * `sparse[l]` false runs layer l as a dense loop inside the chain (default: every layer sparse).
 */
export function sparseChain(x: Tensor, layers: ChainLayer[], o: { sparse?: boolean[] } = {}): Tensor {
  if (layers.length === 0) throw new ShapeError('sparseChain: no layers');
  const h = call('sparseChain', x.h, layers.map((l) => l.weight.h), layers.map((l) => (l.bias ? l.bias.h : null)),
    layers.map((l) => (l.relu ? 1 : 0)), layers.map((_, i) => (o.sparse && o.sparse[i] === false ? -1 : 1)), Infinity, false) as Handle | null;
  if (h === null) throw new ShapeError('sparseChain: no layer runs sparse (give at least one)');
  return new Tensor(h);
}

const hooked = (m: Module) => (m as unknown as { _hooks: unknown[] })._hooks.length > 0;
const isLinear = (m: Module | undefined): m is Linear => m !== undefined && !m.training && m.constructor === Linear && !hooked(m);
const isRelu = (m: Module | undefined) => m !== undefined && m.constructor === ReLU && !hooked(m);
/** A plain Flatten(startDim >= 1) up to the last dim, which the chain can do in the same call. */
const flattenFrom = (m: Module | undefined): number | undefined =>
  m !== undefined && m.constructor === Flatten && !hooked(m) && (m as Flatten).endDim === -1 && (m as Flatten).startDim >= 1 ? (m as Flatten).startDim : undefined;

/**
 * Sequential's inference path: runs `mods` on x with each run of at least two plain Linear layers
 * (each optionally followed by a ReLU; no forward hooks, which the fused call would skip), and a
 * plain Flatten just before it, through `autoSparseChain`, falling back to the layers' own calls where the chain declines. Null, having
 * run nothing, when `mods` holds no such run.
 */
export function sequentialInference(mods: Module[], x: Tensor): Tensor | null {
  if (!sparseInferenceEnabled() || recorder !== null) return null;
  const runs: [number, number][] = [];
  for (let i = 0; i < mods.length; i++) {
    if (!isLinear(mods[i])) continue;
    let j = i, linears = 0;
    while (isLinear(mods[j])) { j++; linears++; if (isRelu(mods[j])) j++; }
    if (linears >= 2) runs.push([i, j]);
    i = j - 1;
  }
  if (runs.length === 0) return null;
  let y = x, i = 0;
  for (const [a, b] of runs) {
    const from = a > i ? flattenFrom(mods[a - 1]) : undefined;
    for (; i < (from === undefined ? a : a - 1); i++) y = mods[i].call(y);
    const ws: Tensor[] = [], bs: (Tensor | null)[] = [], relu: number[] = [];
    for (let k = a; k < b; k++) {
      const m = mods[k];
      if (m instanceof Linear) { ws.push(m.weight); bs.push(m.bias); relu.push(0); } else relu[relu.length - 1] = 1;
    }
    const z = runChain(y, ws, bs, relu, from);
    if (z) { y = z; i = b; }
  }
  for (; i < mods.length; i++) y = mods[i].call(y);
  return y;
}
