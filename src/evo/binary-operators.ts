/**
 * Operators on binary genomes (packed BitSets). They work a 32-bit word at a time where
 * the operator allows, and bit-flip mutation jumps between flipped bits, so that a
 * genome of ~10^5-10^6 bits (a pruning mask) costs little more than its expected changes.
 */
import { ArgumentError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { BitSet } from './bitset.js';
import { checkProb } from './real-operators.js';
import type { Crossover, Mutation } from './types.js';

export interface BinaryCrossoverOptions {
  /** Probability that a mating crosses at all (else the children copy the parents). Default 0.9. */
  prob?: number;
}

/**
 * Uniform crossover: each bit of child 0 comes from either parent with probability 1/2
 * (one random 32-bit mask per word); child 1 takes the other parent's bit everywhere.
 */
export function uniformCrossover(options: BinaryCrossoverOptions = {}): Crossover<BitSet> {
  const { prob = 0.9 } = options;
  checkProb(prob, 'uniformCrossover', 'prob');
  return {
    name: 'uniform_crossover',
    parents: 2,
    cross(parents: readonly BitSet[], rng: Rng): BitSet[] {
      const [p, q] = checkBinaryParents(parents, 'uniformCrossover');
      const a = p.clone(), b = q.clone();
      if (rng.random() >= prob) return [a, b];
      const pw = p.words, qw = q.words, aw = a.words, bw = b.words;
      for (let k = 0; k < aw.length; k++) {
        const m = rng.nextU32();
        aw[k] = (pw[k] & m) | (qw[k] & ~m);
        bw[k] = (qw[k] & m) | (pw[k] & ~m);
      }
      return [a, b];
    },
  };
}

/**
 * Two-point crossover: two distinct cut points c1 < c2 drawn from 1..n-1; the children
 * swap the segment [c1, c2) and keep their own parent's bits outside it. Genomes shorter
 * than 3 bits have no such pair of cuts and are copied.
 */
export function twoPointCrossover(options: BinaryCrossoverOptions = {}): Crossover<BitSet> {
  const { prob = 0.9 } = options;
  checkProb(prob, 'twoPointCrossover', 'prob');
  return {
    name: 'two_point_crossover',
    parents: 2,
    cross(parents: readonly BitSet[], rng: Rng): BitSet[] {
      const [p, q] = checkBinaryParents(parents, 'twoPointCrossover');
      const a = p.clone(), b = q.clone();
      const n = p.length;
      if (rng.random() >= prob || n < 3) return [a, b];
      let c1 = 1 + rng.int(n - 1);
      let c2 = 1 + rng.int(n - 2);
      if (c2 >= c1) c2++; // distinct without rejection
      if (c1 > c2) [c1, c2] = [c2, c1];
      a.copyRangeFrom(q, c1, c2);
      b.copyRangeFrom(p, c1, c2);
      return [a, b];
    },
  };
}

export interface BitFlipMutationOptions {
  /** Number of bits; sets the default probVar = 1/nBits. */
  nBits?: number;
  /** Probability that each bit flips. Default 1/nBits (required if nBits is absent). */
  probVar?: number;
  /** Probability that a genome is mutated at all. Default 1. */
  prob?: number;
}

/**
 * Each bit flips independently with probability p. Instead of one draw per bit, the gap
 * to the next flip is drawn from its geometric law, floor(log(u) / log(1 - p)), so the cost
 * is one draw per flip: ~1 per genome at p = 1/n, whatever n is.
 */
export function bitFlipMutation(options: BitFlipMutationOptions): Mutation<BitSet> {
  const { nBits, prob = 1 } = options;
  const probVar = options.probVar ?? (nBits !== undefined && nBits > 0 ? 1 / nBits : undefined);
  if (probVar === undefined) throw new ArgumentError('bitFlipMutation: give probVar, or nBits for the default 1/nBits');
  checkProb(probVar, 'bitFlipMutation', 'probVar');
  checkProb(prob, 'bitFlipMutation', 'prob');
  const logQ = Math.log1p(-probVar);
  return {
    name: 'bit_flip_mutation',
    mutate(g: BitSet, rng: Rng): BitSet {
      if (nBits !== undefined && g.length !== nBits) throw new ArgumentError(`bitFlipMutation: genome has ${g.length} bits, expected ${nBits}`);
      if (rng.random() >= prob || probVar === 0) return g;
      const w = g.words;
      if (probVar === 1) {
        for (let k = 0; k < w.length; k++) w[k] = ~w[k];
        g.clearTail();
        return g;
      }
      const n = g.length;
      for (let i = geometricGap(rng, logQ); i < n; i += 1 + geometricGap(rng, logQ)) {
        w[i >>> 5] ^= 1 << (i & 31);
      }
      return g;
    },
  };
}

/** Number of failures before the first success, success probability 1 - exp(logQ). */
function geometricGap(rng: Rng, logQ: number): number {
  const u = 1 - rng.random(); // in (0, 1], so log(u) is finite
  const g = Math.floor(Math.log(u) / logQ);
  return g < 0x7fffffff ? g : 0x7fffffff;
}

function checkBinaryParents(parents: readonly BitSet[], who: string): [BitSet, BitSet] {
  if (parents.length !== 2) throw new ArgumentError(`${who}: needs 2 parents, got ${parents.length}`);
  const [p, q] = parents;
  if (!(p instanceof BitSet) || !(q instanceof BitSet)) throw new ArgumentError(`${who}: parents must be BitSets`);
  if (p.length !== q.length) throw new ArgumentError(`${who}: parents have ${p.length} and ${q.length} bits`);
  return [p, q];
}
