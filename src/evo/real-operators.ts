/**
 * Operators on real genomes: simulated binary crossover (SBX) and polynomial mutation,
 * both in the bounded form of Deb's NSGA-II C code, which pymoo also follows.
 * The defaults are the customary ones (Deb & Agrawal 1995; Deb & Goyal 1996).
 */
import { ArgumentError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { checkBounds } from './sampling.js';
import type { Bounds, Crossover, Mutation } from './types.js';

export interface SbxOptions {
  bounds: Bounds;
  /** Distribution index: larger keeps children closer to their parents. Default 15. */
  eta?: number;
  /** Probability that a mating crosses at all (else the children copy the parents). Default 0.9. */
  prob?: number;
  /** Probability that each variable is crossed. Default 0.5. */
  probVar?: number;
  /** Probability that a crossed variable's two children swap sides. Default 0.5. */
  probSwap?: number;
  /** Parents closer than this in a variable are copied, not crossed. Default 1e-14. */
  eps?: number;
}

/**
 * Bounded SBX. For y1 < y2 in [lo, hi], with u uniform, and for each side the spread
 * factor beta = 1 + 2 (y1 - lo)/(y2 - y1) (resp. 1 + 2 (hi - y2)/(y2 - y1)),
 * alpha = 2 - beta^-(eta+1), betaq = (u alpha)^(1/(eta+1)) if u <= 1/alpha,
 * else (1 / (2 - u alpha))^(1/(eta+1)); c1 = (y1+y2 - betaq1 (y2-y1))/2,
 * c2 = (y1+y2 + betaq2 (y2-y1))/2. The same u serves both children (Deb's code), so
 * far from the bounds c1 + c2 = y1 + y2.
 */
export function sbx(options: SbxOptions): Crossover<Float64Array> {
  const { bounds, eta = 15, prob = 0.9, probVar = 0.5, probSwap = 0.5, eps = 1e-14 } = options;
  checkBounds(bounds, 'sbx');
  checkNonNegative(eta, 'sbx', 'eta');
  checkProb(prob, 'sbx', 'prob');
  checkProb(probVar, 'sbx', 'probVar');
  checkProb(probSwap, 'sbx', 'probSwap');
  const { lower, upper } = bounds;
  const pow = 1 / (eta + 1);
  const betaq = (beta: number, u: number): number => {
    const alpha = 2 - Math.pow(beta, -(eta + 1));
    return u <= 1 / alpha ? Math.pow(u * alpha, pow) : Math.pow(1 / (2 - u * alpha), pow);
  };
  return {
    name: 'sbx',
    parents: 2,
    cross(parents: readonly Float64Array[], rng: Rng): Float64Array[] {
      checkParents(parents, 2, lower.length, 'sbx');
      const a = parents[0].slice(), b = parents[1].slice();
      if (rng.random() >= prob) return [a, b];
      for (let i = 0; i < a.length; i++) {
        if (rng.random() >= probVar) continue;
        const lo = lower[i], hi = upper[i];
        if (Math.abs(a[i] - b[i]) <= eps || lo === hi) continue;
        const y1 = Math.min(a[i], b[i]), y2 = Math.max(a[i], b[i]);
        const d = y2 - y1;
        const u = rng.random();
        let c1 = 0.5 * (y1 + y2 - betaq(1 + (2 * (y1 - lo)) / d, u) * d);
        let c2 = 0.5 * (y1 + y2 + betaq(1 + (2 * (hi - y2)) / d, u) * d);
        c1 = Math.min(Math.max(c1, lo), hi);
        c2 = Math.min(Math.max(c2, lo), hi);
        if (rng.random() < probSwap) { a[i] = c2; b[i] = c1; }
        else { a[i] = c1; b[i] = c2; }
      }
      return [a, b];
    },
  };
}

export interface PolynomialMutationOptions {
  bounds: Bounds;
  /** Distribution index: larger gives smaller steps. Default 20. */
  eta?: number;
  /** Probability that each variable mutates. Default 1/n. */
  probVar?: number;
  /** Probability that a genome is mutated at all. Default 1. */
  prob?: number;
}

/**
 * Bounded polynomial mutation. With d1 = (x - lo)/(hi - lo), d2 = (hi - x)/(hi - lo),
 * u uniform and p = 1/(eta+1): if u <= 0.5, dq = (2u + (1-2u)(1-d1)^(eta+1))^p - 1,
 * else dq = 1 - (2(1-u) + 2(u-0.5)(1-d2)^(eta+1))^p; x' = x + dq (hi - lo), clipped.
 * The bound terms shrink the step near a bound so that x' stays inside it.
 */
export function polynomialMutation(options: PolynomialMutationOptions): Mutation<Float64Array> {
  const { bounds, eta = 20, prob = 1 } = options;
  checkBounds(bounds, 'polynomialMutation');
  const { lower, upper } = bounds;
  const n = lower.length;
  const probVar = options.probVar ?? (n > 0 ? 1 / n : 0);
  checkNonNegative(eta, 'polynomialMutation', 'eta');
  checkProb(prob, 'polynomialMutation', 'prob');
  checkProb(probVar, 'polynomialMutation', 'probVar');
  const pow = 1 / (eta + 1);
  return {
    name: 'polynomial_mutation',
    mutate(x: Float64Array, rng: Rng): Float64Array {
      if (x.length !== n) throw new ArgumentError(`polynomialMutation: genome has ${x.length} variables, bounds have ${n}`);
      if (rng.random() >= prob) return x;
      for (let i = 0; i < n; i++) {
        if (rng.random() >= probVar) continue;
        const lo = lower[i], hi = upper[i];
        if (lo === hi) continue;
        const span = hi - lo;
        const u = rng.random();
        let dq: number;
        if (u <= 0.5) {
          const xy = 1 - (x[i] - lo) / span;
          dq = Math.pow(2 * u + (1 - 2 * u) * Math.pow(xy, eta + 1), pow) - 1;
        } else {
          const xy = 1 - (hi - x[i]) / span;
          dq = 1 - Math.pow(2 * (1 - u) + 2 * (u - 0.5) * Math.pow(xy, eta + 1), pow);
        }
        x[i] = Math.min(Math.max(x[i] + dq * span, lo), hi);
      }
      return x;
    },
  };
}

export function checkProb(p: number, who: string, name: string): void {
  if (!(p >= 0 && p <= 1)) throw new ArgumentError(`${who}: ${name} must be in [0, 1], got ${p}`);
}

function checkNonNegative(v: number, who: string, name: string): void {
  if (!(v >= 0) || !Number.isFinite(v)) throw new ArgumentError(`${who}: ${name} must be a finite number >= 0, got ${v}`);
}

export function checkParents<T extends { length: number }>(parents: readonly T[], k: number, n: number, who: string): void {
  if (parents.length !== k) throw new ArgumentError(`${who}: needs ${k} parents, got ${parents.length}`);
  for (let j = 0; j < k; j++) {
    if (parents[j].length !== n) throw new ArgumentError(`${who}: parent ${j} has length ${parents[j].length}, expected ${n}`);
  }
}
