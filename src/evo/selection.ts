/**
 * Binary tournament on (rank, crowding), NSGA-II's mating selection.
 */
import { ArgumentError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import type { Population, Selection } from './types.js';

/**
 * Each winner comes from a tournament of two. Contestants are drawn from concatenated
 * random permutations (as pymoo does) rather than independently, so every individual
 * enters about equally often. The lower rank wins; on equal rank the larger crowding
 * distance wins; a full tie is a coin flip.
 */
export function binaryTournament(): Selection {
  return {
    name: 'binary_tournament',
    select(pop: Population, count: number, rng: Rng): Int32Array {
      if (pop.length === 0) throw new ArgumentError('binaryTournament: empty population');
      if (!Number.isInteger(count) || count < 0) throw new ArgumentError(`binaryTournament: count must be a non-negative integer, got ${count}`);
      const need = 2 * count;
      const pool = new Int32Array(need);
      for (let filled = 0; filled < need; ) {
        const perm = rng.permutation(pop.length);
        for (let k = 0; k < perm.length && filled < need; k++) pool[filled++] = perm[k];
      }
      const out = new Int32Array(count);
      for (let t = 0; t < count; t++) {
        const a = pool[2 * t], b = pool[2 * t + 1];
        const A = pop[a], B = pop[b];
        if (A.rank !== B.rank) out[t] = A.rank < B.rank ? a : b;
        else if (A.crowding !== B.crowding) out[t] = A.crowding > B.crowding ? a : b;
        else out[t] = rng.random() < 0.5 ? a : b;
      }
      return out;
    },
  };
}
