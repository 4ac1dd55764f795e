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
 * The measured rule: the sparse kernel runs when the weight has at least `minElements` elements and
 * its density (nonzeros / elements) is at most `maxDensity` for the batch regime. Measured with
 * `node --import tsx bench/sparse-linear.ts --part threshold` (one thread, CPU time, dense and sparse
 * alternating) for weights [10, 100], [100, 300], [300, 784] and [1024, 1024] at densities 2, 5, 10,
 * 20, 30, 40 and 50%, batches 1, 8 (standing for 2 to 31) and 128 (32 and more). Every weight of at
 * least 30,000 elements was faster up to 40% at every batch size (1.11x to 2.66x at 40%), the first
 * slower points were at 50%; the rule keeps one grid step below (30%), and one more at batch 128,
 * where an earlier run of the kernel measured 1.01x at 30% for [1024, 1024]. The [10, 100] weight
 * costs about as much either way (0.86x to 1.5x between runs: the call, not the product), so weights
 * under 4,096 elements stay dense. docs/benchmarks.md ("Sparse inference") has the table and the date.
 */
export const SPARSE_RULE: readonly { maxBatch: number; maxDensity: number; minElements: number }[] = [
  { maxBatch: 1, maxDensity: 0.3, minElements: 4096 },
  { maxBatch: 31, maxDensity: 0.3, minElements: 4096 },
  { maxBatch: Infinity, maxDensity: 0.2, minElements: 4096 },
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
