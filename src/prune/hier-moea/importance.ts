/**
 * Importance of the weights phase 2 searches over, and the importance-aware initial population.
 *
 * Raw scores are |w| ('magnitude') or |w * g| ('taylor', g the mean gradient over a few training
 * batches, taken on the heavy anchor's network). They are normalized within each layer by rank:
 * s = (r + 1/2) / m for the weight of rank r (ascending) among the layer's m searched weights, so
 * s is spread evenly over (0, 1) in every layer. Raw scales differ by orders of magnitude between
 * layers (conv1 against a 400k-weight fc layer), and the rank keeps "more important" comparable
 * across them; the layers' shares come from the anchors instead.
 */
import { ArgumentError } from '../../core/errors.js';
import type { Rng } from '../../core/rng.js';
import { BitSet } from '../../evo/bitset.js';
import { binarySampling } from '../../evo/sampling.js';
import type { Sampling } from '../../evo/types.js';
import { ascendingRanks } from './layout.js';
import type { BitSpace } from './phase2.js';

/** Per-layer rank normalization of the searched weights' raw scores (in bit order) into (0, 1). */
export function normalizedImportance(space: BitSpace, raw: Float64Array[]): Float64Array {
  const s = new Float64Array(space.nBits);
  space.alive.forEach((idx, l) => {
    const vals = Float64Array.from(idx, (i) => raw[l][i]);
    const rank = ascendingRanks(vals);
    const m = idx.length;
    const start = space.starts[l];
    for (let j = 0; j < m; j++) s[start + j] = (rank[j] + 0.5) / m;
  });
  return s;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/**
 * p_j = sigmoid((s_j - tau) / T), with tau found by bisection so that the mean of p over the layer
 * is exactly `density` (to 1e-9): the expected number of set bits is density * m. density >= 1 sets
 * every bit; T -> 0 tends to keeping the top density * m weights by importance.
 */
export function bitProbabilities(s: ArrayLike<number>, density: number, temperature: number): Float64Array {
  const m = s.length;
  const p = new Float64Array(m);
  if (m === 0) return p;
  if (!(temperature > 0)) throw new ArgumentError(`bitProbabilities: temperature must be positive, got ${temperature}`);
  if (density >= 1) return p.fill(1);
  if (density <= 0) return p;
  const meanAt = (tau: number) => {
    let sum = 0;
    for (let j = 0; j < m; j++) sum += sigmoid((s[j] - tau) / temperature);
    return sum / m;
  };
  // mean(tau) falls from ~1 to ~0 as tau goes from -40T to 1 + 40T.
  let lo = -40 * temperature, hi = 1 + 40 * temperature;
  for (let it = 0; it < 100 && hi - lo > 1e-12; it++) {
    const mid = (lo + hi) / 2;
    if (meanAt(mid) > density) lo = mid; else hi = mid;
  }
  const tau = (lo + hi) / 2;
  for (let j = 0; j < m; j++) p[j] = sigmoid((s[j] - tau) / temperature);
  return p;
}

export interface ImportanceSamplingOptions {
  space: BitSpace;
  /** Normalized importance per bit (normalizedImportance). */
  s: Float64Array;
  /** The light anchor as bits of the space (its weights outside the heavy anchor dropped). */
  light: BitSet;
  temperature: number;
  /**
   * Kept bits of the sparsest sampled individual, relative to the heavy anchor (search.ts passes the
   * sparsest phase-1 front point's); never above the light anchor's.
   */
  sparsest: number;
}

type DensityPath = { space: BitSpace; light: BitSet; sparsest: number };

/** Per-layer density d_l^t along the geometric path (d_l: the light anchor's density relative to the heavy one). */
function pathAt(o: DensityPath, lightPer: number[], t: number): number[] {
  return o.space.alive.map((idx, l) => {
    const m = idx.length;
    if (m === 0) return 0;
    return Math.min(1, Math.max(1 / m, Math.max(1 / m, lightPer[l] / m) ** t));
  });
}

/**
 * Per-layer target densities of individual k of n (k >= 2; 0 and 1 are the anchors themselves).
 * The overall density R_k (kept bits / bits) runs log-uniformly from 1 (the heavy anchor, excluded)
 * down to `sparsest` (individual n - 1); each layer takes d_l^t with the t for which the layers add
 * up to R_k (bisection: the total falls as t grows).
 */
export function targetDensities(o: DensityPath, k: number, n: number): number[] {
  const lightPer = o.space.countPerLayer(o.light);
  const total = o.space.nBits;
  const lightRel = lightPer.reduce((a, b) => a + b, 0) / Math.max(1, total);
  const lo = Math.min(Math.max(o.sparsest, 1e-9), lightRel > 0 ? lightRel : 1);
  const u = n <= 2 ? 1 : (k - 1) / (n - 2);
  const want = Math.exp(u * Math.log(lo));
  const relAt = (t: number) => pathAt(o, lightPer, t).reduce((acc, r, l) => acc + r * o.space.alive[l].length, 0) / total;
  let a = 0, b = 1;
  while (relAt(b) > want && b < 64) b *= 2;
  for (let it = 0; it < 60; it++) {
    const mid = (a + b) / 2;
    if (relAt(mid) > want) a = mid; else b = mid;
  }
  return pathAt(o, lightPer, (a + b) / 2);
}

/**
 * The phase-2 initial population. Individual 0 is the heavy anchor (every bit set), individual 1 the
 * light anchor. Individuals k >= 2 follow a geometric path through both anchors: layer l keeps the
 * density d_l^t, d_l being the light anchor's density in layer l relative to the heavy anchor, so
 * t = 0 is the heavy anchor, t = 1 the light anchor's per-layer allocation, and past 1 every layer
 * keeps shrinking by the same ratio (never to zero). Their overall densities are spread
 * log-uniformly from the heavy anchor down to `sparsest`, the sparsest point of the phase-1 front:
 * phase 2 starts over the whole front below the heavy anchor, not only between the anchors.
 * Within a layer a bit is set with a probability that grows with its importance (bitProbabilities).
 */
export function importanceSampling(o: ImportanceSamplingOptions): Sampling<BitSet> {
  if (o.s.length !== o.space.nBits || o.light.length !== o.space.nBits) {
    throw new ArgumentError(`importanceSampling: ${o.s.length} scores and ${o.light.length} light-anchor bits for ${o.space.nBits} bits`);
  }
  if (!(o.sparsest > 0 && o.sparsest <= 1)) throw new ArgumentError(`importanceSampling: sparsest must be in (0, 1], got ${o.sparsest}`);
  return {
    name: 'importance_aware',
    sample(n: number, rng: Rng): BitSet[] {
      const out: BitSet[] = [];
      for (let k = 0; k < n; k++) {
        if (k === 0) { const all = new BitSet(o.space.nBits); all.words.fill(0xffffffff); all.clearTail(); out.push(all); continue; }
        if (k === 1) { out.push(o.light.clone()); continue; }
        out.push(binarySampling({ probs: samplingProbabilities(o, k, n) }).sample(1, rng)[0]);
      }
      return out;
    },
  };
}

/** The per-bit probabilities individual k of n is drawn with (for tests and the docs' expected densities). */
export function samplingProbabilities(o: ImportanceSamplingOptions, k: number, n: number): Float64Array {
  const rho = targetDensities(o, k, n);
  const probs = new Float64Array(o.space.nBits);
  o.space.alive.forEach((idx, l) => {
    const start = o.space.starts[l];
    probs.set(bitProbabilities(o.s.subarray(start, start + idx.length), rho[l], o.temperature), start);
  });
  return probs;
}
