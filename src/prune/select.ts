/**
 * Exact keep-selection: given importance scores (higher = keep), choose exactly k entries to keep,
 * globally or per layer, among the still-active ones, so that masks only shrink.
 *
 * Ties at the threshold are broken by position (the lower flat index is kept first), so the count
 * is exact and the result does not depend on the sort algorithm. This avoids the usual
 * `score >= threshold` rule, which keeps every tied weight and so misses the requested sparsity.
 * The selection is linear-time: kthvalue finds the threshold, a cumulative sum ranks the ties.
 */
import { ArgumentError, ShapeError } from '../core/errors.js';
import { cat, tensor, zeros } from '../tensor/creation.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { PruneTarget, Scope } from './target.js';

export interface Selection {
  /** New bool masks by name (weights, and companions when structured); the caller owns them. */
  masks: Map<string, Tensor>;
  /** Entries kept, over the scored weights. */
  kept: number;
  /** The lowest kept score (the global threshold; per layer, the lowest of the layers'), or Infinity when nothing is kept. */
  threshold: number;
  /** Per-layer thresholds (layer scope and structured selections). */
  thresholds: Record<string, number>;
}

/** Keep count for a sparsity: round((1 - s) * total). */
export function keepCount(total: number, sparsity: number): number {
  if (!(sparsity >= 0 && sparsity <= 1)) throw new ArgumentError(`sparsity must be in [0, 1], got ${sparsity}`);
  return Math.round((1 - sparsity) * total);
}

function checkFinite(s: Tensor, name: string): void {
  const bad = tidy(() => s.isnan().any().item());
  if (bad) throw new ArgumentError(`scores for '${name}' contain NaN`);
}

/**
 * Keep the k highest scores of a flat float vector among the active entries (bool [N], or null for
 * all). Returns a bool [N] mask with exactly min(k, active) true entries and the k-th score.
 */
export function topKMask(flat: Tensor, k: number, active: Tensor | null): { mask: Tensor; threshold: number; kept: number } {
  if (flat.ndim !== 1) throw new ShapeError(`topKMask: scores must be flat, got [${flat.shape}]`);
  if (!(Number.isInteger(k) && k >= 0)) throw new ArgumentError(`topKMask: k must be a non-negative integer, got ${k}`);
  const n = flat.numel;
  return tidy(() => {
    const nActive = active ? active.countNonzero().item() : n;
    const kk = Math.min(k, nActive);
    if (kk === 0) return { mask: zeros([n], { dtype: 'bool', device: flat.device }), threshold: Infinity, kept: 0 };
    // Inactive entries score -inf: below every finite score, so never chosen while kk <= nActive.
    const s = active ? flat.maskedFill(active.logicalNot(), -Infinity) : flat;
    const thrT = s.kthvalue(n - kk + 1).values; // the kk-th largest
    const threshold = thrT.item();
    const above = s.gt(thrT);
    const need = kk - above.countNonzero().item();
    let tied = s.eq(thrT);
    if (active) tied = tied.logicalAnd(active);
    // Of the tied entries keep the first `need` by position: their running count is <= need.
    const firstTied = tied.logicalAnd(tied.to('int64').cumsum(0).le(need));
    return { mask: above.logicalOr(firstTied), threshold, kept: kk };
  });
}

const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

function checkScores(scores: ReadonlyMap<string, Tensor>, active: ReadonlyMap<string, Tensor> | null): void {
  for (const [n, s] of scores) {
    checkFinite(s, n);
    const a = active?.get(n);
    if (active && !a) throw new ArgumentError(`no active mask for '${n}'`);
    if (a && !same(a.shape, s.shape)) throw new ShapeError(`scores for '${n}' have shape [${s.shape}], its mask [${a.shape}]`);
  }
}

/** One threshold across all layers: keep exactly `k` entries in total. */
export function selectGlobal(scores: ReadonlyMap<string, Tensor>, k: number, active: ReadonlyMap<string, Tensor> | null = null): Selection {
  checkScores(scores, active);
  const names = [...scores.keys()];
  return tidy(() => {
    const flat = cat(names.map((n) => scores.get(n)!.detach().flatten().to('float32')));
    const act = active ? cat(names.map((n) => active.get(n)!.flatten())) : null;
    const r = topKMask(flat, k, act);
    const masks = new Map<string, Tensor>();
    let off = 0;
    for (const n of names) {
      const s = scores.get(n)!;
      masks.set(n, r.mask.narrow(0, off, s.numel).reshape(s.shape).clone());
      off += s.numel;
    }
    const thresholds = Object.fromEntries(names.map((n) => [n, r.threshold]));
    return { masks, kept: r.kept, threshold: r.threshold, thresholds };
  });
}

/** Each layer on its own: keep exactly `keep.get(name)` entries of each. */
export function selectPerLayer(scores: ReadonlyMap<string, Tensor>, keep: ReadonlyMap<string, number>, active: ReadonlyMap<string, Tensor> | null = null): Selection {
  checkScores(scores, active);
  const masks = new Map<string, Tensor>();
  const thresholds: Record<string, number> = {};
  let kept = 0, threshold = Infinity;
  for (const [n, s] of scores) {
    const k = keep.get(n);
    if (k === undefined) throw new ArgumentError(`no keep count for '${n}'`);
    const r = tidy(() => {
      const t = topKMask(s.detach().flatten().to('float32'), k, active ? active.get(n)!.flatten() : null);
      return { mask: t.mask.reshape(s.shape).clone(), threshold: t.threshold, kept: t.kept };
    });
    masks.set(n, r.mask);
    thresholds[n] = r.threshold;
    kept += r.kept;
    threshold = Math.min(threshold, r.threshold);
  }
  return { masks, kept, threshold, thresholds };
}

/**
 * Structured selection: whole output rows. A row's score is the mean score of its active entries
 * (so rows of different layers compare on one scale); rows are kept best first, and the number kept
 * is the one whose weight count comes closest to `k` (exact to within one row). Companions follow
 * their rows. `k` is a total (global scope) or a count per layer.
 */
export function selectRows(target: PruneTarget, scores: ReadonlyMap<string, Tensor>, k: number | ReadonlyMap<string, number>): Selection {
  checkScores(scores, null);
  const names = [...scores.keys()];
  const rows: Row[][] = [];
  tidy(() => {
    names.forEach((n, li) => {
      const s = scores.get(n)!.detach().to('float32');
      const act = target.mask(n).to('float32');
      const r = s.shape[0], size = s.numel / r;
      const actRows = act.reshape(r, size).sum(1); // [rows]
      const mean = s.mul(act).reshape(r, size).sum(1).div(actRows.clamp(1)); // [rows]
      const vals = mean.maskedFill(actRows.eq(0), -Infinity).dataSync();
      rows.push(vals.map((v, i) => ({ layer: li, row: i, score: v, size })));
    });
  });
  const chosen = rows.map((r) => new Uint8Array(r.length));
  let kept = 0;
  if (typeof k === 'number') kept = pickRows(rows.flat(), k, chosen);
  else names.forEach((n, li) => { kept += pickRows(rows[li], k.get(n) ?? 0, chosen); });
  const masks = new Map<string, Tensor>();
  const thresholds: Record<string, number> = {};
  let threshold = Infinity;
  names.forEach((n, li) => {
    let lo = Infinity;
    rows[li].forEach((r, i) => { if (chosen[li][i]) lo = Math.min(lo, r.score); });
    thresholds[n] = lo;
    threshold = Math.min(threshold, lo);
    const w = target.param(n);
    const made = tidy(() => {
      const rowMask = tensor(chosen[li], { shape: [w.shape[0]], dtype: 'bool', device: w.device }); // [rows]
      const full = rowMask.reshape([w.shape[0], ...w.shape.slice(1).map(() => 1)]).expand(w.shape).logicalAnd(target.mask(n));
      return { full, comps: (target.companions.get(n) ?? []).map((c) => [c, rowMask.clone()] as [string, Tensor]) };
    });
    masks.set(n, made.full);
    for (const [c, m] of made.comps) masks.set(c, m);
  });
  return { masks, kept, threshold, thresholds };
}

interface Row { layer: number; row: number; score: number; size: number }

/** Mark the best rows whose total size comes closest to `target`; returns the kept weight count. */
function pickRows(cands: Row[], target: number, chosen: Uint8Array[]): number {
  // Array.prototype.sort is stable: equal scores keep layer-then-row order.
  const live = cands.filter((c) => c.score !== -Infinity).sort((a, b) => b.score - a.score);
  let best = 0, bestErr = target, cum = 0;
  live.forEach((c, i) => {
    cum += c.size;
    const err = Math.abs(cum - target);
    if (err < bestErr) { bestErr = err; best = i + 1; }
  });
  let kept = 0;
  for (const c of live.slice(0, best)) { chosen[c.layer][c.row] = 1; kept += c.size; }
  return kept;
}
