/**
 * One-shot global magnitude pruning, the reference line of the plots and tables: keep the
 * round(q N) weights of largest |w| over all prunable layers together (ties by layout position),
 * no retraining. Kept small and local so that HIER-MOEA does not depend on the pruning criteria
 * being written beside it.
 */
import { ArgumentError } from '../../core/errors.js';
import { ascendingRanks, type LayerMasks, type PrunableLayout } from './layout.js';

export class GlobalMagnitude {
  private readonly rank: Int32Array;

  constructor(readonly layout: PrunableLayout, magnitudes: Float64Array[] = layout.magnitudes()) {
    const all = new Float64Array(layout.total);
    magnitudes.forEach((m, l) => all.set(m, layout.offsets[l]));
    this.rank = ascendingRanks(all);
  }

  /** Masks keeping the fraction `kept` of all prunable weights. */
  masks(kept: number): LayerMasks {
    if (!(kept >= 0 && kept <= 1)) throw new ArgumentError(`GlobalMagnitude: kept fraction must be in [0, 1], got ${kept}`);
    const n = this.layout.total;
    const cut = n - Math.round(kept * n);
    return this.layout.sizes.map((s, l) => {
      const off = this.layout.offsets[l];
      const m = new Uint8Array(s);
      for (let i = 0; i < s; i++) m[i] = this.rank[off + i] >= cut ? 1 : 0;
      return m;
    });
  }
}
