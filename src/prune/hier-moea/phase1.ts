/**
 * Phase 1: a coarse, continuous search. A genome holds one number per prunable layer, the fraction
 * of that layer's weights (smallest |w| first) to remove, so the space has as many dimensions as the
 * network has layers (4 for LeNet-5, 20 for ResNet-20) whatever its width.
 */
import type { Rng } from '../../core/rng.js';
import type { Bounds, Sampling } from '../../evo/types.js';
import { ascendingRanks, type LayerMasks, type PrunableLayout } from './layout.js';

/** Largest fraction of a layer that a gene may remove: a layer is never emptied by phase 1. */
export const MAX_LAYER_PRUNE = 0.99;

export function phase1Bounds(nLayers: number): Bounds {
  return { lower: new Float64Array(nLayers), upper: new Float64Array(nLayers).fill(MAX_LAYER_PRUNE) };
}

/** Layer-wise magnitude masks from a genome of per-layer prune fractions. */
export class ThresholdDecoder {
  /** Per layer, each weight's rank by |w| ascending (ties by index). */
  private readonly ranks: Int32Array[];

  constructor(readonly layout: PrunableLayout, magnitudes: Float64Array[] = layout.magnitudes()) {
    this.ranks = magnitudes.map(ascendingRanks);
  }

  /** Weights removed from layer l for fraction f: round(f n), at most n - 1 (one weight stays). */
  removed(l: number, f: number): number {
    const n = this.layout.sizes[l];
    return Math.min(n - 1, Math.max(0, Math.round(f * n)));
  }

  decode(genome: Float64Array): LayerMasks {
    return this.ranks.map((rank, l) => {
      const k = this.removed(l, genome[l]);
      const m = new Uint8Array(rank.length);
      for (let i = 0; i < rank.length; i++) m[i] = rank[i] >= k ? 1 : 0;
      return m;
    });
  }

  /** Fraction of prunable weights a genome keeps, without building its masks. */
  keptFraction(genome: Float64Array): number {
    let kept = 0;
    for (let l = 0; l < this.ranks.length; l++) kept += this.layout.sizes[l] - this.removed(l, genome[l]);
    return kept / this.layout.total;
  }
}

/**
 * The first population, stratified over density: individual 0 is the dense network (all genes 0),
 * individual k has every gene near the level (k / (n - 1)) * MAX_LAYER_PRUNE, jittered per layer by
 * N(0, jitter). Uniform sampling of the box would put nearly every network near 50% kept (a mean
 * of independent genes), leaving the sparse end of the front to be found generations later.
 */
export function stratifiedSampling(nLayers: number, jitter = 0.1): Sampling<Float64Array> {
  return {
    name: 'stratified_levels',
    sample(n: number, rng: Rng): Float64Array[] {
      const out: Float64Array[] = [];
      for (let k = 0; k < n; k++) {
        const g = new Float64Array(nLayers);
        if (k > 0) {
          const level = (k / Math.max(1, n - 1)) * MAX_LAYER_PRUNE;
          for (let l = 0; l < nLayers; l++) g[l] = Math.min(MAX_LAYER_PRUNE, Math.max(0, level + rng.normal(0, jitter)));
        }
        out.push(g);
      }
      return out;
    },
  };
}
