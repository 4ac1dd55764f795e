/**
 * Pareto dominance, Deb's fast non-dominated sorting and crowding distance
 * (Deb, Pratap, Agarwal, Meyarivan 2002). All objectives are minimized.
 */
import { ArgumentError } from '../core/errors.js';

/** True when a is no worse than b everywhere and better somewhere. */
export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let better = false;
  for (let m = 0; m < a.length; m++) {
    if (a[m] > b[m]) return false;
    if (a[m] < b[m]) better = true;
  }
  return better;
}

export interface NonDominatedSorting {
  /** Fronts of indices into the input, best first; each front in ascending index order. */
  fronts: number[][];
  /** rank[i] = index of the front holding point i. */
  rank: Int32Array;
}

/**
 * Deb's O(M N^2) sort. Each pair is compared once, in both directions in the same pass,
 * over a flat copy of the objectives (one cache-friendly Float64Array instead of N arrays).
 * `maxPoints` stops after the fronts holding at least that many points, which is all that
 * NSGA-II's survival needs; ranks of the points left out are -1.
 */
export function nonDominatedSort(objectives: readonly (readonly number[])[], maxPoints = Infinity): NonDominatedSorting {
  const n = objectives.length;
  const rank = new Int32Array(n).fill(-1);
  if (n === 0) return { fronts: [], rank };
  const m = objectives[0].length;
  const f = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    const o = objectives[i];
    if (o.length !== m) throw new ArgumentError(`nonDominatedSort: point ${i} has ${o.length} objectives, point 0 has ${m}`);
    for (let k = 0; k < m; k++) f[i * m + k] = o[k];
  }

  const dominatedBy = new Int32Array(n); // how many points dominate i
  const dominating: number[][] = Array.from({ length: n }, () => []); // points that i dominates
  for (let i = 0; i < n; i++) {
    const oi = i * m;
    for (let j = i + 1; j < n; j++) {
      const oj = j * m;
      let iBetter = false, jBetter = false;
      for (let k = 0; k < m; k++) {
        const a = f[oi + k], b = f[oj + k];
        if (a < b) iBetter = true;
        else if (b < a) jBetter = true;
        if (iBetter && jBetter) break;
      }
      if (iBetter && !jBetter) { dominating[i].push(j); dominatedBy[j]++; }
      else if (jBetter && !iBetter) { dominating[j].push(i); dominatedBy[i]++; }
    }
  }

  const fronts: number[][] = [];
  let current: number[] = [];
  for (let i = 0; i < n; i++) if (dominatedBy[i] === 0) current.push(i);
  let placed = 0;
  while (current.length > 0) {
    const r = fronts.length;
    for (const i of current) rank[i] = r;
    fronts.push(current);
    placed += current.length;
    if (placed >= maxPoints) break;
    const next: number[] = [];
    for (const i of current) {
      for (const j of dominating[i]) if (--dominatedBy[j] === 0) next.push(j);
    }
    next.sort((a, b) => a - b);
    current = next;
  }
  return { fronts, rank };
}

/**
 * Crowding distance of each point of `front` (indices into `objectives`), aligned with `front`.
 * Per objective: the two extremes get Infinity, an inner point adds the gap between its
 * neighbours divided by the objective's range on the front; an objective with zero range
 * adds nothing. Ties in an objective keep index order, so the result is deterministic. Copies of
 * a point (equal objective vectors) count once: the first in `front` order is measured, the rest get 0.
 */
export function crowdingDistance(objectives: readonly (readonly number[])[], front: readonly number[]): Float64Array {
  // Copies of one objective vector (common when several genomes decode to the same network) share
  // it: the first copy is measured among the distinct points, the others get 0, so a survival cut
  // drops copies first instead of two infinite-distance copies of an extreme crowding out a new point.
  const firstOf = new Map<string, number>();
  const unique: number[] = [];
  const dist = new Float64Array(front.length);
  front.forEach((i, a) => {
    const key = objectives[i].join(',');
    if (!firstOf.has(key)) { firstOf.set(key, a); unique.push(a); }
  });
  const d = distinctCrowding(objectives, unique.map((a) => front[a]));
  unique.forEach((a, u) => { dist[a] = d[u]; });
  return dist;
}

function distinctCrowding(objectives: readonly (readonly number[])[], front: readonly number[]): Float64Array {
  const n = front.length;
  const dist = new Float64Array(n);
  if (n === 0) return dist;
  if (n <= 2) return dist.fill(Infinity);
  const m = objectives[front[0]].length;
  const order = new Int32Array(n);
  const vals = new Float64Array(n);
  for (let k = 0; k < m; k++) {
    for (let a = 0; a < n; a++) { order[a] = a; vals[a] = objectives[front[a]][k]; }
    order.sort((a, b) => vals[a] - vals[b] || a - b);
    const lo = vals[order[0]], hi = vals[order[n - 1]];
    dist[order[0]] = Infinity;
    dist[order[n - 1]] = Infinity;
    const range = hi - lo;
    if (!(range > 0) || !Number.isFinite(range)) continue;
    for (let a = 1; a < n - 1; a++) {
      dist[order[a]] += (vals[order[a + 1]] - vals[order[a - 1]]) / range;
    }
  }
  return dist;
}
