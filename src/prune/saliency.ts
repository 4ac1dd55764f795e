/**
 * Data-driven scores at initialization: SNIP's connection sensitivity and GraSP's gradient-flow
 * score, both computed as their authors' code does, and the batches they are computed on.
 *
 * Scoring runs forward passes in training mode (as the authors' code does), which would move
 * BatchNorm running statistics; the model's buffers are restored afterwards, so scoring leaves the
 * network exactly as it found it.
 */
import { ArgumentError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import type { DataLoader } from '../data/loader.js';
import type { Module } from '../nn/module.js';
import { grad, noGrad } from '../tensor/autograd.js';
import { crossEntropy } from '../tensor/nn-ops.js';
import { dispose, keep, tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { BatchLike } from '../train/evaluate.js';

/** Run fn, then put every buffer (BatchNorm running statistics) back as it was. */
export function withBuffersRestored<T>(model: Module, fn: () => T): T {
  const saved = model.namedBuffers().map(([n, b]) => [n, keep(b.clone())] as const);
  try {
    return fn();
  } finally {
    noGrad(() => { for (const [n, b] of saved) model.namedBuffers().find(([m]) => m === n)![1].copy_(b); });
    dispose(saved.map(([, b]) => b));
  }
}

function paramsOf(model: Module, names: string[]): Tensor[] {
  const all = new Map(model.namedParameters());
  return names.map((n) => {
    const p = all.get(n);
    if (!p) throw new ArgumentError(`no parameter named '${n}'`);
    return p;
  });
}

/**
 * SNIP (Lee et al. 2019): s = |dL/dw * w| / sum over all prunable weights, on one batch, the
 * network in training mode. The derivative with respect to a multiplicative mask c at c = 1 is
 * exactly g * w, which is why no mask variables are needed.
 */
export function snipScores(model: Module, names: string[], batch: BatchLike): Map<string, Tensor> {
  const ps = paramsOf(model, names);
  const was = model.training;
  model.train();
  try {
    return withBuffersRestored(model, () => tidy(() => {
      const loss = crossEntropy(model.call(batch.x), batch.y);
      const gs = grad(loss, ps);
      const raw = gs.map((g, i) => g!.mul(ps[i]).abs().detach());
      const total = raw.reduce<Tensor | null>((s, r) => (s ? s.add(r.sum()) : r.sum()), null)!;
      return new Map(names.map((n, i) => [n, raw[i].div(total)]));
    }));
  } finally {
    model.train(was);
  }
}

/**
 * GraSP (Wang et al. 2020), as in the authors' code (pruner/GraSP.py): the batch is split in two
 * halves; g = sum over halves of dL/dw with logits divided by the temperature T (200); then for each
 * half Hg += d(g . dL/dw)/dw by double backpropagation, g held constant. Score = -w * Hg, the
 * first-order change of the gradient norm when w is removed, negated: the weights with the highest
 * scores are removed, since losing them reduces gradient flow the least.
 */
export function graspScores(model: Module, names: string[], batch: BatchLike, temperature = 200): Map<string, Tensor> {
  if (!(temperature > 0)) throw new ArgumentError(`grasp: temperature must be positive, got ${temperature}`);
  const ps = paramsOf(model, names);
  const n = batch.x.shape[0];
  if (n < 2) throw new ArgumentError(`grasp: the batch needs at least 2 examples to split in halves, got ${n}`);
  const h = Math.floor(n / 2);
  const halves: [number, number][] = [[0, h], [h, n - h]];
  const lossOf = ([s, len]: [number, number]) => crossEntropy(model.call(batch.x.narrow(0, s, len)).div(temperature), batch.y.narrow(0, s, len));
  const was = model.training;
  model.train();
  try {
    return withBuffersRestored(model, () => tidy(() => {
      let g: Tensor[] | null = null;
      for (const half of halves) {
        const gh = tidy(() => grad(lossOf(half), ps).map((t) => t!.detach()));
        g = g ? g.map((t, i) => t.add(gh[i])) : gh;
      }
      let hg: Tensor[] | null = null;
      for (const half of halves) {
        const hh = tidy(() => {
          const gf = grad(lossOf(half), ps, { createGraph: true });
          const z = gf.reduce<Tensor | null>((s, t, i) => { const d = t!.mul(g![i]).sum(); return s ? s.add(d) : d; }, null)!;
          return grad(z, ps).map((t) => t!.detach());
        });
        hg = hg ? hg.map((t, i) => t.add(hh[i])) : hh;
      }
      return new Map(names.map((nm, i) => [nm, ps[i].detach().mul(hg![i]).neg()]));
    }));
  } finally {
    model.train(was);
  }
}

/**
 * Indices of `n` training examples for scoring: a seeded random draw, or class-balanced (n / classes
 * of each class, the first ones met in a seeded shuffle, grouped by class as GraSP's fetch does).
 */
export function scoringIndices(loader: DataLoader, n: number, opts: { seed: number; classBalanced?: boolean; numClasses?: number }): Int32Array {
  const pool = loader.indices;
  if (!(Number.isInteger(n) && n > 0)) throw new ArgumentError(`scoring batch size must be a positive integer, got ${n}`);
  const perm = new Rng(opts.seed).permutation(pool.length);
  if (!opts.classBalanced) {
    if (n > pool.length) throw new ArgumentError(`scoring batch of ${n} examples from a training split of ${pool.length}`);
    return Int32Array.from(perm.subarray(0, n), (p) => pool[p]);
  }
  const classes = opts.numClasses ?? loader.dataset.numClasses;
  const per = Math.floor(n / classes);
  if (per < 1) throw new ArgumentError(`class-balanced scoring batch of ${n} for ${classes} classes: need at least one per class`);
  const labels = loader.dataset.labels.dataSync();
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (const p of perm) {
    const i = pool[p];
    const c = labels[i];
    if (byClass[c].length < per) byClass[c].push(i);
  }
  const short = byClass.findIndex((b) => b.length < per);
  if (short >= 0) throw new ArgumentError(`class ${short} has only ${byClass[short].length} training examples, ${per} needed for a class-balanced batch`);
  return Int32Array.from(byClass.flat());
}

/** The scoring batch itself (normalized, not augmented). The caller disposes it. */
export function scoringBatch(loader: DataLoader, n: number, opts: { seed: number; classBalanced?: boolean; numClasses?: number }): BatchLike {
  const b = loader.batch(scoringIndices(loader, n, opts));
  return { x: b.x, y: b.y };
}
