/**
 * The prunable weights of a model laid end to end: layer l's flattened weights occupy
 * [offset[l], offset[l] + size[l]) of one global index space. Masks cross the search as plain
 * per-layer Uint8Arrays (1 = kept) and are stored as one BitSet over that space, so a solution
 * of LeNet-5 (430k weights) costs 54 kB on disk.
 */
import { ArgumentError } from '../../core/errors.js';
import { BitSet } from '../../evo/bitset.js';
import type { Module } from '../../nn/module.js';
import type { Tensor } from '../../tensor/tensor.js';
import { defaultPrunable, prunableParameters, type PrunableFilter } from '../masks.js';

/** One Uint8Array per prunable layer, in layout order; 1 = kept, 0 = pruned. */
export type LayerMasks = Uint8Array[];

export class PrunableLayout {
  readonly names: string[];
  readonly params: Tensor[];
  readonly sizes: number[];
  readonly offsets: number[];
  readonly total: number;

  constructor(model: Module, filter: PrunableFilter = defaultPrunable) {
    const ps = prunableParameters(model, filter);
    this.names = ps.map(([n]) => n);
    this.params = ps.map(([, p]) => p);
    this.sizes = this.params.map((p) => p.numel);
    this.offsets = [];
    let o = 0;
    for (const s of this.sizes) { this.offsets.push(o); o += s; }
    this.total = o;
  }

  get nLayers(): number { return this.names.length; }

  /** |w| of every layer, flattened, as float64 arrays (read once; the search never reads weights back). */
  magnitudes(): Float64Array[] {
    return this.params.map((p) => Float64Array.from(p.toTypedArray() as Float32Array, Math.abs));
  }

  /** Kept weights of a mask set, and kept / total. */
  kept(masks: LayerMasks): { kept: number; fraction: number; perLayer: number[] } {
    this.check(masks);
    const perLayer = masks.map(countOnes);
    const kept = perLayer.reduce((a, b) => a + b, 0);
    return { kept, fraction: kept / this.total, perLayer };
  }

  /** The masks as one BitSet over the global index space (the compact stored form). */
  toBits(masks: LayerMasks): BitSet {
    this.check(masks);
    const b = new BitSet(this.total);
    const w = b.words;
    masks.forEach((m, l) => {
      const off = this.offsets[l];
      for (let i = 0; i < m.length; i++) if (m[i]) { const g = off + i; w[g >>> 5] |= 1 << (g & 31); }
    });
    return b;
  }

  fromBits(bits: BitSet): LayerMasks {
    if (bits.length !== this.total) throw new ArgumentError(`PrunableLayout.fromBits: ${bits.length} bits for ${this.total} prunable weights`);
    return this.sizes.map((s, l) => {
      const m = new Uint8Array(s);
      const off = this.offsets[l];
      for (let i = 0; i < s; i++) m[i] = bits.get(off + i) ? 1 : 0;
      return m;
    });
  }

  check(masks: LayerMasks): void {
    if (masks.length !== this.nLayers) throw new ArgumentError(`masks for ${masks.length} layers, the model has ${this.nLayers} prunable layers`);
    masks.forEach((m, l) => {
      if (m.length !== this.sizes[l]) throw new ArgumentError(`mask of '${this.names[l]}' has ${m.length} entries, the weight ${this.sizes[l]}`);
    });
  }
}

export function countOnes(m: Uint8Array): number {
  let c = 0;
  for (let i = 0; i < m.length; i++) c += m[i] ? 1 : 0;
  return c;
}

/**
 * rank[i] = position of element i when `score` is sorted ascending, ties broken by index, so
 * "remove the k smallest" is `rank < k` and removes exactly k elements whatever the ties.
 */
export function ascendingRanks(score: ArrayLike<number>): Int32Array {
  const n = score.length;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => (score[a] - score[b]) || (a - b));
  const rank = new Int32Array(n);
  for (let j = 0; j < n; j++) rank[order[j]] = j;
  return rank;
}
