/**
 * What a pruning method acts on: the prunable weights of a model, their masks, and for structured
 * pruning the parameters that go with each output row (its bias and the following BatchNorm's
 * weight and bias), so that a removed neuron or filter is removed whole.
 *
 * Sparsity is always counted over the prunable weights only: companions (biases, BatchNorm) follow
 * their rows but never count, as in the pruning literature's tables.
 */
import { ConfigError } from '../core/errors.js';
import { BatchNorm, Conv2d, Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { zeros } from '../tensor/creation.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Callback } from '../train/loop.js';
import { defaultPrunable, MaskSet, type PrunableFilter } from './masks.js';
import { analyseGraph, type ChannelGroup } from '../graph/depgroups.js';
import { trace } from '../graph/trace.js';
import { transformerGroups, type PruneUnit } from './heads.js';

export type Granularity = 'unstructured' | 'structured';
export type Scope = 'global' | 'layer';

export interface TargetOptions {
  /** Which parameters are prunable: a filter, or a regular expression on names. Default: every weight with more than one dim. */
  prunable?: PrunableFilter | RegExp | string;
  granularity?: Granularity;
  /** One example's shape [C, H, W]; structured pruning traces a forward pass with it to find each layer's BatchNorm. */
  inputShape?: number[];
  /** Structured magnitude: a group's importance is the mean |w| of its weights (l1, default) or their root mean square (l2). */
  groupNorm?: 'l1' | 'l2';
  /** Structured: what a group is: graph channel groups (default), a transformer's attention heads and / or block MLP neurons (heads.ts). */
  unit?: PruneUnit;
}

export interface LayerCount { name: string; total: number; kept: number; sparsity: number }

export function toFilter(p: TargetOptions['prunable']): PrunableFilter {
  if (p === undefined) return defaultPrunable;
  if (typeof p === 'function') return p;
  let re: RegExp;
  try {
    re = typeof p === 'string' ? new RegExp(p) : p;
  } catch (e) {
    throw new ConfigError(`prunable: not a valid regular expression: ${(e as Error).message}`, [{ path: 'prunable', message: 'invalid regular expression' }]);
  }
  return (name) => re.test(name);
}

/** Names of the model's prunable parameters under a filter, or a ConfigError naming the field when there are none. */
export function prunableNames(model: Module, prunable?: TargetOptions['prunable']): string[] {
  const f = toFilter(prunable);
  const names = model.namedParameters().filter(([n, p]) => f(n, p)).map(([n]) => n);
  if (names.length === 0) {
    throw new ConfigError('prunable: the model has nothing prunable (no parameter passes the prunable filter)', [{ path: 'prunable', message: 'matches no parameter' }]);
  }
  return names;
}

/**
 * For each Linear / Conv2d weight, the parameters that belong to its output rows: its own bias
 * and, when the layer's output goes straight into a BatchNorm, that BatchNorm's weight and bias.
 * Found by tracing one forward pass: a BatchNorm whose input is the very tensor a layer returned.
 */
export function rowCompanions(model: Module, inputShape: number[]): Map<string, string[]> {
  const layers = model.namedModules().filter(([, m]) => m instanceof Linear || m instanceof Conv2d) as [string, Linear | Conv2d][];
  const out = new Map<string, string[]>();
  for (const [n, m] of layers) out.set(`${n}.weight`, m.bias ? [`${n}.bias`] : []);
  const producedBy = new Map<Tensor, string>();
  const removers = [
    ...layers.map(([n, m]) => m.registerForwardHook((_m, _x, y) => { producedBy.set(y, n); })),
    ...model.namedModules().filter(([, m]) => m instanceof BatchNorm).map(([bn, m]) => m.registerForwardHook((mod, x) => {
      const src = producedBy.get(x);
      const b = mod as BatchNorm;
      if (src === undefined || !b.weight) return;
      const list = out.get(`${src}.weight`)!;
      list.push(`${bn}.weight`, `${bn}.bias`);
    })),
  ];
  const was = model.training;
  model.eval();
  try {
    tidy(() => noGrad(() => model.call(zeros([2, ...inputShape]))));
  } finally {
    removers.forEach((r) => r());
    model.train(was);
  }
  return out;
}

export class PruneTarget {
  readonly masks: MaskSet;
  /** The prunable weights, in parameter order: sparsity is counted over these. */
  readonly weights: string[];
  /** Structured only: weight name -> 1-d parameters pruned with its rows. */
  readonly companions: Map<string, string[]>;
  readonly granularity: Granularity;
  /**
   * Structured only: the prunable channel groups (src/graph/depgroups.ts), each removed whole: its
   * producer rows in every coupled layer (residual additions, concatenations), their biases and
   * BatchNorm entries. A group whose producers include a weight outside `prunable` is left out.
   */
  readonly groups: ChannelGroup[];
  readonly groupNorm: 'l1' | 'l2';
  /** Structured: what the groups are (channels of the graph, or a transformer's heads / neurons). */
  readonly unit: PruneUnit;

  constructor(readonly model: Module, o: TargetOptions = {}) {
    this.granularity = o.granularity ?? 'unstructured';
    this.groupNorm = o.groupNorm ?? 'l1';
    this.unit = o.unit ?? 'channels';
    if (this.unit !== 'channels' && this.granularity !== 'structured') {
      throw new ConfigError(`unit: '${this.unit}' removes whole units and needs --granularity structured`, [{ path: 'unit', message: 'needs structured granularity' }]);
    }
    let names = prunableNames(model, o.prunable);
    this.companions = new Map();
    this.groups = [];
    const entryParams = new Set<string>();
    if (this.granularity === 'structured' && this.unit !== 'channels') {
      const u = transformerGroups(model, this.unit);
      const allowed = new Set(names);
      this.groups = u.groups.filter((g) => g.rows.every((r) => allowed.has(r.param)));
      const producers = new Set(this.groups.flatMap((g) => g.rows.map((r) => r.param)));
      names = u.weights.filter((n) => producers.has(n));
      if (names.length === 0) throw new ConfigError(`prunable: no ${this.unit} left to prune (their weights do not pass the prunable filter)`, [{ path: 'prunable', message: `matches no ${this.unit} weight` }]);
      for (const n of names) this.companions.set(n, []);
      for (const g of this.groups) for (const e of g.entries) entryParams.add(e.param);
    } else if (this.granularity === 'structured') {
      if (!o.inputShape) throw new ConfigError('structured pruning needs the input shape to trace the model', [{ path: 'granularity', message: 'needs inputShape' }]);
      const rows = rowCompanions(model, o.inputShape);
      const dep = analyseGraph(trace(model, { inputShape: o.inputShape }));
      dep.graph.dispose();
      const allowed = new Set(names);
      const paramNames = new Set(model.namedParameters().map(([n]) => n));
      // The output layer's rows are the classes: they reach the model's output, so no group holds them.
      this.groups = dep.groups.filter((g) => g.prunable && g.rows.every((r) => allowed.has(r.param)));
      const producers = new Set(this.groups.flatMap((g) => g.rows.map((r) => r.param)));
      names = names.filter((n) => producers.has(n));
      if (names.length === 0) {
        const why = dep.groups.find((g) => !g.prunable && g.rows.length > 0 && !g.reason?.endsWith('the model output'))?.reason;
        throw new ConfigError(`granularity: structured pruning needs a prunable Linear or Conv2d layer before the output layer${why ? ` (no channel group can be removed: e.g. ${why})` : ''}`, [{ path: 'granularity', message: 'nothing to prune structurally' }]);
      }
      for (const n of names) this.companions.set(n, rows.get(n) ?? []);
      for (const g of this.groups) for (const e of g.entries) if (e.axis === 0 && paramNames.has(e.param)) entryParams.add(e.param);
    }
    this.weights = names;
    const all = new Set([...names, ...[...this.companions.values()].flat(), ...entryParams]);
    this.masks = new MaskSet(model, (n) => all.has(n));
  }

  param(name: string): Tensor { return this.masks.params.get(name)!; }
  mask(name: string): Tensor { return this.masks.get(name); }

  /** Number of prunable weights. */
  get total(): number { return this.weights.reduce((s, n) => s + this.param(n).numel, 0); }

  /** Kept weights overall and per layer (companions left out). */
  counts(): { total: number; kept: number; layers: LayerCount[] } {
    let total = 0, kept = 0;
    const layers: LayerCount[] = [];
    for (const n of this.weights) {
      const m = this.masks.get(n);
      const c = m.countNonzero();
      const k = c.item();
      c.dispose();
      total += m.numel;
      kept += k;
      layers.push({ name: n, total: m.numel, kept: k, sparsity: m.numel ? 1 - k / m.numel : 0 });
    }
    return { total, kept, layers };
  }

  sparsity(): number {
    const c = this.counts();
    return c.total ? 1 - c.kept / c.total : 0;
  }

  /** The masks enforced at the three points (before forward, after backward, after step), checkpointed. */
  callback(): Callback { return this.masks.callback('masks'); }

  /** Zero the pruned weights (and companions) now. */
  apply(): void { this.masks.applyToWeights(); }

  dispose(): void { this.masks.dispose(); }
}
