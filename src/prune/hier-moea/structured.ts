/**
 * HIER-MOEA at structured granularity (`--granularity structured`, issue 10 section 3): phase 1's
 * genes are per-layer thresholds over channel dependency groups (src/graph/depgroups.ts) instead
 * of single weights. A gene is the fraction of one family's groups removed (a family: the groups
 * made by the same producer layers, e.g. all the channels of a residual stage, coupled through the
 * additions), smallest group norm first (L1: mean |w| over the group's producer rows; L2: their
 * root mean square, as PruneTarget's structured magnitude). Removing a group zeroes its producer
 * rows and the readers' input columns in the layer masks (so the size objective counts what the
 * shrunk model loses), and its companions (biases, BatchNorm weight and bias) in the model, so the
 * masked model computes what the physically shrunk one does (src/graph/shrink.ts).
 *
 * The structure is plain data (ranges of named parameters), so it travels to the evaluation workers
 * with the model and the masks' companions are derived there from the masks alone.
 */
import { ArgumentError, ConfigError } from '../../core/errors.js';
import { analyseGraph, type Ref } from '../../graph/depgroups.js';
import { trace } from '../../graph/trace.js';
import type { Module } from '../../nn/module.js';
import { countOnes, type LayerMasks, type PrunableLayout } from './layout.js';
import { MAX_LAYER_PRUNE } from './phase1.js';

export interface GroupStructure {
  groups: { family: string; rows: Ref[]; cols: Ref[]; entries: Ref[] }[];
}

/** The prunable channel groups of `model` whose producers are prunable layers of `layout`. */
export function groupStructure(model: Module, layout: PrunableLayout, inputShape: number[]): GroupStructure {
  const dep = analyseGraph(trace(model, { inputShape }));
  dep.graph.dispose();
  const names = new Set(layout.names);
  const params = new Set(model.namedParameters().map(([n]) => n));
  const groups = dep.groups.filter((g) => g.prunable && g.rows.length > 0 && g.rows.every((r) => names.has(r.param) && r.axis === 0))
    .map((g) => ({
      family: g.family, rows: g.rows.map((r) => ({ ...r })),
      cols: g.cols.filter((r) => names.has(r.param) && r.axis === 1).map((r) => ({ ...r })),
      // Running statistics are recalibrated (a removed channel's are 0 then); parameters are zeroed.
      entries: g.entries.filter((r) => params.has(r.param) && !names.has(r.param)).map((r) => ({ ...r })),
    }));
  if (groups.length === 0) throw new ConfigError('granularity: structured search needs a prunable Linear or Conv2d layer before the output layer (no channel group can be removed)', [{ path: 'granularity', message: 'nothing to prune structurally' }]);
  return { groups };
}

/** Which groups a mask set removes: every producer row of the group is all zeros. */
export function removedGroups(layout: PrunableLayout, st: GroupStructure, masks: LayerMasks): boolean[] {
  const at = new Map(layout.names.map((n, l) => [n, l]));
  return st.groups.map((g) => g.rows.every((r) => {
    const l = at.get(r.param)!;
    const m = masks[l], per = layout.sizes[l] / layout.params[l].shape[0];
    for (let i = r.start * per; i < (r.start + r.length) * per; i++) if (m[i]) return false;
    return true;
  }));
}

/** Per companion parameter (bias, BatchNorm weight and bias), 1 = kept, 0 = the entry of a removed group. */
export function companionMasks(layout: PrunableLayout, st: GroupStructure, masks: LayerMasks, shapes: Map<string, number>): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [n, size] of shapes) out.set(n, new Uint8Array(size).fill(1));
  removedGroups(layout, st, masks).forEach((gone, i) => {
    if (!gone) return;
    for (const e of st.groups[i].entries) {
      const m = out.get(e.param);
      if (m) m.fill(0, e.start, e.start + e.length);
    }
  });
  return out;
}

/** Phase 1's decoder at structured granularity: one gene per family, the fraction of its groups removed. */
export class GroupDecoder {
  readonly families: string[];
  /** Per family, its group indices by ascending norm (ties by index). */
  private readonly order: number[][];
  private readonly at: Map<string, number>;

  constructor(readonly layout: PrunableLayout, readonly structure: GroupStructure, magnitudes: Float64Array[] = layout.magnitudes(), norm: 'l1' | 'l2' = 'l1') {
    this.at = new Map(layout.names.map((n, l) => [n, l]));
    const score = structure.groups.map((g) => {
      let s = 0, n = 0;
      for (const r of g.rows) {
        const l = this.at.get(r.param)!;
        const mag = magnitudes[l], per = layout.sizes[l] / layout.params[l].shape[0];
        for (let i = r.start * per; i < (r.start + r.length) * per; i++) { s += norm === 'l2' ? mag[i] * mag[i] : mag[i]; n++; }
      }
      return norm === 'l2' ? Math.sqrt(s / n) : s / n;
    });
    this.families = [...new Set(structure.groups.map((g) => g.family))];
    this.order = this.families.map((f) => structure.groups.map((g, i) => [g, i] as const).filter(([g]) => g.family === f).map(([, i]) => i)
      .sort((a, b) => score[a] - score[b] || a - b));
  }

  get nGenes(): number { return this.families.length; }

  /** Groups removed from family f for fraction x: round(x n), at most n - 1 (one group stays). */
  removed(f: number, x: number): number {
    const n = this.order[f].length;
    return Math.min(n - 1, Math.max(0, Math.round(x * n)));
  }

  decode(genome: Float64Array): LayerMasks {
    if (genome.length !== this.nGenes) throw new ArgumentError(`GroupDecoder: genome of ${genome.length} genes for ${this.nGenes} families`);
    const masks = this.layout.sizes.map((s) => new Uint8Array(s).fill(1));
    this.order.forEach((groups, f) => {
      for (const gi of groups.slice(0, this.removed(f, genome[f]))) {
        const g = this.structure.groups[gi];
        for (const r of g.rows) {
          const l = this.at.get(r.param)!, per = this.layout.sizes[l] / this.layout.params[l].shape[0];
          masks[l].fill(0, r.start * per, (r.start + r.length) * per);
        }
        for (const c of g.cols) {
          const l = this.at.get(c.param)!, shape = this.layout.params[l].shape;
          const cols = shape[1], inner = this.layout.sizes[l] / (shape[0] * cols);
          for (let o = 0; o < shape[0]; o++) masks[l].fill(0, (o * cols + c.start) * inner, (o * cols + c.start + c.length) * inner);
        }
      }
    });
    return masks;
  }

  keptFraction(genome: Float64Array): number {
    return this.decode(genome).reduce((s, m) => s + countOnes(m), 0) / this.layout.total;
  }

  /** Uniform structured magnitude pruning at each sparsity s: every family's gene s (the structured seeds of phase 1). */
  seeds(sparsities: readonly number[]): Float64Array[] {
    return sparsities.map((s) => new Float64Array(this.nGenes).fill(Math.min(MAX_LAYER_PRUNE, s)));
  }
}
