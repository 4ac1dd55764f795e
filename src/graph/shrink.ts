/**
 * Physical shrinking: from a model and its structured masks, a smaller graph whose outputs equal
 * the masked model's. A channel is removed when every producer row of its dependency group
 * (depgroups.ts) is masked out; then its rows, biases, BatchNorm entries and the readers' input
 * columns leave their tensors, and the ops that name channel counts (a channel pad, a channel
 * slice, a reshape, a depthwise conv's groups) are rewritten. Kept weights keep their masks' zeros.
 *
 * The masks' companions (biases, BatchNorm weight and bias) are implied: a removed channel's are
 * removed too, as PruneTarget's structured masks already zero them. The result is a graph (JSON)
 * plus a state dict, run by GraphModule without the original model's code.
 */
import { ArgumentError, ShapeError, TopiaryError } from '../core/errors.js';
import type { Module } from '../nn/module.js';
import { tensor } from '../tensor/creation.js';
import { keep, tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { analyseGraph, type ChannelGroup, type DependencyGraph, type Ref } from './depgroups.js';
import type { Dim, GraphJSON } from './ir.js';
import { GraphModule, graphFromJSONWithData } from './run.js';
import { trace } from './trace.js';

/** Structured masks by parameter name (bool or 0/1 tensors of the parameter's shape), or anything with a `masks` map. */
export type MaskInput = ReadonlyMap<string, Tensor> | Record<string, Tensor> | { masks: ReadonlyMap<string, Tensor> };

export interface ShrinkResult {
  /** The smaller graph, JSON form (graphFromJSON reads it). */
  graph: GraphJSON;
  /** Its parameters and buffers by dot path (owned by the caller). */
  state: Record<string, Tensor>;
  /** Groups removed, and channels kept / total per producer weight. */
  removedGroups: number[];
  layers: { name: string; channels: number; kept: number }[];
}

/** A mask that cannot become a smaller model (coupled channels split, a layer emptied, a channel that must stay). */
export class ShrinkError extends TopiaryError {
  override readonly code = 'SHRINK_ERROR';
}

function maskMap(m: MaskInput): Map<string, Tensor> {
  if (m instanceof Map) return new Map(m);
  if (m && typeof m === 'object' && 'masks' in m && m.masks instanceof Map) return new Map(m.masks);
  return new Map(Object.entries(m as Record<string, Tensor>));
}

const shapeOf = (s: Dim[]) => s.map((d) => (d === 'N' ? 1 : d));
const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** For each mask given, which rows (dim 0) it removes entirely. */
function removedRows(masks: Map<string, Tensor>, params: Map<string, Tensor>): Map<string, boolean[]> {
  const out = new Map<string, boolean[]>();
  for (const [name, m] of masks) {
    const p = params.get(name);
    if (!p) throw new ShrinkError(`shrink: mask for '${name}': the model has no parameter of that name`);
    if (!same(m.shape, p.shape)) throw new ShapeError(`shrink: mask for '${name}' has shape [${m.shape}], the parameter [${p.shape}]`);
    if (p.ndim === 0) continue;
    const alive = tidy(() => m.ne(0).reshape(p.shape[0], -1).to('float32').sum(1).dataSync());
    out.set(name, alive.map((a) => a === 0));
  }
  return out;
}

/** The groups to remove, checked: coupled channels go together, and only prunable groups go. */
export function groupsToRemove(dep: DependencyGraph, masks: Map<string, Tensor>, params: Map<string, Tensor>): Set<number> {
  const rowsGone = removedRows(masks, params);
  const removed = new Set<number>();
  const ownerOf = new Map<string, ChannelGroup>();
  for (const g of dep.groups) for (const r of g.rows) ownerOf.set(`${r.param}#${r.start}`, g);
  // Only the weights of rows (conv / linear) decide; 1-d masks (companions) follow their group.
  for (const [name, gone] of rowsGone) {
    if (params.get(name)!.ndim < 2) continue;
    gone.forEach((isGone, i) => {
      if (!isGone) return;
      const g = ownerOf.get(`${name}#${i}`);
      if (!g) return; // not a producer in the graph (an unused weight)
      if (!g.prunable) throw new ShrinkError(`shrink: the mask removes channel ${i} of '${name}', which cannot be removed: ${g.reason}`);
      removed.add(g.id);
    });
  }
  for (const id of removed) {
    const g = dep.groups[id];
    for (const r of g.rows) {
      const gone = rowsGone.get(r.param)?.[r.start];
      if (!gone) {
        const first = g.rows.find((x) => rowsGone.get(x.param)?.[x.start])!;
        throw new ShrinkError(`shrink: the mask removes channel ${first.start} of '${first.param}' but keeps channel ${r.start} of '${r.param}', which is coupled to it (one dependency group: ${g.family})`);
      }
    }
  }
  return removed;
}

/** Kept indices along each axis of each state tensor. */
function keptIndices(dep: DependencyGraph, removed: Set<number>): Map<string, Map<number, Set<number>>> {
  const drop = new Map<string, Map<number, Set<number>>>();
  const add = (r: Ref) => {
    let axes = drop.get(r.param);
    if (!axes) drop.set(r.param, (axes = new Map()));
    let s = axes.get(r.axis);
    if (!s) axes.set(r.axis, (s = new Set()));
    for (let i = r.start; i < r.start + r.length; i++) s.add(i);
  };
  for (const id of removed) { const g = dep.groups[id]; [...g.rows, ...g.entries, ...g.cols].forEach(add); }
  return drop;
}

const idx = (a: number[], device: string) => tensor(BigInt64Array.from(a, (v) => BigInt(v)), { shape: [a.length], device });

/**
 * Shrink a traced graph given the model's tensors and masks. `state` are the model's parameters and
 * buffers by name (not changed); the result's tensors are new.
 */
export function shrinkGraph(dep: DependencyGraph, state: Map<string, Tensor>, masksIn: MaskInput): ShrinkResult {
  const masks = maskMap(masksIn);
  const removed = groupsToRemove(dep, masks, state);
  const g = dep.graph;
  const json = g.toJSON();
  // Channels kept per value; a value left with none is refused, naming the layer.
  for (const v of g.values) {
    const s = dep.slots.get(v.id);
    if (!s) continue;
    const kept = s.groups.filter((id) => !removed.has(id)).length;
    if (kept === 0) {
      const maker = v.producer ? `'${v.producer.op}'${v.producer.module ? ` at '${v.producer.module}'` : ''}` : `'${v.name}'`;
      const w = v.producer?.inputs[1];
      throw new ShrinkError(`shrink: the mask removes every channel of ${w && (v.producer!.op === 'conv2d' || v.producer!.op === 'linear') ? `'${w.name}'` : maker} (${s.groups.length} of ${s.groups.length})`);
    }
    if (kept !== s.groups.length) json.values[v.id].shape = v.shape.map((d, i) => (i === 1 ? kept * s.block : d));
  }
  // Ops whose attributes count channels.
  for (const n of g.nodes) {
    const jn = json.nodes[n.id];
    const x = n.inputs[0];
    const out = n.outputs[0];
    const os = dep.slots.get(out.id);
    const changed = (id: number) => dep.slots.get(id)?.groups.some((gid) => removed.has(gid)) ?? false;
    if (!os || !(changed(out.id) || (x && changed(x.id)))) continue;
    const keptIn = (from: number, to: number, ids: number[]) => ids.slice(from, to).filter((id) => !removed.has(id)).length;
    if (n.op === 'pad') {
      const pads = [...(n.attrs.pads as number[])];
      const k = 2 * (x!.shape.length - 2);
      const zero = dep.padZero.get(out.id)!;
      const before = zero.indexOf(false) === -1 ? zero.length : zero.indexOf(false);
      const after = zero.length - 1 - zero.lastIndexOf(false);
      if (k < pads.length) pads[k] = keptIn(0, before, os.groups);
      if (k + 1 < pads.length) pads[k + 1] = keptIn(os.groups.length - after, os.groups.length, os.groups);
      jn.attrs = { ...n.attrs, pads };
    } else if (n.op === 'slice' && ((n.attrs.dim as number) === 1 || (n.attrs.dim as number) === 1 - x!.shape.length)) {
      const xs = dep.slots.get(x!.id)!;
      const start = (n.attrs.start as number | null) ?? 0;
      const s2 = keptIn(0, start, xs.groups);
      jn.attrs = { ...n.attrs, start: s2, end: s2 + os.groups.filter((id) => !removed.has(id)).length };
    } else if (n.op === 'reshape') {
      const shape = [...(n.attrs.shape as number[])];
      if (shape.length > 1 && shape[1] !== -1) shape[1] = json.values[out.id].shape[1] as number;
      jn.attrs = { ...n.attrs, shape };
    } else if (n.op === 'conv2d' && (n.attrs.groups as number) !== 1) {
      jn.attrs = { ...n.attrs, groups: os.groups.filter((id) => !removed.has(id)).length };
    }
  }
  const drop = keptIndices(dep, removed);
  const outState: Record<string, Tensor> = {};
  try {
    for (const v of g.state) {
      const t = state.get(v.name);
      if (!t) throw new ShrinkError(`shrink: the graph reads '${v.name}', which the model does not hold`);
      outState[v.name] = keep(tidy(() => {
        let y = t.detach();
        const m = masks.get(v.name);
        if (m) y = y.mul(m.to(y.dtype));
        for (const [axis, gone] of drop.get(v.name) ?? []) {
          const n = y.shape[axis];
          y = y.indexSelect(axis, idx(Array.from({ length: n }, (_, i) => i).filter((i) => !gone.has(i)), y.device));
        }
        return y.contiguous();
      }));
      json.values[v.id].shape = outState[v.name].shape;
    }
  } catch (e) {
    for (const t of Object.values(outState)) t.dispose();
    throw e;
  }
  const layers: ShrinkResult['layers'] = [];
  for (const n of g.nodes) {
    if (n.op !== 'conv2d' && n.op !== 'linear') continue;
    const w = n.inputs[1]!;
    layers.push({ name: w.name, channels: shapeOf(w.shape)[0], kept: outState[w.name]?.shape[0] ?? shapeOf(w.shape)[0] });
  }
  return { graph: json, state: outState, removedGroups: [...removed].sort((a, b) => a - b), layers };
}

/** Trace `model` (eval mode) and shrink it under `masks`. */
export function shrinkModel(model: Module, masks: MaskInput, o: { inputShape: number[] }): ShrinkResult & { dependencies: DependencyGraph } {
  if (!o?.inputShape) throw new ArgumentError('shrink: needs { inputShape } (one example, e.g. [3, 32, 32])');
  const dep = analyseGraph(trace(model, { inputShape: o.inputShape }));
  try {
    const state = new Map<string, Tensor>([...model.namedParameters(), ...model.namedBuffers()]);
    return { ...shrinkGraph(dep, state, masks), dependencies: dep };
  } catch (e) {
    dep.graph.dispose();
    throw e;
  }
}

/**
 * The physically smaller model: a GraphModule (runs without the original model's code) whose
 * outputs equal the masked model's in eval mode. Save it with saveGraphModule(gm, 'dir/model.shrunk').
 */
export function shrink(model: Module, masks: MaskInput, o: { inputShape: number[] }): GraphModule {
  const r = shrinkModel(model, masks, o);
  r.dependencies.graph.dispose();
  try {
    return new GraphModule(graphFromJSONWithData(r.graph), r.state);
  } finally {
    for (const t of Object.values(r.state)) t.dispose();
  }
}
