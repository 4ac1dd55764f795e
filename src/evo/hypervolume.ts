/**
 * Exact hypervolume of a set of points (objectives minimized) against a reference point:
 * the measure of the region dominated by the set and bounded by the reference.
 * 2-D by a sort and sweep, O(n log n); more dimensions by slicing on the last objective
 * (the dimension-reduction step of WFG, While, Bradstreet & Barone 2012), exact and fine
 * for the few hundred points of a front.
 */
import { ArgumentError } from '../core/errors.js';

/** Hypervolume dominated by `points` w.r.t. `ref`. Points that do not dominate `ref` strictly in every objective add nothing and are ignored. */
export function hypervolume(points: readonly (readonly number[])[], ref: readonly number[]): number {
  const d = ref.length;
  if (d === 0) throw new ArgumentError('hypervolume: empty reference point');
  for (let k = 0; k < d; k++) if (Number.isNaN(ref[k])) throw new ArgumentError(`hypervolume: ref[${k}] is NaN`);
  const kept: Float64Array[] = [];
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (p.length !== d) throw new ArgumentError(`hypervolume: point ${i} has ${p.length} objectives, ref has ${d}`);
    let inside = true;
    for (let k = 0; k < d && inside; k++) inside = p[k] < ref[k];
    if (inside) kept.push(Float64Array.from(p));
  }
  if (kept.length === 0) return 0;
  if (d === 1) return ref[0] - Math.min(...kept.map((p) => p[0]));
  return sliced(kept, d, Float64Array.from(ref));
}

/** The 2-D case alone, for callers that know they have two objectives. */
export function hypervolume2d(points: readonly (readonly number[])[], ref: readonly [number, number] | readonly number[]): number {
  if (ref.length !== 2) throw new ArgumentError(`hypervolume2d: ref must have 2 values, got ${ref.length}`);
  return hypervolume(points, ref);
}

/** Sweep on the first two coordinates: sort by f1, add the strip each new f2 record opens. */
function sweep2d(pts: Float64Array[], ref: Float64Array): number {
  const sorted = pts.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let hv = 0;
  let lastF2 = ref[1];
  for (const p of sorted) {
    if (p[1] < lastF2) {
      hv += (ref[0] - p[0]) * (lastF2 - p[1]);
      lastF2 = p[1];
    }
  }
  return hv;
}

/**
 * Volume in the first d coordinates. Points are taken worst-first in coordinate d-1; every
 * later point is at least as good there, so inside p's box the later points dominate exactly
 * where their projections dominate p's. Hence p's exclusive volume is
 * (ref[d-1] - p[d-1]) * (box of p in d-1 dims - volume of the later points limited to p),
 * and the exclusive volumes add up to the total.
 */
function sliced(pts: Float64Array[], d: number, ref: Float64Array): number {
  if (pts.length === 0) return 0;
  if (d === 2) return sweep2d(pts, ref);
  const last = d - 1;
  const order = pts.slice().sort((a, b) => b[last] - a[last]);
  let total = 0;
  for (let k = 0; k < order.length; k++) {
    const p = order[k];
    const height = ref[last] - p[last];
    if (height <= 0) continue;
    let box = 1;
    for (let j = 0; j < last; j++) box *= ref[j] - p[j];
    const limited: Float64Array[] = [];
    for (let i = k + 1; i < order.length; i++) {
      const q = order[i];
      const l = new Float64Array(last);
      for (let j = 0; j < last; j++) l[j] = q[j] > p[j] ? q[j] : p[j];
      limited.push(l);
    }
    const rest = last === 2 ? limited : nondominated(limited, last);
    total += height * (box - sliced(rest, last, ref));
  }
  return total;
}

/** Drops points weakly dominated by another kept point (one copy of duplicates stays). */
function nondominated(pts: Float64Array[], d: number): Float64Array[] {
  const out: Float64Array[] = [];
  outer: for (let i = 0; i < pts.length; i++) {
    const p = pts[i];
    for (let j = 0; j < pts.length; j++) {
      if (j === i) continue;
      const q = pts[j];
      let le = true, lt = false;
      for (let k = 0; k < d && le; k++) {
        if (q[k] > p[k]) le = false;
        else if (q[k] < p[k]) lt = true;
      }
      if (le && (lt || j < i)) continue outer;
    }
    out.push(p);
  }
  return out;
}
