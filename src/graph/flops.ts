/**
 * Parameter and MAC counts read from a graph. MACs are the multiply-accumulates of the
 * convolutions, linear layers and matrix products for one example (the pruning literature's
 * "FLOPs": ResNet-56 is 125.5 M); elementwise ops, pooling and BatchNorm count nothing, as there.
 */
import { concreteShape, numelOf, type Graph, type Node } from './ir.js';

export interface GraphLayer {
  /** The weight's owner: its dot path without `.weight` (`features.0`), or `node <id>` when the weight is computed. */
  name: string;
  kind: 'linear' | 'conv';
  /** Elements of the weight. */
  params: number;
  /** MACs for one example (summed when one weight is used by several nodes). */
  macs: number;
}

export interface GraphStats {
  /** Elements of every parameter (weights, biases, BatchNorm affine), used or not. */
  params: number;
  /** MACs for one example. */
  macs: number;
  layers: GraphLayer[];
}

/** MACs of one node for one example. */
export function nodeMacs(n: Node): number {
  const out = concreteShape(n.outputs[0].shape, 1);
  if (n.op === 'conv2d') {
    const w = concreteShape(n.inputs[1]!.shape, 1);
    return numelOf(w.slice(1)) * numelOf(out.slice(1)); // in/groups * kh * kw per output element
  }
  if (n.op === 'linear') return concreteShape(n.inputs[1]!.shape, 1)[1] * numelOf(out.slice(1));
  if (n.op === 'matmul' || n.op === 'addmm') {
    const a = concreteShape(n.inputs[n.op === 'addmm' ? 1 : 0]!.shape, 1);
    return a[a.length - 1] * numelOf(out.slice(1));
  }
  return 0;
}

export function graphStats(g: Graph): GraphStats {
  const layers = new Map<string, GraphLayer>();
  let macs = 0;
  for (const n of g.nodes) {
    const m = nodeMacs(n);
    macs += m;
    if (n.op !== 'conv2d' && n.op !== 'linear') continue;
    const w = n.inputs[1]!;
    const name = w.kind === 'param' ? w.name.replace(/\.?weight$/, '') : `node ${n.id}`;
    const l = layers.get(name);
    if (l) l.macs += m;
    else layers.set(name, { name, kind: n.op === 'linear' ? 'linear' : 'conv', params: numelOf(concreteShape(w.shape, 1)), macs: m });
  }
  const params = g.state.filter((v) => v.kind === 'param').reduce((s, v) => s + numelOf(concreteShape(v.shape, 1)), 0);
  return { params, macs, layers: [...layers.values()] };
}
