/**
 * Knee of a 2-D front: the trade-off where improving one objective starts to cost much
 * in the other. Defined here as in KnEA (Zhang, Tian & Jin 2015, distance to the extreme
 * hyperplane), in two dimensions: normalize each objective to [0, 1] over the front, draw the line between
 * the two extremes (best f1, best f2), and take the point farthest from it on the side of
 * the ideal point (0, 0).
 */
import { ArgumentError } from '../core/errors.js';

/**
 * Index of the knee in `front` (2-D points, minimized). On a front with no point strictly on
 * the ideal side of the extreme line (straight or concave), every distance is <= 0 and the
 * extreme with the best first objective is returned. Ties go to the lowest index.
 */
export function kneePoint(front: readonly (readonly number[])[]): number {
  const { dist, a } = measure(front);
  const best = argmax(dist);
  return dist[best] > 0 ? best : a;
}

/** Signed distance of each point to the extreme line in normalized space; positive toward the ideal point. */
export function kneeDistances(front: readonly (readonly number[])[]): Float64Array {
  return measure(front).dist;
}

function measure(front: readonly (readonly number[])[]): { dist: Float64Array; a: number } {
  const n = front.length;
  if (n === 0) throw new ArgumentError('kneePoint: empty front');
  let lo0 = Infinity, hi0 = -Infinity, lo1 = Infinity, hi1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const p = front[i];
    if (p.length !== 2) throw new ArgumentError(`kneePoint: point ${i} has ${p.length} objectives; the knee is defined for 2`);
    if (!Number.isFinite(p[0]) || !Number.isFinite(p[1])) throw new ArgumentError(`kneePoint: point ${i} is not finite`);
    lo0 = Math.min(lo0, p[0]); hi0 = Math.max(hi0, p[0]);
    lo1 = Math.min(lo1, p[1]); hi1 = Math.max(hi1, p[1]);
  }
  // A flat objective normalizes to 0 everywhere rather than dividing by zero.
  const s0 = hi0 > lo0 ? 1 / (hi0 - lo0) : 0, s1 = hi1 > lo1 ? 1 / (hi1 - lo1) : 0;
  const x = new Float64Array(n), y = new Float64Array(n);
  for (let i = 0; i < n; i++) { x[i] = (front[i][0] - lo0) * s0; y[i] = (front[i][1] - lo1) * s1; }
  let a = 0, b = 0; // a: best f1 (then f2), b: best f2 (then f1)
  for (let i = 1; i < n; i++) {
    if (x[i] < x[a] || (x[i] === x[a] && y[i] < y[a])) a = i;
    if (y[i] < y[b] || (y[i] === y[b] && x[i] < x[b])) b = i;
  }
  const dx = x[b] - x[a], dy = y[b] - y[a];
  const len = Math.hypot(dx, dy);
  const dist = new Float64Array(n);
  if (len === 0) return { dist, a };
  for (let i = 0; i < n; i++) {
    // The cross product is negative on the ideal side, for a = (0, 1) and b = (1, 0).
    dist[i] = -(dx * (y[i] - y[a]) - dy * (x[i] - x[a])) / len;
  }
  return { dist, a };
}

function argmax(v: Float64Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}
