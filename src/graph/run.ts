/**
 * The interpreter: a graph runs itself on topiary's ops, with a state dict for its parameters and
 * buffers. `GraphModule` is a Module backed by a graph (torch.fx's GraphModule): its parameters
 * keep the graph's dot-path names, so state dicts, optimizers, masks and checkpoints work on it
 * as on the module it was traced from. An imported or shrunk model is a GraphModule.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { DType } from '../core/dtype.js';
import { ArgumentError, SerializationError, ShapeError } from '../core/errors.js';
import { call } from '../core/binding.js';
import { Conv2d } from '../nn/layers.js';
import { autoSparseConv2d } from '../nn/sparse/conv.js';
import { autoSparseLinear } from '../nn/sparse/linear.js';
import { autoSparseChain } from '../nn/sparse/chain.js';
import { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { tensor } from '../tensor/creation.js';
import * as F from '../tensor/nn-ops.js';
import { loadSafetensors, saveSafetensors } from '../tensor/safetensors.js';
import { Tensor } from '../tensor/tensor.js';
import { cat, stack } from '../tensor/creation.js';
import { graphFromJSON, type Attrs, type Graph, type GraphJSON, type Node, type OpName } from './ir.js';
import { inModule, trace, tracing } from './trace.js';
import { foldBatchNorm, type FoldedGraph } from './fold.js';

type Pair = [number, number];
type Ins = (Tensor | null)[];
interface Ctx { training: boolean; batch: number }
/** A shape attribute with null for the batch, made concrete. */
const withBatch = (s: (number | null)[], c: Ctx) => s.map((d) => (d === null ? c.batch : d));
type Run = (x: Ins, a: Attrs, c: Ctx) => Tensor;

const num = (a: Attrs, k: string) => a[k] as number;
const unary = (f: (t: Tensor) => Tensor): Run => ([x]) => f(x!);
function binary(name: 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum'): Run {
  return ([a, b], at) => {
    const other = b ?? (at.scalar as number);
    if (name === 'add' || name === 'sub') return a![name](other, (at.alpha as number | undefined) ?? undefined);
    if (name === 'maximum' || name === 'minimum') return a![name](b!);
    return a![name](other);
  };
}

/** One function per op of ir.ts's OPS. */
export const RUN: Record<OpName, Run> = {
  // In eval mode a sparse enough weight runs through the sparse kernels, as in the Linear and Conv2d layers.
  linear: ([x, w, b], _, c) => (!c.training && autoSparseLinear(x!, w!, b)) || F.linear(x!, w!, b),
  matmul: ([a, b]) => a!.matmul(b!),
  addmm: ([c, a, b], at) => F.addmm(c!, a!, b!, num(at, 'beta'), num(at, 'alpha')),
  conv2d: ([x, w, b], at, c) => {
    const o = { stride: at.stride as Pair, padding: at.padding as Pair, dilation: at.dilation as Pair, groups: num(at, 'groups') };
    const sparse = !c.training && autoSparseConv2d(x!, w!, b, o);
    if (sparse) return sparse;
    // The same layout choice as the Conv2d layer, so a graph gives the layer's numbers exactly.
    if (Conv2d.channelsLast && w!.device === 'cpu') return F.conv2d(x!.contiguous('channels_last'), w!.contiguous('channels_last'), b, o);
    return F.conv2d(x!, w!, b, o);
  },
  batchNorm: ([x, weight, bias, runningMean, runningVar], at, c) =>
    F.batchNorm(x!, { weight, bias, runningMean, runningVar, training: c.training, eps: num(at, 'eps'), momentum: (at.momentum as number | undefined) ?? 0.1 }),
  layerNorm: ([x, w, b], at) => F.layerNorm(x!, at.normalizedShape as number[], w, b, num(at, 'eps')),
  dropout: ([x], at, c) => (c.training && num(at, 'p') > 0 ? F.dropout(x!, num(at, 'p'), true) : x!.contiguous()),
  maxPool2d: ([x], at) => F.maxPool2d(x!, at.kernel as Pair, { stride: at.stride as Pair, padding: at.padding as Pair, dilation: at.dilation as Pair, ceilMode: at.ceilMode as boolean }),
  avgPool2d: ([x], at) => F.avgPool2d(x!, at.kernel as Pair, { stride: at.stride as Pair, padding: at.padding as Pair, ceilMode: at.ceilMode as boolean, countIncludePad: at.countIncludePad as boolean }),
  adaptiveAvgPool2d: ([x], at) => F.adaptiveAvgPool2d(x!, at.outputSize as Pair),
  relu: unary((t) => t.relu()), sigmoid: unary((t) => t.sigmoid()), tanh: unary((t) => t.tanh()), gelu: unary((t) => F.gelu(t)),
  neg: unary((t) => t.neg()), abs: unary((t) => t.abs()), exp: unary((t) => t.exp()), log: unary((t) => t.log()),
  sqrt: unary((t) => t.sqrt()), rsqrt: unary((t) => t.rsqrt()), square: unary((t) => t.square()), reciprocal: unary((t) => t.reciprocal()),
  leakyRelu: ([x], at) => F.leakyRelu(x!, num(at, 'slope')),
  softmax: ([x], at) => F.softmax(x!, num(at, 'dim')),
  logSoftmax: ([x], at) => F.logSoftmax(x!, num(at, 'dim')),
  clamp: ([x], at) => x!.clamp(at.min as number | null, at.max as number | null),
  add: binary('add'), sub: binary('sub'), mul: binary('mul'), div: binary('div'), pow: binary('pow'),
  maximum: binary('maximum'), minimum: binary('minimum'),
  rsub: ([x], at) => x!.rsub(num(at, 'scalar')),
  flatten: ([x], at) => x!.flatten(num(at, 'startDim'), num(at, 'endDim')),
  reshape: ([x], at, c) => x!.reshape(withBatch(at.shape as (number | null)[], c)),
  permute: ([x], at) => x!.permute(at.dims as number[]),
  squeeze: ([x], at) => x!.squeeze((at.dim as number | null) ?? undefined),
  unsqueeze: ([x], at) => x!.unsqueeze(num(at, 'dim')),
  expand: ([x], at, c) => x!.expand(withBatch(at.shape as (number | null)[], c)),
  slice: ([x], at) => x!.slice(num(at, 'dim'), num(at, 'start'), num(at, 'end'), num(at, 'step')),
  embedding: ([w, ids]) => w!.indexSelect(0, ids!.reshape(-1)).view([...ids!.shape, ...w!.shape.slice(1)]), // [...ids, D]
  select: ([x], at) => x!.select(num(at, 'dim'), num(at, 'index')),
  pad: ([x], at) => F.pad(x!, at.pads as number[], num(at, 'value')),
  cat: (xs, at) => cat(xs as Tensor[], num(at, 'dim')),
  stack: (xs, at) => stack(xs as Tensor[], num(at, 'dim')),
  sum: ([x], at) => x!.sum(at.dims as number[] | null, at.keepdim as boolean),
  mean: ([x], at) => x!.mean(at.dims as number[] | null, at.keepdim as boolean),
};

export interface RunOptions {
  /** BatchNorm by batch statistics (updating the running ones) and dropout active. Default false. */
  training?: boolean;
}

/** Check an input against the graph's input value: same rank, sizes equal except the batch 'N'. */
function checkInput(g: Graph, x: Tensor, i: number): void {
  const want = g.inputs[i].shape, got = x.shape;
  if (got.length !== want.length || want.some((d, k) => d !== 'N' && d !== got[k])) {
    throw new ShapeError(`graph: input ${i} has shape [${got}], the graph takes [${want.join(', ')}]`);
  }
}

/**
 * Run the graph on `inputs` with `state` (dot path -> tensor, e.g. a module's stateDict()).
 * Intermediate results are freed after their last use; the outputs are returned.
 */
export function runGraph(g: Graph, state: Record<string, Tensor>, inputs: Tensor[], opts: RunOptions = {}): Tensor[] {
  if (inputs.length !== g.inputs.length) throw new ArgumentError(`graph: ${inputs.length} inputs given, the graph takes ${g.inputs.length}`);
  const env: (Tensor | undefined)[] = new Array(g.values.length);
  inputs.forEach((x, i) => { checkInput(g, x, i); env[g.inputs[i].id] = x; });
  for (const v of g.values) {
    if (v.kind === 'param' || v.kind === 'buffer') {
      if (v.users.length === 0) continue;
      const t = state[v.name];
      if (!t) throw new ArgumentError(`graph: state has no tensor '${v.name}'`);
      env[v.id] = t;
    } else if (v.kind === 'constant') env[v.id] = v.data;
  }
  const lastUse = new Array<number>(g.values.length).fill(-1);
  for (const n of g.nodes) for (const i of n.inputs) if (i) lastUse[i.id] = n.id;
  const keepIds = new Set(g.outputs.map((v) => v.id));
  const ctx: Ctx = { training: opts.training ?? false, batch: inputs[0]?.shape[0] ?? 1 };
  const traced = tracing();
  for (const n of g.nodes) {
    const ins = n.inputs.map((v) => (v === null ? null : env[v.id]!));
    let y: Tensor;
    try {
      y = traced ? inModule(n.module, () => RUN[n.op](ins, n.attrs, ctx)) : RUN[n.op](ins, n.attrs, ctx);
    } catch (e) {
      throw new ArgumentError(`graph: node ${n.id} (${n.op}${n.module ? ` at module '${n.module}'` : ''}) failed: ${(e as Error).message}`, { cause: e });
    }
    env[n.outputs[0].id] = y;
    if (ctx.training && n.op === 'batchNorm') countBatch(n, state);
    for (const v of n.inputs) {
      if (v && v.kind === 'op' && lastUse[v.id] === n.id && !keepIds.has(v.id)) env[v.id]!.dispose();
    }
  }
  return g.outputs.map((v) => env[v.id]!);
}

/** A BatchNorm layer counts its training batches; a graph does it for the buffer beside running_mean. */
function countBatch(n: Node, state: Record<string, Tensor>): void {
  const rm = n.inputs[3]?.name;
  const t = rm?.endsWith('running_mean') ? state[rm.slice(0, -'running_mean'.length) + 'num_batches_tracked'] : undefined;
  if (t) noGrad(() => t.add_(1));
}

/** A graph that is one chain [flatten] linear [relu] ... linear [relu], by parameter names. */
export interface LinearChain { flattenFrom?: number; layers: { weight: string; bias: string | null; relu: boolean }[] }

/**
 * The graph as a plain chain of Linear (+ ReLU) layers, optionally after a Flatten up to the last
 * dim (an MLP, or its shrunk form), or null: one input, one output, each intermediate read only by
 * the next node, weights and biases parameters or buffers. Such a graph can run in eval mode through
 * the fused chain (src/nn/sparse/chain.ts), as a Sequential of the same layers does.
 */
export function linearChainOf(g: Graph): LinearChain | null {
  if (g.inputs.length !== 1 || g.outputs.length !== 1 || g.nodes.length === 0) return null;
  const isState = (v: { kind: string } | null) => v !== null && (v.kind === 'param' || v.kind === 'buffer');
  const chain: LinearChain = { layers: [] };
  let cur = g.inputs[0];
  for (const [i, n] of g.nodes.entries()) {
    if (n.inputs[0] !== cur || cur.users.length !== 1 || n.outputs.length !== 1) return null;
    if (n.op === 'flatten' && i === 0) {
      const from = n.attrs['startDim'], to = n.attrs['endDim'];
      if (typeof from !== 'number' || from < 1 || (to !== -1 && to !== cur.shape.length - 1)) return null;
      chain.flattenFrom = from;
    } else if (n.op === 'linear') {
      const [, w, b] = n.inputs;
      if (!w || !isState(w) || (b && !isState(b)) || n.inputs.length > 3) return null;
      chain.layers.push({ weight: w.name, bias: b ? b.name : null, relu: false });
    } else if (n.op === 'relu' && chain.layers.length > 0 && !chain.layers[chain.layers.length - 1].relu && g.nodes[i - 1].op === 'linear') {
      chain.layers[chain.layers.length - 1].relu = true;
    } else return null;
    cur = n.outputs[0];
  }
  return chain.layers.length >= 2 && g.outputs[0] === cur ? chain : null;
}

/** Holds the parameters and buffers of one dot-path prefix; never run. */
class StateHolder extends Module {
  forward(): Tensor { throw new ArgumentError('GraphModule: a state holder has no forward'); }
  holder(name: string): StateHolder {
    const c = this._children.get(name);
    if (c) return c as StateHolder;
    return this.registerModule(name, new StateHolder());
  }
  put(name: string, t: Tensor, kind: 'param' | 'buffer'): void {
    if (kind === 'param') this.registerParameter(name, t);
    else this.registerBuffer(name, t);
  }
}

/** A Module whose forward is a graph. */
export class GraphModule extends Module {
  /**
   * `state` holds a tensor for every parameter and buffer of the graph (dot path -> tensor); the
   * module takes copies, so the caller keeps its own.
   */
  constructor(readonly graph: Graph, state: Record<string, Tensor>) {
    super();
    const root = new StateHolder();
    const missing = graph.state.filter((v) => !state[v.name]).map((v) => v.name);
    if (missing.length) throw new ArgumentError(`GraphModule: state has no tensor for ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`);
    noGrad(() => {
      for (const v of graph.state) {
        const t = state[v.name];
        const want = v.shape as number[];
        if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
          throw new ShapeError(`GraphModule: '${v.name}' has shape [${t.shape}], the graph says [${want}]`);
        }
        const parts = v.name.split('.');
        let h: StateHolder = root;
        for (const p of parts.slice(0, -1)) h = h.holder(p);
        const detached = t.detach();
        const copy = detached.clone();
        detached.dispose();
        if (v.kind === 'buffer') h.put(parts[parts.length - 1], copy, 'buffer');
        else h.put(parts[parts.length - 1], copy, 'param');
      }
    });
    // The holders' children become this module's children, so names read `features.0.weight`.
    for (const [n, c] of root.namedChildren()) this.registerModule(n, c);
    for (const [n, p] of root.namedParameters().filter(([k]) => !k.includes('.'))) this.registerParameter(n, p);
    for (const [n, b] of root.namedBuffers().filter(([k]) => !k.includes('.'))) this.registerBuffer(n, b);
  }

  /** Trace `model` and wrap the graph with a copy of its state. */
  static fromModule(model: Module, inputShape: number[]): GraphModule {
    return new GraphModule(trace(model, { inputShape }), model.stateDict());
  }

  /**
   * In eval mode, run a copy of the graph with each BatchNorm folded into the convolution before it
   * (src/graph/fold.ts; conv weights stored channels-last when Conv2d.channelsLast is on). Outputs
   * differ from the unfolded graph's by rounding (at most 1e-5 on the zoo models); off by default,
   * so that a GraphModule gives its source module's numbers exactly. The folded copy is rebuilt when
   * a parameter or buffer changes (libtorch's version counters) or is replaced.
   */
  foldBatchNorm = false;
  /** The folded copies, one per conv layout (Conv2d.channelsLast), with the state they were made from. */
  private _plans = new Map<boolean, { tensors: Tensor[]; versions: number[]; folded: FoldedGraph }>();

  /** The folded graph and state for the current parameters and layout (see foldBatchNorm). */
  private inferencePlan(): FoldedGraph {
    const state = this.stateDict();
    const tensors = this.graph.usedState().map((v) => state[v.name]);
    const versions = call('tensorVersions', tensors.map((t) => t.h)) as number[];
    const layout = Conv2d.channelsLast;
    const p = this._plans.get(layout);
    if (p && p.tensors.length === tensors.length && p.tensors.every((t, i) => t === tensors[i] && p.versions[i] === versions[i])) return p.folded;
    p?.folded.dispose();
    this._plans.delete(layout);
    const folded = foldBatchNorm(this.graph, state, { channelsLastWeights: layout });
    this._plans.set(layout, { tensors, versions, folded });
    return folded;
  }

  /** linearChainOf(this.graph), found once (undefined: not looked for yet). */
  private _chain: LinearChain | null | undefined;

  forward(x: Tensor): Tensor {
    if (!this.training && !tracing()) {
      // An MLP-shaped graph runs through the fused Linear (+ ReLU) chain in eval mode, as its
      // Sequential would (one native call instead of one per op); the chain declines (null) where
      // it does not apply (grad mode on, another dtype or device, a shape that does not chain).
      if (this._chain === undefined) this._chain = linearChainOf(this.graph);
      if (this._chain) {
        const sd = this.stateDict();
        const c = this._chain;
        const y = autoSparseChain(x, c.layers.map((l) => ({ weight: sd[l.weight], bias: l.bias ? sd[l.bias] : null, relu: l.relu })), { flattenFrom: c.flattenFrom });
        if (y) return y;
      }
    }
    if (this.foldBatchNorm && !this.training && !tracing()) {
      const p = this.inferencePlan();
      return runGraph(p.graph, p.state, [x])[0];
    }
    return runGraph(this.graph, this.stateDict(), [x], { training: this.training })[0];
  }

  override get typeName(): string { return 'GraphModule'; }

  override dispose(): void {
    for (const p of this._plans.values()) p.folded.dispose();
    this._plans.clear();
    super.dispose();
    this.graph.dispose();
  }
}

/**
 * Save a GraphModule as `<prefix>.graph.json` (the graph) and `<prefix>.safetensors` (its state),
 * each written to a temporary name and renamed, so a failed save never leaves half a file.
 */
export function saveGraphModule(gm: GraphModule, prefix: string): { graph: string; weights: string } {
  const graph = `${prefix}.graph.json`, weights = `${prefix}.safetensors`;
  const tmpW = `${weights}.tmp-${process.pid}`, tmpG = `${graph}.tmp-${process.pid}`;
  saveSafetensors(tmpW, gm.stateDict(), { format: 'pt', graph: 'topiary-graph' });
  writeFileSync(tmpG, JSON.stringify(gm.graph.toJSON()));
  renameSync(tmpW, weights);
  renameSync(tmpG, graph);
  return { graph, weights };
}

const makeConstant = (d: number[], s: number[], dt: DType) => tensor(d, { shape: s, dtype: dt });

/** Read a graph written by `saveGraphModule` (or toJSON) from its file. */
export function loadGraph(path: string): Graph {
  let j: GraphJSON;
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as GraphJSON;
  } catch (e) {
    throw new SerializationError(`${path}: not a readable graph file (${(e as Error).message})`, { cause: e });
  }
  try {
    return graphFromJSON(j, makeConstant);
  } catch (e) {
    throw new SerializationError(`${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Load `<prefix>.graph.json` + `<prefix>.safetensors` as a GraphModule. */
export function loadGraphModule(prefix: string): GraphModule {
  const g = loadGraph(`${prefix}.graph.json`);
  const { tensors } = loadSafetensors(`${prefix}.safetensors`);
  try {
    return new GraphModule(g, tensors);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

/** A graph from JSON (e.g. edited by shrink), with constants made as topiary tensors. */
export function graphFromJSONWithData(j: GraphJSON): Graph { return graphFromJSON(j, makeConstant); }
