/**
 * Sparse inference for pruned Linear layers. `Linear.forward` asks `autoSparseLinear` first: in eval
 * mode with gradients off, a float32 CPU weight sparse enough that the sparse kernel is faster at
 * this batch size (the measured rule below) runs through it; anything else runs the dense op.
 * The kernel (native/src/ops_sparse.cc) packs the weight once per change of its contents (libtorch's
 * version counter) in a per-thread cache that holds no JS tensors.
 */
import { call, type Handle } from '../../core/binding.js';
import { ArgumentError, ShapeError } from '../../core/errors.js';
import { recorder } from '../../tensor/record.js';
import { Tensor } from '../../tensor/tensor.js';

/**
 * The measured rule: the sparse kernel runs when the weight's density (nonzeros / elements) is at
 * most `maxDensity` for the batch regime. Measured with `node --import tsx bench/sparse-linear.ts
 * --part threshold` (one thread, CPU time, dense and sparse alternating) for weights [10, 100],
 * [100, 300], [300, 784] and [1024, 1024] at densities 2, 5, 10, 20, 30, 40 and 50%, batches 1, 8 and
 * 128: each threshold is the highest density at which the kernel was faster for every shape (and
 * at every lower density), so the rule never picks sparse where a measured point was slower. Batch
 * 1 and batch 128 are bounded by the smallest weight, whose cost is mostly the call itself (1.08x
 * and 1.21x at 10%, 0.93x and 0.92x at 20%); at batch 8 every shape was faster up to 30% (1.06x at
 * [300, 784]), and the rule keeps one step below that. docs/benchmarks.md ("Sparse inference") has
 * the table and the date.
 */
export const SPARSE_RULE: readonly { maxBatch: number; maxDensity: number; minElements: number }[] = [
  { maxBatch: 1, maxDensity: 0.1, minElements: 0 },
  { maxBatch: 31, maxDensity: 0.2, minElements: 0 },
  // A weight under 4,096 elements ([10, 100] here) is transposed in and out for little work: at
  // batch 128 it measured anywhere from 0.86x to 1.5x of dense between runs, so it stays dense.
  { maxBatch: Infinity, maxDensity: 0.1, minElements: 4096 },
];

/**
 * The density at or below which a weight of `elements` elements runs sparse at this batch size
 * (rows of the input); -1 when it never does.
 */
export function sparseMaxDensity(batch: number, elements = Infinity): number {
  for (const r of SPARSE_RULE) if (batch <= r.maxBatch) return elements >= r.minElements ? r.maxDensity : -1;
  return -1;
}

/** On unless the environment says TOPIARY_SPARSE=0 (to rule the sparse path out when chasing a difference). */
let enabled = process.env.TOPIARY_SPARSE !== '0';
/** Turn the automatic sparse path on or off (on by default); returns the previous setting. */
export function setSparseInference(on: boolean): boolean {
  const prev = enabled;
  enabled = on;
  return prev;
}
export function sparseInferenceEnabled(): boolean { return enabled; }
/** Run fn with the automatic sparse path off (e.g. while tracing a graph, so every linear is recorded). */
export function withDenseInference<T>(fn: () => T): T {
  const prev = setSparseInference(false);
  try {
    return fn();
  } finally {
    setSparseInference(prev);
  }
}

/**
 * Linear's automatic path: the sparse result, or null to run the dense op. The caller checks eval
 * mode; tracing (an active op recorder) and the switch give null here; the native side returns null with grad mode on, for other dtypes or devices, for shapes it
 * does not take, and when the weight is too dense for this batch size.
 */
export function autoSparseLinear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor | null {
  // While a graph is traced (src/graph/trace.ts installs a recorder) every linear must be recorded.
  if (!enabled || recorder !== null) return null;
  const xs = x.shape;
  const inF = xs[xs.length - 1];
  if (xs.length === 0 || inF === 0) return null;
  const batch = x.numel / inF;
  const h = call('sparseLinear', x.h, weight.h, bias ? bias.h : null, sparseMaxDensity(batch, weight.numel), 0, true) as Handle | null;
  return h === null ? null : new Tensor(h);
}

export type SparseLayout = 'auto' | 'csr' | 'csc' | 'eigen-csr';
const LAYOUTS: Record<SparseLayout, number> = { auto: 0, csr: 1, csc: 2, 'eigen-csr': 3 };

/**
 * y = x W^T + b through the sparse kernel, whatever the density (no autograd: inference only).
 * layout: 'auto' (CSC through Eigen at batch 1, CSR in tiles of 16 batch rows otherwise), or one
 * forced, for measurement: 'csr', 'csc', 'eigen-csr' (Eigen's CSR product on the same tiles).
 */
export function sparseLinear(x: Tensor, weight: Tensor, bias: Tensor | null = null, layout: SparseLayout = 'auto'): Tensor {
  const ws = weight.shape, xs = x.shape;
  if (ws.length !== 2) throw new ShapeError(`sparseLinear: weight must be 2-d [out, in], got [${ws}]`);
  if (xs.length === 0 || xs[xs.length - 1] !== ws[1]) throw new ShapeError(`sparseLinear: input's last dim (shape [${xs}]) does not match weight's in-features ${ws[1]} (shape [${ws}])`);
  const code = LAYOUTS[layout];
  if (code === undefined) throw new ArgumentError(`sparseLinear: unknown layout '${layout}' (${Object.keys(LAYOUTS).join(', ')})`);
  return new Tensor(call('sparseLinear', x.h, weight.h, bias ? bias.h : null, 1, code, false) as Handle);
}

/** Nonzeros / elements of a float32 2-d CPU weight (counted once per change of its contents). */
export function weightDensity(weight: Tensor): number {
  const n = weight.numel;
  return n === 0 ? 0 : (call('sparseNnz', weight.h) as number) / n;
}

/** This thread's packed weights: how many, and their bytes (they are not counted by memory()). */
export function sparseCacheInfo(): { entries: number; bytes: number } {
  return call('sparseCacheInfo') as { entries: number; bytes: number };
}
/** Drop this thread's packed weights (they are rebuilt on the next sparse forward). */
export function clearSparseCache(): void { call('sparseCacheClear'); }
