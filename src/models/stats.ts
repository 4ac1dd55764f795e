/**
 * Parameter and FLOP counts, dense and nonzero. FLOPs are counted as multiply-accumulates of the
 * convolutions and linear layers for one input (the convention of the pruning literature: ResNet-56
 * is "125 M FLOPs"). Nonzero FLOPs scale each layer's count by its weight density. The counts come
 * from the traced graph (src/graph/flops.ts) when the model traces, else from forward hooks.
 * Attention (kind 'attention', self-attention over L tokens of width D, inner width I = heads x
 * head width) counts its input projection L*3I*D and its two products q k^T and weights v, 2*L*L*I;
 * its output projection is a Linear and counts as one.
 */
import { Conv2d, Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { MultiheadAttention } from '../nn/transformer.js';
import { noGrad } from '../tensor/autograd.js';
import { zeros } from '../tensor/creation.js';
import { tidy } from '../tensor/scope.js';
import { graphStats } from '../graph/flops.js';
import { trace, TraceError } from '../graph/trace.js';

export interface LayerStats { name: string; kind: 'linear' | 'conv' | 'attention'; params: number; nonzero: number; macs: number }
export interface ModelStats { params: number; nonzeroParams: number; flops: number; nonzeroFlops: number; layers: LayerStats[] }

export function countNonzero(t: { countNonzero(): { item(): number; dispose(): void } }): number {
  const c = t.countNonzero();
  const v = c.item();
  c.dispose();
  return v;
}

type Kind = LayerStats['kind'];
type MacMap = Map<string, { kind: Kind; macs: number }>;

/**
 * MACs per layer (by module path) from the traced graph, or null when the model cannot be traced
 * or holds attention (then forward hooks count them, as before the graph existed).
 */
function graphMacs(model: Module, inputShape: number[]): MacMap | null {
  if (model.modules().some((m) => m instanceof MultiheadAttention)) return null;
  let g;
  try {
    g = trace(model, { inputShape, batch: 1 });
  } catch (e) {
    if (e instanceof TraceError) return null;
    throw e;
  }
  try {
    return new Map(graphStats(g).layers.map((l) => [l.name, { kind: l.kind, macs: l.macs }]));
  } finally {
    g.dispose();
  }
}

function hookMacs(model: Module, inputShape: number[]): MacMap {
  const macs: MacMap = new Map();
  const add = (name: string, kind: Kind, n: number) => macs.set(name, { kind, macs: (macs.get(name)?.macs ?? 0) + n });
  const removers = model.namedModules().filter(([, m]) => m instanceof Linear || m instanceof Conv2d || m instanceof MultiheadAttention).map(([name, m]) =>
    m.registerForwardHook((mod, x, y) => {
      if (mod instanceof MultiheadAttention) {
        const L = x.shape[1], D = mod.embedDim, I = mod.innerDim;
        add(name, 'attention', L * 3 * I * D + 2 * L * L * I);
        return;
      }
      const w = (mod as Linear | Conv2d).weight;
      const perOut = w.shape.slice(1).reduce((a, b) => a * b, 1); // in (/groups) * kh * kw
      const outs = y.shape.slice(1).reduce((a, b) => a * b, 1); // outputs per example
      add(name, mod instanceof Linear ? 'linear' : 'conv', perOut * outs);
    }));
  const wasTraining = model.training;
  model.eval();
  try {
    // The block returns nothing, so tidy frees the output too (returning it would leak one tensor per call).
    tidy(() => { noGrad(() => model.call(zeros([1, ...inputShape]))); });
  } finally {
    removers.forEach((r) => r());
    model.train(wasTraining);
  }
  return macs;
}

/** The weight a layer's counts are of: `<path>.weight`, or an attention's `<path>.in_proj_weight`. */
const weightName = (path: string, kind: Kind) => {
  const leaf = kind === 'attention' ? 'in_proj_weight' : 'weight';
  return path ? `${path}.${leaf}` : leaf;
};

/**
 * Counts for a model on inputs of `inputShape` (one example). Layers are the weights of linear
 * layers, convolutions and attention, named by their module path, in module order; a GraphModule
 * (a shrunk or imported model) has them too, read from its graph.
 */
export function modelStats(model: Module, inputShape: number[]): ModelStats {
  const macs = graphMacs(model, inputShape) ?? hookMacs(model, inputShape);
  const params = new Map(model.namedParameters());
  // A layer that never ran counts 0 MACs.
  for (const [name, m] of model.namedModules()) {
    if (macs.has(name)) continue;
    if (m instanceof Linear || m instanceof Conv2d) macs.set(name, { kind: m instanceof Linear ? 'linear' : 'conv', macs: 0 });
    else if (m instanceof MultiheadAttention) macs.set(name, { kind: 'attention', macs: 0 });
  }
  const order = new Map(model.namedModules().map(([n], i) => [n, i]));
  const names = [...macs.keys()].filter((n) => params.has(weightName(n, macs.get(n)!.kind)));
  names.sort((a, b) => (order.get(a) ?? Infinity) - (order.get(b) ?? Infinity));
  const layers: LayerStats[] = [];
  let nParams = 0, nonzeroParams = 0, flops = 0, nonzeroFlops = 0;
  for (const [, p] of params) {
    nParams += p.numel;
    nonzeroParams += countNonzero(p);
  }
  for (const name of names) {
    const { kind, macs: mac } = macs.get(name)!;
    const w = params.get(weightName(name, kind))!;
    const nz = countNonzero(w);
    layers.push({ name, kind, params: w.numel, nonzero: nz, macs: mac });
    flops += mac;
    nonzeroFlops += w.numel ? (mac * nz) / w.numel : 0;
  }
  return { params: nParams, nonzeroParams, flops, nonzeroFlops: Math.round(nonzeroFlops), layers };
}
