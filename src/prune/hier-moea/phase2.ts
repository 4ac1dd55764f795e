/**
 * Phase 2: a fine, binary search over the weights alive in the heavy anchor, one bit each (bit j of
 * layer l stands for weight alive[l][j]; layers follow each other, so a two-point crossover swaps
 * whole runs of a layer, or whole layers). Weights the heavy anchor pruned stay pruned.
 */
import { ArgumentError } from '../../core/errors.js';
import { BitSet } from '../../evo/bitset.js';
import type { Module } from '../../nn/module.js';
import { noGrad } from '../../tensor/autograd.js';
import { crossEntropy } from '../../tensor/nn-ops.js';
import { tidy } from '../../tensor/scope.js';
import type { BatchLike } from '../../train/evaluate.js';
import type { MaskedEvaluator } from './evaluator.js';
import type { LayerMasks, PrunableLayout } from './layout.js';

export class BitSpace {
  /** Per layer, the flat indices of the heavy anchor's alive weights, ascending. */
  readonly alive: Int32Array[];
  /** First bit of each layer. */
  readonly starts: number[];
  readonly nBits: number;

  constructor(readonly layout: PrunableLayout, heavy: LayerMasks) {
    layout.check(heavy);
    this.alive = heavy.map((m) => {
      const idx: number[] = [];
      for (let i = 0; i < m.length; i++) if (m[i]) idx.push(i);
      return Int32Array.from(idx);
    });
    this.starts = [];
    let b = 0;
    for (const a of this.alive) { this.starts.push(b); b += a.length; }
    this.nBits = b;
  }

  toMasks(bits: BitSet): LayerMasks {
    if (bits.length !== this.nBits) throw new ArgumentError(`BitSpace.toMasks: ${bits.length} bits, the space has ${this.nBits}`);
    const w = bits.words;
    return this.alive.map((idx, l) => {
      const m = new Uint8Array(this.layout.sizes[l]);
      const start = this.starts[l];
      for (let j = 0; j < idx.length; j++) {
        const g = start + j;
        if ((w[g >>> 5] >>> (g & 31)) & 1) m[idx[j]] = 1;
      }
      return m;
    });
  }

  /** The bits of a mask set: its weights outside the heavy anchor are dropped (an intersection). */
  fromMasks(masks: LayerMasks): BitSet {
    this.layout.check(masks);
    const b = new BitSet(this.nBits);
    this.alive.forEach((idx, l) => {
      const start = this.starts[l];
      for (let j = 0; j < idx.length; j++) if (masks[l][idx[j]]) b.set(start + j);
    });
    return b;
  }

  countPerLayer(bits: BitSet): number[] {
    return this.alive.map((idx, l) => {
      let c = 0;
      for (let j = this.starts[l]; j < this.starts[l] + idx.length; j++) if (bits.get(j)) c++;
      return c;
    });
  }

  /** Kept fraction of all prunable weights (the size objective). */
  keptFraction(bits: BitSet): number {
    return bits.count() / this.layout.total;
  }
}

/**
 * |w * g| per weight, g the mean gradient of the loss over `batches` on the network masked by
 * `masks` (BatchNorm recalibrated by the evaluator, used in eval mode). The dense weights and the
 * trained BatchNorm statistics are back in the model afterwards.
 */
export function taylorScores(model: Module, evaluator: MaskedEvaluator, masks: LayerMasks, batches: Iterable<BatchLike>): Float64Array[] {
  const layout = evaluator.layout;
  evaluator.apply(masks);
  const was = model.training;
  model.eval();
  const acc = layout.sizes.map((s) => new Float64Array(s));
  let nb = 0;
  try {
    for (const b of batches) {
      tidy(() => {
        model.zeroGrad();
        crossEntropy(model.call(b.x), b.y).backward();
        layout.params.forEach((p, l) => {
          const g = p.grad;
          if (!g) return;
          const wg = noGrad(() => p.detach().mul(g)).toTypedArray() as Float32Array;
          const a = acc[l];
          for (let i = 0; i < a.length; i++) a[i] += wg[i];
        });
      });
      b.x.dispose();
      b.y.dispose();
      nb++;
    }
  } finally {
    model.zeroGrad();
    model.train(was);
    evaluator.restore();
  }
  if (nb === 0) throw new ArgumentError('taylorScores: no batches');
  return acc.map((a) => a.map((v) => Math.abs(v / nb)));
}
