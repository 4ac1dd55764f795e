/**
 * Structured units of a transformer for the pruning methods: attention heads and the MLP neurons
 * of its blocks, as channel groups (the ChannelGroup of src/graph/depgroups.ts), so that the
 * structured selection (group-select.ts) ranks and removes them like any coupled channels.
 *
 * - A head h of a MultiheadAttention with head width dh is its q, k and v rows of in_proj_weight
 *   (rows h dh .. (h+1) dh - 1 of each third), its entries of in_proj_bias, and its columns of
 *   out_proj.weight. Masking its v rows and v bias already makes its output zero; the q/k rows and
 *   the out_proj columns are masked too, so that the removed weights are zero and count.
 * - A neuron i of a TransformerEncoderLayer's MLP is row i of linear1.weight, linear1.bias[i] and
 *   column i of linear2.weight (GELU(0) = 0: a masked neuron adds nothing).
 *
 * Rows and columns are both producers here (`rows` holds refs along axis 0 and 1): a head's
 * magnitude is the mean |w| (or RMS) over its q/k/v rows and out_proj columns, and the prunable
 * weights (over which sparsity counts) are in_proj_weight, out_proj.weight, linear1.weight and
 * linear2.weight. Every attention layer (and MLP) is a family: it keeps at least one head (neuron).
 */
import { ConfigError } from '../core/errors.js';
import type { ChannelGroup, Ref } from '../graph/depgroups.js';
import type { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import { MultiheadAttention, TransformerEncoderLayer } from '../nn/transformer.js';

/** What structured pruning removes: graph channel groups (the default), heads, block MLP neurons, or both. */
export type PruneUnit = 'channels' | 'heads' | 'neurons' | 'heads,neurons';
export const PRUNE_UNITS: readonly PruneUnit[] = ['channels', 'heads', 'neurons', 'heads,neurons'];

export interface UnitGroups {
  groups: ChannelGroup[];
  /** Prunable weights (sparsity counts over these), in model order. */
  weights: string[];
  /** 1-d parameters masked with the groups (in_proj_bias, linear1.bias). */
  entries: string[];
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The head and / or neuron groups of a model's attention layers and encoder blocks. */
export function transformerGroups(model: Module, unit: Exclude<PruneUnit, 'channels'>, modelName = 'the model'): UnitGroups {
  const heads = unit === 'heads' || unit === 'heads,neurons';
  const neurons = unit === 'neurons' || unit === 'heads,neurons';
  const mods = model.namedModules();
  const attns = mods.filter((e): e is [string, MultiheadAttention] => e[1] instanceof MultiheadAttention);
  const blocks = mods.filter((e): e is [string, TransformerEncoderLayer] => e[1] instanceof TransformerEncoderLayer);
  if (heads && attns.length === 0) throw new ConfigError(`unit: ${modelName} has no attention heads (--unit heads needs a transformer such as vit_tiny)`, [{ path: 'unit', message: 'heads on a model without attention' }]);
  if (neurons && blocks.length === 0) throw new ConfigError(`unit: ${modelName} has no transformer blocks whose MLP neurons --unit neurons removes (use --unit channels)`, [{ path: 'unit', message: 'neurons on a model without transformer blocks' }]);
  const groups: ChannelGroup[] = [], weights: string[] = [], entries: string[] = [];
  const add = (rows: Ref[], ents: Ref[], family: string) => groups.push({ id: groups.length, rows, entries: ents, cols: [], channels: [], prunable: true, family });
  const p = (prefix: string, leaf: string) => (prefix ? `${prefix}.${leaf}` : leaf);
  const order: [string, () => void][] = [];
  if (heads) for (const [name, a] of attns) {
    order.push([name, () => {
      const H = a.numHeads, dh = a.headDim, inner = a.innerDim;
      const w = p(name, 'in_proj_weight'), o = p(name, 'out_proj.weight'), b = a.inProjBias ? p(name, 'in_proj_bias') : null;
      weights.push(w, o);
      if (b) entries.push(b);
      for (const h of range(H)) {
        const rows: Ref[] = [];
        for (const part of range(3)) for (const j of range(dh)) rows.push({ param: w, axis: 0, start: part * inner + h * dh + j, length: 1 });
        for (const j of range(dh)) rows.push({ param: o, axis: 1, start: h * dh + j, length: 1 });
        const ents: Ref[] = b ? range(3).map((part) => ({ param: b, axis: 0, start: part * inner + h * dh, length: dh })) : [];
        add(rows, ents, name);
      }
    }]);
  }
  if (neurons) for (const [name, blk] of blocks) {
    const l1 = blk.linear1;
    if (!(l1 instanceof Linear)) throw new ConfigError(`unit: ${p(name, 'linear1')} is not a plain Linear (a population model?); prune the plain model`, [{ path: 'unit', message: 'wrapped MLP' }]);
    order.push([p(name, 'linear1'), () => {
      const w1 = p(name, 'linear1.weight'), w2 = p(name, 'linear2.weight'), b1 = l1.bias ? p(name, 'linear1.bias') : null;
      weights.push(w1, w2);
      if (b1) entries.push(b1);
      for (const i of range(l1.outFeatures)) {
        add([{ param: w1, axis: 0, start: i, length: 1 }, { param: w2, axis: 1, start: i, length: 1 }],
          b1 ? [{ param: b1, axis: 0, start: i, length: 1 }] : [], p(name, 'linear1'));
      }
    }]);
  }
  // Model order: a block's heads before its neurons, blocks in turn (module paths sort that way here).
  const pos = new Map(mods.map(([n], i) => [n, i]));
  order.sort((x, y) => (pos.get(x[0]) ?? 0) - (pos.get(y[0]) ?? 0)).forEach(([, f]) => f());
  return { groups, weights, entries };
}

/** Keep indices per unit layer from structured masks: `<attn>` -> kept heads, `<block>.linear1` -> kept neurons. */
export function keptUnits(groups: readonly ChannelGroup[], alive: (r: Ref) => boolean): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const count = new Map<string, number>();
  for (const g of groups) {
    const i = count.get(g.family) ?? 0;
    count.set(g.family, i + 1);
    const list = out.get(g.family) ?? [];
    if (g.rows.some(alive)) list.push(i);
    out.set(g.family, list);
  }
  return out;
}
