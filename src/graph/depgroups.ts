/**
 * Channel dependency groups (the idea of DepGraph, Fang et al. CVPR 2023), read from a traced graph.
 *
 * Every value with a channel axis (dim 1 of [N, C, ...] and of [N, F]) gets one slot per channel;
 * ops pass slots along or merge them (union-find): a conv or linear makes fresh slots for its output
 * rows; BatchNorm, activations and pooling pass them through; a residual `add` merges its operands'
 * slots channel by channel; a channel `cat` lines them up; option-A shortcuts (a strided spatial
 * slice, then a zero `pad` on the channel axis) shift them and bring constant-zero slots. A group is
 * the set of merged slots: removing it removes the producers' rows (and biases), the BatchNorm
 * entries on the way, and the readers' input columns, all at once. Rules per op: docs/methods/structured.md.
 *
 * A group is prunable when it has producer rows, touches neither the model's input nor its output,
 * passes only through ops the analysis understands, and stays exactly zero once its producers (and
 * BatchNorm entries) are masked, so that the masked model computes what the shrunk one does.
 */
import { ArgumentError } from '../core/errors.js';
import type { Module } from '../nn/module.js';
import type { Dim, Graph, Node, Value } from './ir.js';
import { trace } from './trace.js';

/** A range of one parameter or buffer along one axis: rows (axis 0), input columns (axis 1), or entries. */
export interface Ref { param: string; axis: number; start: number; length: number }

export interface ChannelGroup {
  id: number;
  /** Output rows of the conv / linear weights that make the channel (axis 0, one row each). */
  rows: Ref[];
  /** Entries that go with the channel: biases, BatchNorm weight, bias and running statistics. */
  entries: Ref[];
  /** Input columns of the layers that read the channel (a Linear after Flatten reads H*W of them). */
  cols: Ref[];
  /** Where the channel lives: value name and channel index, for every value it passes through. */
  channels: { value: string; index: number }[];
  prunable: boolean;
  /** Why not, when not prunable (the first reason met). */
  reason?: string;
  /** The producer weights, sorted and joined by ',': groups of one family are one "layer" for per-layer scope. */
  family: string;
}

export interface DependencyGraph {
  graph: Graph;
  groups: ChannelGroup[];
  /** Per value id with a channel axis: the group id of each channel, and features per channel (H*W after Flatten). */
  slots: Map<number, { groups: number[]; block: number }>;
  /** Per value id: which channels are constant zeros made by a pad (option-A shortcuts). */
  padZero: Map<number, boolean[]>;
}

const ZERO_PRESERVING = new Set(['relu', 'tanh', 'gelu', 'neg', 'abs', 'sqrt', 'square', 'leakyRelu', 'maxPool2d', 'avgPool2d', 'adaptiveAvgPool2d']);
const NONZERO = new Set(['sigmoid', 'exp', 'log', 'rsqrt', 'reciprocal']);

class UnionFind {
  parent: number[] = [];
  make(): number { this.parent.push(this.parent.length); return this.parent.length - 1; }
  find(a: number): number {
    while (this.parent[a] !== a) { this.parent[a] = this.parent[this.parent[a]]; a = this.parent[a]; }
    return a;
  }
  union(a: number, b: number): void { const ra = this.find(a), rb = this.find(b); if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb); }
}

interface Slots { ids: number[]; block: number }
const isAct = (v: Value | null): v is Value => v !== null && (v.kind === 'op' || v.kind === 'input');
const isState = (v: Value | null): v is Value => v !== null && (v.kind === 'param' || v.kind === 'buffer');
const ndimOf = (v: Value) => v.shape.length;
const size = (d: Dim) => (d === 'N' ? 1 : d);
const where = (n: Node) => `'${n.op}'${n.module ? ` at '${n.module}'` : ''}`;

/** Analyse a traced graph. */
export function analyseGraph(graph: Graph): DependencyGraph {
  const uf = new UnionFind();
  const slots = new Map<number, Slots>();
  const padZero = new Map<number, boolean[]>();
  const rows: [number, Ref][] = [], entries: [number, Ref][] = [], cols: [number, Ref][] = [];
  const blocked: [number, string][] = [], nonzero: [number, string][] = [];
  const block = (s: Slots | undefined, why: string) => s?.ids.forEach((i) => blocked.push([i, why]));
  const taint = (s: Slots | undefined, why: string) => s?.ids.forEach((i) => nonzero.push([i, why]));
  const fresh = (c: number, blockSize = 1): Slots => ({ ids: Array.from({ length: c }, () => uf.make()), block: blockSize });
  const channelsOf = (v: Value) => (ndimOf(v) >= 2 ? size(v.shape[1]) : 0);
  const get = (v: Value | null) => (v ? slots.get(v.id) : undefined);
  const set = (v: Value, s: Slots) => { if (ndimOf(v) >= 2) slots.set(v.id, s); };
  const opaque = (n: Node, why: string) => {
    for (const i of n.inputs) if (isAct(i)) block(get(i), why);
    for (const o of n.outputs) if (ndimOf(o) >= 2) { const s = fresh(channelsOf(o)); block(s, why); set(o, s); }
  };
  const pass = (n: Node, s: Slots | undefined) => { if (s) set(n.outputs[0], s); };

  for (const v of graph.inputs) { const s = fresh(channelsOf(v)); block(s, 'the model input'); set(v, s); }
  for (const n of graph.nodes) {
    const [x] = n.inputs;
    const xs = get(x);
    const out = n.outputs[0];
    const a = n.attrs;
    switch (n.op) {
      case 'conv2d':
      case 'linear': {
        const [, w, b] = n.inputs;
        if (!xs || !isState(w) || (b !== null && !isState(b))) { opaque(n, `${where(n)} with a computed weight`); break; }
        const groups = (a.groups as number | undefined) ?? 1;
        if (n.op === 'linear' && ndimOf(x!) !== 2) { opaque(n, `${where(n)} on a ${ndimOf(x!)}-d input`); break; }
        if (groups !== 1) {
          // Depthwise: output channel i is input channel i, filtered by row i.
          if (groups !== xs.ids.length || size(w.shape[0]) !== groups) { opaque(n, `${where(n)}: grouped convolution`); break; }
          xs.ids.forEach((s, i) => { rows.push([s, { param: w.name, axis: 0, start: i, length: 1 }]); if (b) entries.push([s, { param: b.name, axis: 0, start: i, length: 1 }]); });
          pass(n, xs);
          break;
        }
        xs.ids.forEach((s, c) => cols.push([s, { param: w.name, axis: 1, start: c * xs.block, length: xs.block }]));
        const o = fresh(size(w.shape[0]));
        o.ids.forEach((s, i) => { rows.push([s, { param: w.name, axis: 0, start: i, length: 1 }]); if (b) entries.push([s, { param: b.name, axis: 0, start: i, length: 1 }]); });
        set(out, o);
        break;
      }
      case 'batchNorm': {
        if (!xs) { opaque(n, where(n)); break; }
        const [, w, b, m, v] = n.inputs;
        if (!w || !b) taint(xs, `${where(n)} without affine parameters`);
        for (const p of [w, b, m, v]) if (isState(p)) xs.ids.forEach((s, c) => entries.push([s, { param: p.name, axis: 0, start: c * xs.block, length: xs.block }]));
        pass(n, xs);
        break;
      }
      case 'clamp':
        if (!((a.min === null || (a.min as number) <= 0) && (a.max === null || (a.max as number) >= 0))) taint(xs, `${where(n)} away from zero`);
        pass(n, xs);
        break;
      case 'softmax': case 'logSoftmax': {
        const d = (a.dim as number) < 0 ? (a.dim as number) + ndimOf(x!) : (a.dim as number);
        if (d === 1) { opaque(n, `${where(n)} over channels`); break; }
        taint(xs, where(n));
        pass(n, xs);
        break;
      }
      case 'add': case 'sub': case 'mul': case 'div': case 'maximum': case 'minimum': case 'pow': case 'rsub':
        binaryOp(n);
        break;
      case 'flatten': {
        if (!xs) { opaque(n, where(n)); break; }
        const s0 = a.startDim as number, e0 = a.endDim as number;
        const d = ndimOf(x!);
        if (s0 >= 2 || d === 2 || s0 === e0) pass(n, xs);
        else if (s0 === 1 && e0 === d - 1) set(out, { ids: xs.ids, block: xs.block * x!.shape.slice(2).reduce<number>((p, q) => p * size(q), 1) });
        else opaque(n, `${where(n)} over dims ${s0}..${e0}`);
        break;
      }
      case 'reshape': {
        if (!xs) { opaque(n, where(n)); break; }
        const same = out.shape.length === x!.shape.length && out.shape.every((q, i) => q === x!.shape[i]);
        const flatLike = ndimOf(out) === 2 && ndimOf(x!) > 2;
        const unflat = ndimOf(x!) === 2 && ndimOf(out) > 2 && xs.block === 1 && out.shape[1] === x!.shape[1] && out.shape.slice(2).every((q) => q === 1);
        if (same || unflat) pass(n, xs);
        else if (flatLike) set(out, { ids: xs.ids, block: xs.block * x!.shape.slice(2).reduce<number>((p, q) => p * size(q), 1) });
        else opaque(n, `${where(n)} to [${out.shape}]`);
        break;
      }
      case 'squeeze': case 'unsqueeze': {
        const d = a.dim as number | null;
        if (xs && d !== null && d >= 2 && (n.op === 'unsqueeze' || ndimOf(x!) > 2)) pass(n, xs);
        else opaque(n, `${where(n)} at dim ${d}`);
        break;
      }
      case 'sum': case 'mean': {
        const dims = a.dims as number[] | null;
        const nd = ndimOf(x!);
        if (xs && dims && dims.every((q) => (q < 0 ? q + nd : q) >= 2)) pass(n, xs);
        else opaque(n, `${where(n)} over dims [${dims ?? 'all'}]`);
        break;
      }
      case 'select': {
        if (xs && (a.dim as number) >= 2) pass(n, xs);
        else opaque(n, `${where(n)} at dim ${a.dim}`);
        break;
      }
      case 'slice': {
        if (!xs) { opaque(n, where(n)); break; }
        const d = (a.dim as number) < 0 ? (a.dim as number) + ndimOf(x!) : (a.dim as number);
        if (d !== 1) { pass(n, xs); break; }
        const start = (a.start as number | null) ?? 0, step = (a.step as number | null) ?? 1;
        if (step !== 1 || xs.block !== 1) { opaque(n, `${where(n)}: a channel slice with step ${step}`); break; }
        set(out, { ids: xs.ids.slice(start, start + size(out.shape[1])), block: 1 });
        break;
      }
      case 'pad': {
        if (!xs) { opaque(n, where(n)); break; }
        const pads = a.pads as number[];
        const d = ndimOf(x!);
        const k = 2 * (d - 2); // pads list the last dim first: the channel pair is the (d-1)-th
        const before = pads[k] ?? 0, after = pads[k + 1] ?? 0;
        if (pads.some((p) => p < 0) || xs.block !== 1) { opaque(n, `${where(n)} with negative pads`); break; }
        const pb = fresh(before), pa = fresh(after);
        if ((a.value as number | undefined ?? 0) !== 0) { taint(pb, `${where(n)} with a non-zero value`); taint(pa, `${where(n)} with a non-zero value`); }
        set(out, { ids: [...pb.ids, ...xs.ids, ...pa.ids], block: 1 });
        padZero.set(out.id, [...pb.ids.map(() => true), ...xs.ids.map(() => false), ...pa.ids.map(() => true)]);
        break;
      }
      case 'cat': {
        const d = (a.dim as number) < 0 ? (a.dim as number) + ndimOf(out) : (a.dim as number);
        const ins = n.inputs.map(get);
        if (ins.some((s, i) => !s || !isAct(n.inputs[i]))) { opaque(n, `${where(n)} of a non-activation`); break; }
        if (d === 1) {
          if (ins.some((s) => s!.block !== 1)) { opaque(n, `${where(n)} of flattened values`); break; }
          set(out, { ids: ins.flatMap((s) => s!.ids), block: 1 });
        } else {
          ins.slice(1).forEach((s) => s!.ids.forEach((id, i) => uf.union(ins[0]!.ids[i], id)));
          pass(n, ins[0]);
        }
        break;
      }
      default:
        if (ZERO_PRESERVING.has(n.op)) pass(n, xs);
        else if (NONZERO.has(n.op)) { taint(xs, where(n)); pass(n, xs); }
        else opaque(n, where(n));
    }
  }
  for (const v of graph.outputs) block(get(v), 'the model output');

  function binaryOp(n: Node): void {
    const [p, q] = n.inputs;
    const ps = get(p), out = n.outputs[0];
    const scalarOp = q === undefined || q === null;
    const zeroOk = (s: number | undefined) => {
      if (n.op === 'mul') return true;
      if (n.op === 'div') return scalarOp; // 0 / 0 is not 0
      if (n.op === 'add' || n.op === 'sub' || n.op === 'rsub') return s === 0;
      if (n.op === 'maximum' || n.op === 'minimum') return !scalarOp;
      return n.op === 'pow' && s !== undefined && s > 0;
    };
    if (!ps) { opaque(n, where(n)); return; }
    if (scalarOp) {
      if (!zeroOk(n.attrs.scalar as number)) taint(ps, `${where(n)} with ${n.attrs.scalar}`);
      pass(n, ps);
      return;
    }
    const qs = get(q);
    if (isAct(q) && qs) {
      if (qs.ids.length !== ps.ids.length || qs.block !== ps.block) { opaque(n, `${where(n)} broadcasting over channels`); return; }
      qs.ids.forEach((id, i) => uf.union(ps.ids[i], id));
      if (!(n.op === 'add' || n.op === 'sub' || n.op === 'mul' || n.op === 'maximum' || n.op === 'minimum')) taint(ps, where(n));
      pass(n, ps);
      return;
    }
    // A parameter, buffer or constant operand: either broadcast over the channels, or one entry per channel.
    const nd = ndimOf(out), qd = q.shape.length;
    const axis = qd - (nd - 1); // q's axis aligned with the channel axis
    const c = axis >= 0 ? size(q.shape[axis]) : 1;
    if (c !== 1) {
      if (!isState(q) || ps.block !== 1) { opaque(n, `${where(n)} with a per-channel constant`); return; }
      ps.ids.forEach((s, i) => entries.push([s, { param: q.name, axis, start: i, length: 1 }]));
    }
    if (!(n.op === 'mul' || n.op === 'div')) taint(ps, `${where(n)} with a tensor operand`);
    pass(n, ps);
  }

  return assemble(graph, uf, slots, padZero, { rows, entries, cols, blocked, nonzero });
}

function assemble(graph: Graph, uf: UnionFind, slots: Map<number, Slots>, padZero: Map<number, boolean[]>,
  r: { rows: [number, Ref][]; entries: [number, Ref][]; cols: [number, Ref][]; blocked: [number, string][]; nonzero: [number, string][] }): DependencyGraph {
  const idOf = new Map<number, number>();
  const groups: ChannelGroup[] = [];
  const group = (slot: number): ChannelGroup => {
    const root = uf.find(slot);
    let id = idOf.get(root);
    if (id === undefined) {
      id = groups.length;
      idOf.set(root, id);
      groups.push({ id, rows: [], entries: [], cols: [], channels: [], prunable: true, family: '' });
    }
    return groups[id];
  };
  // Groups are numbered in the order their channels appear in the graph.
  const outSlots = new Map<number, { groups: number[]; block: number }>();
  for (const v of graph.values) {
    const s = slots.get(v.id);
    if (!s) continue;
    outSlots.set(v.id, { groups: s.ids.map((i, c) => { const g = group(i); g.channels.push({ value: v.name, index: c }); return g.id; }), block: s.block });
  }
  for (const [s, ref] of r.rows) group(s).rows.push(ref);
  for (const [s, ref] of r.entries) group(s).entries.push(ref);
  for (const [s, ref] of r.cols) group(s).cols.push(ref);
  for (const [s, why] of r.nonzero) { const g = group(s); if (g.prunable) { g.prunable = false; g.reason = `it passes ${why}, which does not keep a removed channel at zero`; } }
  // A reason of reach (input, output, an op not understood) wins over one of zero-keeping; the first one met is kept.
  for (const [s, why] of r.blocked) { const g = group(s); if (!g.reason?.startsWith('it reaches')) { g.prunable = false; g.reason = `it reaches ${why}`; } }
  for (const g of groups) {
    g.family = [...new Set(g.rows.map((x) => x.param))].sort().join(',');
    if (g.prunable && g.rows.length === 0) { g.prunable = false; g.reason = 'no layer makes it (constant zeros)'; }
  }
  return { graph, groups, slots: outSlots, padZero };
}

/** Trace `model` and find its channel groups. */
export function dependencyGroups(model: Module, o: { inputShape: number[] }): DependencyGraph {
  if (!o?.inputShape) throw new ArgumentError('dependencyGroups: needs { inputShape } (one example, e.g. [3, 32, 32])');
  return analyseGraph(trace(model, { inputShape: o.inputShape }));
}
