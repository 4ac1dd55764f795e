/**
 * ZDT1 and ZDT2 (Zitzler, Deb & Thiele 2000): two objectives over [0, 1]^n, n = 30.
 * f1 = x1, g = 1 + 9 sum(x2..xn)/(n-1); ZDT1: f2 = g (1 - sqrt(f1/g)) (convex front);
 * ZDT2: f2 = g (1 - (f1/g)^2) (concave front). The optimal front is g = 1 (x2..xn = 0),
 * so with reference (1, 1) its hypervolume is the integral of 1 - f2(f1) over [0, 1]:
 * 2/3 for ZDT1 (f2 = 1 - sqrt f1) and 1/3 for ZDT2 (f2 = 1 - f1^2).
 */
import { ArgumentError } from '../core/errors.js';
import type { Problem } from './types.js';

export interface ZdtProblem extends Problem {
  /** Hypervolume of the true Pareto front w.r.t. (1, 1). */
  readonly optimalHypervolume: number;
  /** `n` points of the true front, evenly spaced in f1. */
  paretoFront(n: number): number[][];
}

export function zdt1(nVar = 30): ZdtProblem {
  return zdt('zdt1', nVar, (f1, g) => g * (1 - Math.sqrt(f1 / g)), 2 / 3);
}

export function zdt2(nVar = 30): ZdtProblem {
  return zdt('zdt2', nVar, (f1, g) => g * (1 - (f1 / g) * (f1 / g)), 1 / 3);
}

function zdt(name: string, nVar: number, f2: (f1: number, g: number) => number, optimalHypervolume: number): ZdtProblem {
  if (!Number.isInteger(nVar) || nVar < 2) throw new ArgumentError(`${name}: nVar must be an integer >= 2, got ${nVar}`);
  const bounds = { lower: new Float64Array(nVar), upper: new Float64Array(nVar).fill(1) };
  return {
    name,
    nVar,
    nObj: 2,
    bounds,
    optimalHypervolume,
    evaluate(x: Float64Array): number[] {
      if (x.length !== nVar) throw new ArgumentError(`${name}: expected ${nVar} variables, got ${x.length}`);
      let s = 0;
      for (let i = 1; i < nVar; i++) s += x[i];
      const g = 1 + (9 * s) / (nVar - 1);
      return [x[0], f2(x[0], g)];
    },
    paretoFront(n: number): number[][] {
      return Array.from({ length: n }, (_, i) => {
        const f1 = n === 1 ? 0 : i / (n - 1);
        return [f1, f2(f1, 1)];
      });
    },
  };
}
