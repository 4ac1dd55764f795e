/**
 * EVO-POP over the channel dependency groups of any graph: a traced zoo model (ResNet-20's filters)
 * or an imported ONNX model. Each prunable group of depgroups.ts is one population with one mass;
 * groups of one family (the same producer weights) form one layer, where the fitness is normalized
 * and the dynamics conserve mass, as for a Sequential network's layers.
 *
 * Where the mass acts: after every node that holds a row or an entry of the group, i.e. every
 * conv / linear that makes its channels (depthwise ones too) and every BatchNorm on its way; a
 * producer whose only reader is its BatchNorm is scaled after that BatchNorm. So a residual group
 * is scaled where each of its producers makes it (the stem's and each block's conv2 + BN), the sums
 * carry the same scale, and an extinct group (m = 0) is exactly zero everywhere: between these
 * points the group passes only ops that keep zeros (depgroups' prunability). Folding a mass into a
 * point is exact (m BN(x) is BN with weight and bias times m, m (Wx + b) is (mW)x + mb), which is
 * how graph-physical.ts makes the smaller model.
 *
 * The model runs a copy of its graph with one `mul` after each point, reading a per-forward scale
 * (the masses gathered per channel: [1, C, 1, 1], or per example [B, C, 1, 1] under the 'grad'
 * probe, whose leaf is each layer's [B, n] masses; its grad is dL/dm per example).
 */
import { ArgumentError, ConfigError } from '../../core/errors.js';
import { analyseGraph, type DependencyGraph, type Ref } from '../../graph/depgroups.js';
import { Graph, type Value } from '../../graph/ir.js';
import { GraphModule, runGraph } from '../../graph/run.js';
import { Module } from '../../nn/module.js';
import { noGrad } from '../../tensor/autograd.js';
import { cat, ones, tensor } from '../../tensor/creation.js';
import { keep, tidy } from '../../tensor/scope.js';
import type { Tensor } from '../../tensor/tensor.js';
import { TokenPopulation } from './heads.js';

/** One layer of channel populations: the prunable groups of one family. */
export class ChannelPopulation extends TokenPopulation {
  readonly kind = 'channels' as const;
  /** `groups[i]`: the dependency group of population i; `rows[i]`: its producer rows. */
  constructor(readonly groups: number[], readonly rows: Ref[][], private readonly weights: () => Record<string, Tensor>) {
    super();
    this.initMass(groups.length);
  }
  forward(): Tensor { throw new ArgumentError('ChannelPopulation: its masses act inside its ChannelPopulationModel'); }
  /** L2 norm of each group's producer rows (all its producers together), [n]. */
  incomingNorms(): Tensor {
    const w = this.weights();
    const sq = new Map<string, number[]>();
    const out = new Float32Array(this.size);
    this.rows.forEach((refs, i) => {
      let s = 0;
      for (const r of refs) {
        let rs = sq.get(r.param);
        if (!rs) sq.set(r.param, (rs = tidy(() => noGrad(() => w[r.param].flatten(1).square().sum(1)).dataSync())));
        for (let k = r.start; k < r.start + r.length; k++) s += rs[k];
      }
      out[i] = Math.sqrt(s);
    });
    return tensor(out);
  }
}

/** Holds the population layers (module path `channels.<layer>`). */
class Populations extends Module {
  forward(): Tensor { throw new ArgumentError('channel populations: a holder, never run'); }
  add(name: string, p: ChannelPopulation): ChannelPopulation { return this.registerModule(name, p); }
}

/** A value of the graph scaled by the masses: column of each element of dim 1 in the mass table. */
interface Point { value: number; name: string; columns: number[]; ndim: number; node: number }

const isScaler = (op: string) => op === 'conv2d' || op === 'linear' || op === 'batchNorm';

/** A Module whose forward is its graph with the masses of its channel groups applied (see the file comment). */
export class ChannelPopulationModel extends GraphModule {
  readonly dep: DependencyGraph;
  readonly layers: ChannelPopulation[] = [];
  readonly points: Point[] = [];
  private readonly scaled: Graph;
  private readonly probed: Graph;
  private readonly index = new Map<string, Tensor[]>();

  constructor(graph: Graph, state: Record<string, Tensor>, modelName = 'model') {
    super(graph, state);
    this.dep = analyseGraph(graph);
    const families = new Map<string, number[]>();
    for (const g of this.dep.groups) if (g.prunable) families.set(g.family, [...(families.get(g.family) ?? []), g.id]);
    if (families.size === 0) {
      throw new ConfigError(`model: '${modelName}' has no prunable channel group (${this.dep.groups.map((g) => g.reason).filter(Boolean)[0] ?? 'no conv or linear layer between others'})`, [{ path: 'model', message: 'no channel group' }]);
    }
    if (this._children.has('channels') || this._params.has('channels') || this._buffers.has('channels')) throw new ConfigError(`model: '${modelName}' has its own 'channels' module; the channel populations need that name`, [{ path: 'model', message: "'channels' taken" }]);
    const holder = this.registerModule('channels', new Populations());
    const column = new Map<number, number>();
    const used = new Set<string>();
    for (const ids of families.values()) {
      const g0 = this.dep.groups[ids[0]];
      // Named by its first producer in graph order ('layers.3.conv2.weight' -> 'layers_3_conv2').
      const first = graph.nodes.find((n) => (n.op === 'conv2d' || n.op === 'linear') && g0.rows.some((r) => r.param === n.inputs[1]?.name))?.inputs[1]?.name ?? g0.rows[0].param;
      let name = first.replace(/\.weight$/, '').replace(/[^A-Za-z0-9_]/g, '_'), k = 2;
      while (used.has(name)) name = `${first.replace(/[^A-Za-z0-9_]/g, '_')}_${k++}`;
      used.add(name);
      for (const id of ids) column.set(id, column.size);
      this.layers.push(holder.add(name, new ChannelPopulation(ids, ids.map((id) => this.dep.groups[id].rows), () => this.stateDict())));
    }
    const ONES = column.size; // the column of ones: channels that are no population
    for (const n of graph.nodes) {
      if (!isScaler(n.op)) continue;
      const out = n.outputs[0];
      const s = this.dep.slots.get(out.id);
      if (!s || !s.groups.some((g) => column.has(g))) continue;
      // A producer read only by its BatchNorm is scaled after that BatchNorm.
      if (n.op !== 'batchNorm' && out.users.length === 1 && out.users[0].op === 'batchNorm' && out.users[0].inputs[0] === out) continue;
      const columns: number[] = [];
      for (const g of s.groups) for (let b = 0; b < s.block; b++) columns.push(column.get(g) ?? ONES);
      this.points.push({ value: out.id, name: `evo_scale.${this.points.length}`, columns, ndim: out.shape.length, node: n.id });
    }
    this.scaled = withScales(graph, this.points, false);
    this.probed = withScales(graph, this.points, true);
  }

  override get typeName(): string { return 'ChannelPopulationModel'; }

  /** Populations per layer path (`channels.<layer>`), in order. */
  get populationCounts(): Record<string, number> {
    return Object.fromEntries(this.namedModules().filter(([, m]) => m instanceof ChannelPopulation).map(([n, m]) => [n, (m as ChannelPopulation).size]));
  }

  private indices(device: string): Tensor[] {
    let t = this.index.get(device);
    if (!t) {
      t = this.points.map((p) => keep(tensor(BigInt64Array.from(p.columns, (c) => BigInt(c)), { shape: [p.columns.length], device }))); // kept: they outlive the forward's scope
      this.index.set(device, t);
    }
    return t;
  }

  override forward(x: Tensor): Tensor {
    const B = x.shape[0];
    const perExample = this.layers.some((l) => l.training && l.probe === 'grad');
    const acts = this.layers.some((l) => (l.training && l.probe === 'activation') || l.onActivation);
    const R = perExample ? B : 1;
    const cols = this.layers.map((l) => {
      const n = l.size;
      if (l.training && l.probe === 'grad') {
        const leaf = noGrad(() => l.mass.view(1, n).repeat(B, 1)).requiresGrad_(true); // [B, n]
        l.lastLeaf = leaf;
        return leaf;
      }
      return perExample ? l.mass.view(1, n).expand(B, n) : l.mass.view(1, n);
    });
    cols.push(ones([R, 1], { dtype: this.layers[0].mass.dtype, device: this.layers[0].mass.device }));
    const table = cat(cols, 1); // [R, populations + 1]
    const state = this.stateDict();
    const idx = this.indices(table.device);
    this.points.forEach((p, k) => {
      state[p.name] = table.indexSelect(1, idx[k]).view([R, p.columns.length, ...Array<number>(p.ndim - 2).fill(1)]); // [R, C, 1, 1]
    });
    const outs = runGraph(acts ? this.probed : this.scaled, state, [x], { training: this.training });
    if (acts) this.recordActivations(outs.slice(1), B);
    return outs[0];
  }

  /** Mean |a| per population over batch, positions and its points (a: the values before scaling); frees them. */
  private recordActivations(pre: Tensor[], batch: number): void {
    const total = this.layers.reduce((s, l) => s + l.size, 0);
    const sum = new Float64Array(total + 1), count = new Float64Array(total + 1);
    pre.forEach((a, k) => {
      const dims = Array.from({ length: a.ndim }, (_, i) => i).filter((i) => i !== 1);
      const m = noGrad(() => a.abs().mean(dims)).dataSync(); // [C]
      a.dispose();
      this.points[k].columns.forEach((c, j) => { sum[c] += m[j]; count[c] += 1; });
    });
    let off = 0;
    for (const l of this.layers) {
      const mean = new Float32Array(l.size);
      for (let i = 0; i < l.size; i++) mean[i] = count[off + i] ? sum[off + i] / count[off + i] : 0;
      off += l.size;
      if (l.training && l.probe === 'activation') l.lastActMean = tensor(mean, { device: l.mass.device });
      if (l.onActivation) {
        const m = l.mass.dataSync();
        l.onActivation(tensor(mean.map((v, i) => v * m[i]), { device: l.mass.device }), batch);
      }
    }
  }

  override dispose(): void {
    for (const ts of this.index.values()) for (const t of ts) t.dispose();
    this.index.clear();
    super.dispose();
  }
}

/**
 * A copy of `g` with `value * evo_scale.k` after each point (the scale a buffer given per forward);
 * `probes` adds the unscaled values as extra outputs. Constants are shared with `g` (the copy is never disposed).
 */
function withScales(g: Graph, points: Point[], probes: boolean): Graph {
  const h = new Graph();
  h.tracedBatch = g.tracedBatch;
  const map = new Map<number, Value>();
  for (const v of g.values) {
    if (v.kind === 'op') continue;
    const w = h.addValue(v.kind, v.name, v.shape, v.dtype);
    if (v.data) w.data = v.data;
    map.set(v.id, w);
  }
  const at = new Map(points.map((p) => [p.value, p]));
  const pre: Value[] = [];
  for (const n of g.nodes) {
    const node = h.addNode(n.op, n.inputs.map((i) => (i ? map.get(i.id)! : null)), n.attrs, n.outputs.map((o) => ({ shape: o.shape, dtype: o.dtype })), n.module);
    n.outputs.forEach((o, k) => {
      node.outputs[k].name = o.name;
      map.set(o.id, node.outputs[k]);
      const p = at.get(o.id);
      if (!p) return;
      const s = h.addValue('buffer', p.name, [1, p.columns.length, ...Array<number>(p.ndim - 2).fill(1)], o.dtype);
      const mul = h.addNode('mul', [node.outputs[k], s], {}, [{ shape: o.shape, dtype: o.dtype }], n.module);
      pre.push(node.outputs[k]);
      map.set(o.id, mul.outputs[0]);
    });
  }
  h.outputs = [...g.outputs.map((v) => map.get(v.id)!), ...(probes ? pre : [])];
  return h;
}

/** The model is EVO-POP over channel groups. */
export const isChannelPopulationModel = (m: Module): m is ChannelPopulationModel => m instanceof ChannelPopulationModel;
