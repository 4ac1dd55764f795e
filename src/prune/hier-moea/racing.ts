/**
 * Racing (`racing: true`, issue 14 section 2): a candidate's evaluation stops as soon as it cannot
 * enter the phase's front. The rule is a bound, not a statistic: after some validation batches a
 * candidate has made `wrong` errors, so its error on the whole subset is at least wrong / n. If an
 * archived point keeps no more weights and has fewer errors than that (err_a * n < wrong), the
 * candidate is strictly dominated whatever the remaining images give, and the archive (every
 * non-dominated point evaluated) would drop it anyway. So the archive, hence the front, is exactly
 * the full evaluation's (test/hier-moea/racing.test.ts checks it on a recorded generation); only the
 * objectives NSGA-II sees for the stopped, dominated candidates differ: their lower bound wrong / n.
 *
 * The validation subset is put hardest first (ascending margin of the dense network: true-class
 * logit minus the best other), so a pruned candidate's errors come early and the bound bites after
 * a few batches. Every image is still scored once by a candidate that runs to the end: the same
 * count of errors as in any order.
 */
import { noGrad } from '../../tensor/autograd.js';
import { cat, tensor } from '../../tensor/creation.js';
import { keep, tidy } from '../../tensor/scope.js';
import type { Module } from '../../nn/module.js';
import type { EvalBatch } from './evaluator.js';

/**
 * Most errors a candidate keeping `kept` may make and still enter the front: the fewest errors of an
 * archived point keeping at most as much (undefined: no such point, no bound).
 */
export function maxWrong(front: readonly (readonly number[])[], kept: number, n: number): number | undefined {
  let best: number | undefined;
  for (const [err, k] of front) if (k <= kept) { const w = Math.round(err * n); if (best === undefined || w < best) best = w; }
  return best;
}

/**
 * The same images and labels in batches of `batchSize`, hardest first for `model` (eval mode, as it
 * stands: the dense network). Frees the batches given; the caller owns the new ones.
 */
export function hardestFirst(model: Module, val: EvalBatch[], batchSize: number): EvalBatch[] {
  const was = model.training;
  model.eval();
  try {
    return tidy(() => noGrad(() => {
      const x = cat(val.map((b) => b.x)), y = cat(val.map((b) => b.y));
      const margins: number[] = [];
      for (const b of val) {
        const logits = model.call(b.x); // [B, classes]
        const own = logits.gather(1, b.y.reshape(-1, 1)).reshape(-1);
        const other = logits.scatter(1, b.y.reshape(-1, 1), -Infinity).maxDim(1).values;
        margins.push(...own.sub(other).dataSync());
      }
      const order = margins.map((m, i) => [m, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i);
      const idx = tensor(BigInt64Array.from(order, (i) => BigInt(i)), { shape: [order.length], device: x.device });
      const xs = x.indexSelect(0, idx), ys = y.indexSelect(0, idx);
      const out: EvalBatch[] = [];
      for (let s = 0; s < order.length; s += batchSize) {
        const e = Math.min(order.length, s + batchSize);
        out.push({ x: keep(xs.slice(0, s, e, 1).contiguous()), y: keep(ys.slice(0, s, e, 1).contiguous()) });
      }
      for (const b of val) { b.x.dispose(); b.y.dispose(); }
      return out;
    }));
  } finally {
    model.train(was);
  }
}
