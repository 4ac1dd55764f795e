/**
 * Structured selection over channel dependency groups (src/graph/depgroups.ts): coupled channels
 * (a filter, its BatchNorm entries, and every filter tied to it through residual additions) are
 * kept or removed together. A group's importance reduces its producer rows' scores:
 * - 'norm': the mean over the group's active weights of |s| (L1) or the root mean square (L2), so
 *   groups of different sizes compare on one scale (magnitude: mean |w|);
 * - 'sum': the total (SNIP and GraSP saliencies: the first-order effect of removing the group);
 * - 'first': the score of the group's first weight (random: one uniform draw per group).
 * Groups are kept best first until their weight count comes closest to the keep target: globally,
 * or per family (the groups made by the same producer layers: per-layer scope). Each family keeps
 * at least its best group, so that no layer loses every channel.
 */
import { ArgumentError } from '../core/errors.js';
import { tensor } from '../tensor/creation.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Selection } from './select.js';
import type { PruneTarget } from './target.js';

export type GroupReduce = 'norm' | 'sum' | 'first';

interface AxisStats { sum: number[]; sq: number[]; cnt: number[]; first: number[]; size: number }
interface Cand { id: number; score: number; size: number; live: number; family: string }

/** Per index along `axis` of a weight: sums of |s| (or s), s^2, active counts, the first score, and the slice size. */
function axisStats(s0: Tensor, act0: Tensor, axis: number, reduce: GroupReduce): AxisStats {
  return tidy(() => {
    const n = s0.shape[axis];
    const along = (t: Tensor) => (axis === 0 ? t : t.transpose(0, axis)).reshape(n, -1);
    const s = along(s0.detach().to('float32'));
    const act = along(act0.to('float32'));
    const sa = s.mul(act);
    return {
      sum: (reduce === 'norm' ? sa.abs() : sa).sum(1).dataSync(), sq: sa.square().sum(1).dataSync(),
      cnt: act.sum(1).dataSync(), first: s.select(1, 0).dataSync(), size: s.shape[1],
    };
  });
}

/** Keep groups by score: `keep` a weight count overall, or `sparsity` reached in each family. */
export function selectGroups(target: PruneTarget, scores: ReadonlyMap<string, Tensor>, keep: number | { sparsity: number }, reduce: GroupReduce = 'norm'): Selection {
  for (const n of target.weights) {
    const s0 = scores.get(n);
    if (!s0) throw new ArgumentError(`no scores for prunable weight '${n}'`);
    if (tidy(() => s0.isnan().any().item())) throw new ArgumentError(`scores for '${n}' contain NaN`);
  }
  // Rows are producer refs along axis 0 (a filter, a neuron) or, for heads and transformer neurons, also along axis 1 (heads.ts).
  const stats = new Map<string, AxisStats>();
  const statsOf = (param: string, axis: number): AxisStats => {
    const key = `${param}#${axis}`;
    let st = stats.get(key);
    if (!st) {
      const s0 = scores.get(param);
      if (!s0) throw new ArgumentError(`no scores for prunable weight '${param}'`);
      stats.set(key, (st = axisStats(s0, target.mask(param), axis, reduce)));
    }
    return st;
  };
  const l2 = target.groupNorm === 'l2';
  const cands: Cand[] = target.groups.map((g) => {
    let sum = 0, sq = 0, cnt = 0, size = 0;
    for (const r of g.rows) {
      const st = statsOf(r.param, r.axis);
      for (let i = r.start; i < r.start + r.length; i++) { sum += st.sum[i]; sq += st.sq[i]; cnt += st.cnt[i]; size += st.size; }
    }
    const first = statsOf(g.rows[0].param, g.rows[0].axis).first[g.rows[0].start];
    const score = cnt === 0 ? -Infinity : reduce === 'sum' ? sum : reduce === 'first' ? first : l2 ? Math.sqrt(sq / cnt) : sum / cnt;
    return { id: g.id, score, size, live: cnt, family: g.family };
  });
  const kept = new Set<number>();
  let keptWeights = 0;
  if (typeof keep === 'number') keptWeights = pick(cands, keep, kept);
  else {
    const fams = new Map<string, Cand[]>();
    for (const c of cands) { const f = fams.get(c.family) ?? []; f.push(c); fams.set(c.family, f); }
    for (const f of fams.values()) keptWeights += pick(f, Math.round((1 - keep.sparsity) * f.reduce((a, c) => a + c.size, 0)), kept);
  }
  // Every family keeps its best group, so no layer loses all its channels (the model must still run).
  const fams = new Map<string, Cand[]>();
  for (const c of cands) if (c.score !== -Infinity) { const f = fams.get(c.family) ?? []; f.push(c); fams.set(c.family, f); }
  for (const f of fams.values()) {
    if (f.some((c) => kept.has(c.id))) continue;
    const best = f.reduce((a, c) => (c.score > a.score ? c : a));
    kept.add(best.id);
    keptWeights += best.live;
  }
  const threshold = Math.min(...cands.filter((c) => kept.has(c.id)).map((c) => c.score), Infinity);
  return { masks: groupMasks(target, kept), kept: keptWeights, threshold, thresholds: {} };
}

/** The best live groups (a prefix in score order) whose weight count comes closest to `target`. */
function pick(cands: Cand[], target: number, kept: Set<number>): number {
  // Array.prototype.sort is stable: equal scores keep graph order.
  const live = cands.filter((c) => c.score !== -Infinity).sort((a, b) => b.score - a.score);
  let best = 0, bestErr = target, cum = 0;
  live.forEach((c, i) => {
    cum += c.live;
    const err = Math.abs(cum - target);
    if (err < bestErr) { bestErr = err; best = i + 1; }
  });
  let n = 0;
  for (const c of live.slice(0, best)) { kept.add(c.id); n += c.live; }
  return n;
}

/**
 * Bool masks removing the groups not kept: producer rows (axis 0, and axis 1 for the column
 * producers of heads.ts), and their 1-d companions in the mask set.
 */
function groupMasks(target: PruneTarget, kept: Set<number>): Map<string, Tensor> {
  const gone = new Map<string, Map<number, Set<number>>>();
  const drop = (r: { param: string; axis: number; start: number; length: number }) => {
    let axes = gone.get(r.param);
    if (!axes) gone.set(r.param, (axes = new Map()));
    let s = axes.get(r.axis);
    if (!s) axes.set(r.axis, (s = new Set()));
    for (let i = r.start; i < r.start + r.length; i++) s.add(i);
  };
  for (const g of target.groups) {
    if (kept.has(g.id)) continue;
    for (const r of g.rows) if (target.masks.masks.has(r.param) && (r.axis === 0 || r.axis === 1)) drop(r);
    for (const r of g.entries) if (r.axis === 0 && target.masks.masks.has(r.param)) drop(r);
  }
  return tidy(() => {
    const masks = new Map<string, Tensor>();
    for (const n of target.masks.names) {
      const p = target.masks.params.get(n)!;
      let full = target.mask(n);
      for (const [axis, g] of gone.get(n) ?? []) {
        const len = p.shape[axis];
        const keepIdx = Uint8Array.from({ length: len }, (_, i) => (g.has(i) ? 0 : 1));
        const m = tensor(keepIdx, { shape: [len], dtype: 'bool', device: p.device }).reshape(p.shape.map((d, i) => (i === axis ? d : 1)));
        full = full.logicalAnd(m);
      }
      masks.set(n, full === target.mask(n) ? full.clone() : full);
    }
    return masks;
  });
}
