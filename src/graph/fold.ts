/**
 * Inference passes over a traced graph: BatchNorm folded into the convolution (or linear) before
 * it, as onnxruntime's ConvBNFusion and PyTorch's `fuse_conv_bn_eval` do. For eval-mode BatchNorm,
 *   y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta  =  conv'(x)
 * with conv' = the same convolution with w' = w * s (per output channel) and b' = (b - mean) * s + beta,
 * s = gamma / sqrt(var + eps); the BatchNorm node disappears. The new weights are computed in float64
 * and stored as float32; outputs move by rounding only (tests: at most 1e-5 on every zoo model with
 * BatchNorm).
 *
 * A BatchNorm is folded when its input is the output of a conv2d (or linear) that nothing else reads,
 * and that conv's weight (and bias) are parameters read by no other node; any other BatchNorm stays.
 * Only for inference: a folded graph has no BatchNorm to train or to update running statistics with.
 */
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { keep, tidy } from '../tensor/scope.js';
import type { Graph, GraphJSON } from './ir.js';
import { graphFromJSONWithData } from './run.js';

export interface FoldOptions {
  /**
   * Store every conv2d weight of the result in channels-last layout (what Conv2d and the graph
   * interpreter convolve in on CPU when Conv2d.channelsLast is on), so no weight is converted per call.
   */
  channelsLastWeights?: boolean;
}

export interface FoldedGraph {
  graph: Graph;
  /** The folded graph's parameters and buffers: the original tensors, and new ones for what changed. */
  state: Record<string, Tensor>;
  /** Module paths of the BatchNorm nodes folded away, in graph order. */
  folded: string[];
  /** Frees the new tensors and the graph's constants (never the original state). */
  dispose(): void;
}

/** Fold BatchNorm into the preceding conv2d / linear wherever it can (see the module comment). */
export function foldBatchNorm(g: Graph, state: Record<string, Tensor>, o: FoldOptions = {}): FoldedGraph {
  const j: GraphJSON = g.toJSON();
  const users = new Array<number>(j.values.length).fill(0);
  for (const n of j.nodes) for (const i of n.inputs) if (i !== null) users[i]++;
  for (const i of j.outputs) users[i]++;
  const producer = new Map<number, number>();
  j.nodes.forEach((n, k) => { for (const out of n.outputs) producer.set(out, k); });
  const isState = (i: number | null) => i !== null && (j.values[i].kind === 'param' || j.values[i].kind === 'buffer');
  const names = new Set(j.values.map((v) => v.name));

  const made: Tensor[] = [];
  const newState: Record<string, Tensor> = { ...state };
  const remove = new Set<number>();
  const replace = new Map<number, number>(); // BatchNorm output -> the conv's output
  const folded: string[] = [];
  noGrad(() => {
    j.nodes.forEach((bn, k) => {
      if (bn.op !== 'batchNorm') return;
      const [xi, gi, bi, mi, vi] = bn.inputs;
      if (xi === null || mi === null || vi === null || !isState(mi) || !isState(vi)) return;
      if ((gi !== null && !isState(gi)) || (bi !== null && !isState(bi))) return;
      const pk = producer.get(xi);
      if (pk === undefined || users[xi] !== 1) return;
      const conv = j.nodes[pk];
      if (conv.op !== 'conv2d' && conv.op !== 'linear') return;
      const [, wi, cbi] = conv.inputs;
      if (wi === null || !isState(wi) || users[wi] !== 1 || (cbi !== null && (!isState(cbi) || users[cbi] !== 1))) return;
      const wName = j.values[wi].name;
      const w = newState[wName];
      const rm = state[j.values[mi].name], rv = state[j.values[vi].name];
      if (!w || !rm || !rv || w.dtype !== 'float32') return;
      const outC = w.shape[0];
      if (rm.numel !== outC || rv.numel !== outC || j.values[xi].shape.length < 2 || j.values[xi].shape[1] !== outC) return;
      const eps = bn.attrs.eps as number;
      // The folded bias is the conv's own bias name when it has one, else '<conv>.bias' (or the BatchNorm's bias name if that is taken).
      let bName: string;
      if (cbi !== null) bName = j.values[cbi].name;
      else {
        const base = wName.endsWith('weight') ? `${wName.slice(0, -'weight'.length)}bias` : `${wName}.bias`;
        bName = !names.has(base) ? base : bi !== null ? j.values[bi].name : `${base}_folded`;
      }
      const [w2, b2] = tidy(() => {
        const s = (gi !== null ? state[j.values[gi].name].double() : rv.double().mul(0).add(1)).div(rv.double().add(eps).sqrt());
        const shift = (bi !== null ? state[j.values[bi].name].double() : s.mul(0)).sub(rm.double().mul(s));
        const view = [outC, ...w.shape.slice(1).map(() => 1)];
        let wf = w.double().mul(s.reshape(view)).float();
        if (o.channelsLastWeights && conv.op === 'conv2d') wf = wf.contiguous('channels_last');
        const cb = cbi !== null ? state[j.values[cbi].name].double() : null;
        const bf = (cb ? cb.mul(s).add(shift) : shift).float();
        return [keep(wf), keep(bf)];
      });
      made.push(w2, b2);
      newState[wName] = w2;
      newState[bName] = b2;
      let bIndex = cbi;
      if (bIndex === null || j.values[bIndex].name !== bName) {
        if (cbi === null && bi !== null && bName === j.values[bi].name) bIndex = bi;
        else {
          bIndex = j.values.length;
          j.values.push({ name: bName, kind: 'param', shape: [outC], dtype: 'float32' });
          names.add(bName);
        }
      }
      conv.inputs = [conv.inputs[0], wi, bIndex];
      remove.add(k);
      replace.set(bn.outputs[0], conv.outputs[0]);
      folded.push(bn.module);
    });
    if (o.channelsLastWeights) {
      for (const n of j.nodes) {
        const wi = n.inputs[1];
        if (n.op !== 'conv2d' || wi === null || !isState(wi)) continue;
        const name = j.values[wi].name;
        const w = newState[name];
        if (!w || w.shape.length !== 4 || made.includes(w)) continue;
        const cl = keep(w.contiguous('channels_last'));
        made.push(cl);
        newState[name] = cl;
      }
    }
  });
  const sub = (i: number | null) => (i === null ? null : replace.get(i) ?? i);
  j.nodes = j.nodes.filter((_, k) => !remove.has(k)).map((n) => ({ ...n, inputs: n.inputs.map(sub) }));
  j.outputs = j.outputs.map((i) => sub(i)!);
  const graph = graphFromJSONWithData(j);
  // The graph owns its constants' data: they must outlive any scope this runs in (a forward inside tidy).
  for (const v of graph.values) if (v.data) keep(v.data);
  return {
    graph, state: newState, folded,
    dispose() {
      for (const t of made) t.dispose();
      graph.dispose();
    },
  };
}
