/**
 * One pruning step: scores in, masks shrunk to a target sparsity, weights zeroed. Every method is
 * a sequence of these (once, once per epoch, every N steps, once per round).
 */
import { ArgumentError } from '../core/errors.js';
import { dispose } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { getCriterion, scoreWith, type ScoreContext } from './criteria.js';
import { selectGroups, type GroupReduce } from './group-select.js';
import { keepCount, selectGlobal, selectPerLayer, type Selection } from './select.js';
import type { PruneTarget, Scope } from './target.js';

export interface StepRecord {
  /** Requested sparsity of this step. */
  target: number;
  /** Prunable weights, and those kept after the step. */
  total: number;
  kept: number;
  /** Achieved sparsity, 1 - kept / total. */
  achieved: number;
  /** The lowest kept score (the global threshold under global scope). */
  threshold: number;
}

export interface StepOptions {
  sparsity: number;
  scope: Scope;
  /** Per-layer keep counts, overriding sparsity (LTH's per-layer rates). */
  keep?: ReadonlyMap<string, number>;
  /** Structured: how a channel group's scores combine (the criterion's `groupReduce`; default 'norm'). */
  groupReduce?: GroupReduce;
}

/**
 * Keep k = round((1 - s) * N) of the prunable weights by score, among those still active (so
 * masks only shrink; k is capped at the active count), globally or per layer, exactly (ties broken
 * by position), then zero the pruned weights. The caller keeps ownership of `scores`.
 */
export function pruneTo(target: PruneTarget, scores: ReadonlyMap<string, Tensor>, o: StepOptions): StepRecord {
  if (!(o.sparsity >= 0 && o.sparsity < 1)) throw new ArgumentError(`pruneTo: sparsity must be in [0, 1), got ${o.sparsity}`);
  for (const n of target.weights) if (!scores.has(n)) throw new ArgumentError(`pruneTo: no scores for prunable weight '${n}'`);
  const ordered = new Map(target.weights.map((n) => [n, scores.get(n)!]));
  const sizes = new Map(target.weights.map((n) => [n, target.param(n).numel]));
  const total = [...sizes.values()].reduce((a, b) => a + b, 0);
  const perLayer = o.keep ?? (o.scope === 'layer' ? new Map([...sizes].map(([n, s]) => [n, keepCount(s, o.sparsity)])) : null);
  const k = keepCount(total, o.sparsity);
  let sel: Selection;
  if (target.granularity === 'structured') {
    if (o.keep) throw new ArgumentError('pruneTo: per-layer keep counts apply to unstructured pruning only');
    sel = selectGroups(target, ordered, o.scope === 'layer' ? { sparsity: o.sparsity } : k, o.groupReduce);
  }
  else {
    const active = new Map(target.weights.map((n) => [n, target.mask(n)]));
    sel = perLayer ? selectPerLayer(ordered, perLayer, active) : selectGlobal(ordered, k, active);
  }
  for (const [n, m] of sel.masks) target.masks.intersect(n, m);
  dispose([...sel.masks.values()]);
  target.apply();
  const c = target.counts();
  return { target: o.sparsity, total: c.total, kept: c.kept, achieved: c.total ? 1 - c.kept / c.total : 0, threshold: sel.threshold };
}

/** Score with a registered criterion, then prune to the sparsity (one-shot). */
export function pruneWith(criterion: string, ctx: ScoreContext, o: StepOptions & { hparams?: Record<string, unknown> }): StepRecord {
  const scores = scoreWith(criterion, ctx, o.hparams ?? {});
  try {
    return pruneTo(ctx.target, scores, { groupReduce: getCriterion(criterion).groupReduce, ...o });
  } finally {
    dispose([...scores.values()]);
  }
}

/** Per-layer keep counts that remove `rate` of each layer's active weights (`outputRate` for the last layer). */
export function layerRateKeep(target: PruneTarget, rate: number, outputRate = rate): Map<string, number> {
  const c = target.counts();
  return new Map(c.layers.map((l, i) => {
    const r = i === c.layers.length - 1 ? outputRate : rate;
    return [l.name, l.kept - Math.round(r * l.kept)];
  }));
}
