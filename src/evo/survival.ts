/**
 * NSGA-II's elitist survival: parents and children compete together; whole fronts are
 * kept best first, and the front that does not fit is cut by crowding distance.
 */
import { ArgumentError } from '../core/errors.js';
import { crowdingDistance, nonDominatedSort } from './sorting.js';
import type { Genome, Population, Survival } from './types.js';

/**
 * Crowding is computed on the whole last front before it is cut, as in pymoo and Deb's
 * code (not recomputed on the survivors); ties in crowding keep index order, so the
 * survivors are a deterministic function of the input.
 */
export function rankAndCrowdingSurvival(): Survival {
  return {
    name: 'rank_and_crowding',
    survive<G extends Genome>(pop: Population<G>, n: number): Population<G> {
      if (!Number.isInteger(n) || n < 0) throw new ArgumentError(`rankAndCrowdingSurvival: n must be a non-negative integer, got ${n}`);
      const objs = pop.map((ind) => ind.objectives);
      const { fronts } = nonDominatedSort(objs, n);
      const out: Population<G> = [];
      for (let r = 0; r < fronts.length && out.length < n; r++) {
        const front = fronts[r];
        const cd = crowdingDistance(objs, front);
        let order = Array.from(front.keys());
        if (out.length + front.length > n) {
          order.sort((a, b) => (cd[b] === cd[a] ? a - b : cd[b] > cd[a] ? 1 : -1));
          order = order.slice(0, n - out.length);
        }
        for (const a of order) out.push({ ...pop[front[a]], rank: r, crowding: cd[a] });
      }
      return out;
    },
  };
}
