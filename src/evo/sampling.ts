/**
 * Initial populations. Binary sampling takes one probability per bit so that a pruning
 * method can bias the first masks by importance (keep likely-important weights).
 */
import { ArgumentError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { BitSet } from './bitset.js';
import type { Bounds, Genome, Sampling } from './types.js';

export function checkBounds(bounds: Bounds, who: string): void {
  const { lower, upper } = bounds;
  if (lower.length !== upper.length) {
    throw new ArgumentError(`${who}: lower has ${lower.length} entries, upper ${upper.length}`);
  }
  for (let i = 0; i < lower.length; i++) {
    if (!(lower[i] <= upper[i]) || !Number.isFinite(lower[i]) || !Number.isFinite(upper[i])) {
      throw new ArgumentError(`${who}: bounds[${i}] = [${lower[i]}, ${upper[i]}] is not a finite interval`);
    }
  }
}

/** Each variable uniform in [lower, upper). */
export function realUniformSampling(bounds: Bounds): Sampling<Float64Array> {
  checkBounds(bounds, 'realUniformSampling');
  const { lower, upper } = bounds;
  return {
    name: 'real_uniform',
    sample(n: number, rng: Rng): Float64Array[] {
      checkCount(n, 'realUniformSampling');
      const out: Float64Array[] = [];
      for (let k = 0; k < n; k++) {
        const x = new Float64Array(lower.length);
        for (let i = 0; i < x.length; i++) x[i] = rng.uniform(lower[i], upper[i]);
        out.push(x);
      }
      return out;
    },
  };
}

export interface BinarySamplingOptions {
  /** Number of bits; required when `probs` is a single number. */
  nBits?: number;
  /** Probability that each bit is set: one number for all bits, or one per bit. Default 0.5. */
  probs?: number | Float64Array;
}

/**
 * Bit i is set with probability probs[i], independently. One 32-bit draw per bit
 * (compared with p * 2^32) keeps a 300k-bit genome to one pass.
 */
export function binarySampling(options: BinarySamplingOptions): Sampling<BitSet> {
  const probs = options.probs ?? 0.5;
  const nBits = typeof probs === 'number' ? options.nBits : probs.length;
  if (nBits === undefined || !Number.isInteger(nBits) || nBits < 0) {
    throw new ArgumentError(`binarySampling: nBits must be a non-negative integer, got ${nBits}`);
  }
  if (typeof probs !== 'number' && options.nBits !== undefined && options.nBits !== probs.length) {
    throw new ArgumentError(`binarySampling: nBits = ${options.nBits} but probs has ${probs.length} entries`);
  }
  const per = typeof probs === 'number' ? new Float64Array(nBits).fill(probs) : probs;
  // Thresholds are precomputed once; a bit is set when a uniform u32 falls below them.
  const thresholds = new Float64Array(nBits);
  for (let i = 0; i < nBits; i++) {
    const p = per[i];
    if (!(p >= 0 && p <= 1)) throw new ArgumentError(`binarySampling: probs[${i}] = ${p} is not in [0, 1]`);
    thresholds[i] = p * 4294967296;
  }
  return {
    name: 'binary',
    sample(n: number, rng: Rng): BitSet[] {
      checkCount(n, 'binarySampling');
      const out: BitSet[] = [];
      for (let k = 0; k < n; k++) {
        const b = new BitSet(nBits);
        const w = b.words;
        for (let i = 0; i < nBits; i++) if (rng.nextU32() < thresholds[i]) w[i >>> 5] |= 1 << (i & 31);
        out.push(b);
      }
      return out;
    },
  };
}

/**
 * An initial population that starts from known solutions (say, the front of an earlier search):
 * up to `maxShare` of the population are copies of `seeds` (evenly spaced through the list when
 * there are more), the rest comes from `base`. With no seeds it is `base` itself.
 */
export function seededSampling<G extends Genome>(seeds: readonly G[], base: Sampling<G>, options: { clone: (g: G) => G; maxShare?: number }): Sampling<G> {
  const share = options.maxShare ?? 0.5;
  if (!(share >= 0 && share <= 1)) throw new ArgumentError(`seededSampling: maxShare must be in [0, 1], got ${share}`);
  return {
    name: `seeded(${base.name})`,
    sample(n: number, rng: Rng): G[] {
      checkCount(n, 'seededSampling');
      const k = Math.min(seeds.length, Math.floor(n * share));
      const picked: G[] = [];
      for (let i = 0; i < k; i++) picked.push(options.clone(seeds[k === seeds.length ? i : Math.round((i * (seeds.length - 1)) / Math.max(1, k - 1))]));
      return [...picked, ...base.sample(n - k, rng)];
    },
  };
}

function checkCount(n: number, who: string): void {
  if (!Number.isInteger(n) || n < 0) throw new ArgumentError(`${who}: count must be a non-negative integer, got ${n}`);
}
