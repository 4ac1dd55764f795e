/**
 * Data-driven scores of transformer units (heads, block MLP neurons) through gates: every unit's
 * output is multiplied by a gate xi = 1 (a head's output o_h before the output projection, a
 * neuron's activation before linear2), and the loss is differentiated with respect to the gates.
 *
 * - head_importance (Michel et al. 2019, "Are Sixteen Heads Really Better than One?", eq. 2 and
 *   section 4.2): I_u = mean over examples x of |dL(x)/dxi_u|, accumulated over the scoring set in
 *   chunks (batches) of `chunk` examples, each layer's scores then divided by their L2 norm. On a
 *   trained model, in eval mode.
 * - SNIP on units (Lee et al. 2019's connection sensitivity of a unit gate): |dL/dxi_u| of the
 *   batch loss, on one batch, in training mode: SNIP's |g w| for a multiplicative mask at c = 1.
 *
 * Scores come back as per-weight maps for the structured selection (group-select.ts): a unit's
 * score sits at the first weight of its first row and zeros elsewhere, so that the 'first' and the
 * 'sum' group reductions both give it.
 */
import { z } from 'zod';
import { ArgumentError } from '../core/errors.js';
import { Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { MultiheadAttention, TransformerEncoderLayer } from '../nn/transformer.js';
import { grad } from '../tensor/autograd.js';
import { ones, tensor } from '../tensor/creation.js';
import { crossEntropy } from '../tensor/nn-ops.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { BatchLike } from '../train/evaluate.js';
import type { Criterion, ScoreContext } from './criteria.js';
import type { PruneTarget } from './target.js';

/** Per unit family (an attention layer's path, or a block's `<block>.linear1`): one score per unit. */
export type UnitScores = Map<string, number[]>;

/**
 * Gate gradients of the loss on (x, y): per family, sum over examples of |dL(x)/dxi| (perExample),
 * or |dL/dxi| of the mean batch loss (SNIP). Leaves the model as it was (gates removed).
 */
export function unitGateGradients(model: Module, target: PruneTarget, x: Tensor, y: Tensor, o: { perExample: boolean }): UnitScores {
  const families = new Set(target.groups.map((g) => g.family));
  const gates: { family: string; leaf: Tensor; dim: number }[] = [];
  const undo: (() => void)[] = [];
  for (const [name, m] of model.namedModules()) {
    if (m instanceof MultiheadAttention && families.has(name)) {
      const prev = m.headGate;
      m.headGate = (heads) => { // [B, H, L, dh]
        const leaf = ones([heads.shape[0], heads.shape[1], 1, 1], { dtype: heads.dtype, device: heads.device }).requiresGrad_(true);
        gates.push({ family: name, leaf, dim: 1 });
        return (prev ? prev(heads) : heads).mul(leaf);
      };
      undo.push(() => { m.headGate = prev; });
    }
    const fam = name ? `${name}.linear1` : 'linear1';
    if (m instanceof TransformerEncoderLayer && families.has(fam)) {
      if (!(m.linear1 instanceof Linear)) throw new ArgumentError(`unit scores: ${fam} is not a plain Linear`);
      undo.push(m.activation.registerForwardHook((_m, _x, a) => { // [B, L, n]
        const leaf = ones([a.shape[0], 1, a.shape[a.ndim - 1]], { dtype: a.dtype, device: a.device }).requiresGrad_(true);
        gates.push({ family: fam, leaf, dim: 2 });
        return a.mul(leaf);
      }));
    }
  }
  try {
    return tidy(() => {
      const loss = crossEntropy(model.call(x), y); // mean over the batch
      const gs = grad(loss, gates.map((g) => g.leaf));
      const out: UnitScores = new Map();
      gates.forEach((g, i) => {
        const d = gs[i]!.reshape(gs[i]!.shape[0], -1); // [B, n]
        // d/dxi of the mean loss is (1/B) dL(x)/dxi per example.
        const v = o.perExample ? d.mul(d.shape[0]).abs().sum(0) : d.sum(0).abs();
        const prev = out.get(g.family);
        const vals = v.dataSync();
        out.set(g.family, prev ? prev.map((p, j) => p + vals[j]) : Array.from(vals));
      });
      return out;
    });
  } finally {
    undo.forEach((u) => u());
  }
}

/** Unit scores as per-weight maps: each group's score at its first row's first weight (group-select's 'first' and 'sum' both read it). */
export function unitScoreMaps(target: PruneTarget, scores: UnitScores): Map<string, Tensor> {
  const index = new Map<string, number>();
  const flat = new Map<string, Float32Array>();
  for (const n of target.weights) flat.set(n, new Float32Array(target.param(n).numel));
  for (const g of target.groups) {
    const i = index.get(g.family) ?? 0;
    index.set(g.family, i + 1);
    const s = scores.get(g.family)?.[i];
    if (s === undefined) throw new ArgumentError(`unit scores: none for unit ${i} of '${g.family}'`);
    const r = g.rows[0], p = target.param(r.param);
    // The first element of index r.start along r.axis (row-major).
    const stride = p.shape.slice(r.axis + 1).reduce((a, b) => a * b, 1);
    flat.get(r.param)![r.start * stride] = s;
  }
  return new Map([...flat].map(([n, a]) => {
    const p = target.param(n);
    return [n, tensor(a, { shape: p.shape, device: p.device })];
  }));
}

function checkUnits(ctx: ScoreContext, name: string): void {
  if (ctx.target.unit === 'channels' || ctx.target.granularity !== 'structured') {
    throw new ArgumentError(`${name}: scores transformer units: needs --granularity structured with --unit heads, neurons or heads,neurons`);
  }
  if (!ctx.batch) throw new ArgumentError(`${name}: needs training data (a scoring batch), and none was given`);
}

/** Divide each family's scores by their L2 norm (Michel et al. 2019, section 4.2). */
export function normalizePerLayer(s: UnitScores): UnitScores {
  return new Map([...s].map(([f, v]) => {
    const n = Math.sqrt(v.reduce((a, b) => a + b * b, 0));
    return [f, n > 0 ? v.map((x) => x / n) : v];
  }));
}

export const HeadImportanceHp = z.object({
  /** Examples in the scoring set. */
  samples: z.number().int().positive().default(256),
  /** Examples per backward pass (the scores are accumulated over the chunks). */
  chunk: z.number().int().positive().default(64),
  /** Divide each layer's scores by their L2 norm (Michel et al.'s normalization). */
  normalize: z.boolean().default(true),
}).strict();

/** Michel et al. (2019): E_x |dL(x)/dxi_h| per head (and neuron), per-layer normalized; on a trained model. */
export const headImportance: Criterion<z.infer<typeof HeadImportanceHp>> = {
  name: 'head_importance',
  description: "Michel et al. 2019: mean |dL/d gate| of each head (and block MLP neuron), accumulated over batches, per-layer L2-normalized",
  hparams: HeadImportanceHp,
  needsData: true,
  groupReduce: 'first',
  score: (ctx, hp) => {
    checkUnits(ctx, 'head_importance');
    const b = ctx.batch!(hp.samples, false);
    const was = ctx.model.training;
    ctx.model.eval();
    try {
      let acc: UnitScores = new Map();
      const n = b.x.shape[0];
      for (let s = 0; s < n; s += hp.chunk) {
        const len = Math.min(hp.chunk, n - s);
        const part = tidy(() => {
          const x = b.x.narrow(0, s, len), y = b.y.narrow(0, s, len);
          return unitGateGradients(ctx.model, ctx.target, x, y, { perExample: true });
        });
        acc = acc.size ? new Map([...acc].map(([f, v]) => [f, v.map((a, j) => a + part.get(f)![j])])) : part;
      }
      acc = new Map([...acc].map(([f, v]) => [f, v.map((a) => a / n)]));
      return unitScoreMaps(ctx.target, hp.normalize ? normalizePerLayer(acc) : acc);
    } finally {
      ctx.model.train(was);
      b.x.dispose();
      b.y.dispose();
    }
  },
};

/** SNIP's criterion on units: |dL/dxi_u| of one batch's loss, the model in training mode. */
export function unitSnipScores(ctx: ScoreContext, samples: number): Map<string, Tensor> {
  checkUnits(ctx, 'snip');
  const b: BatchLike = ctx.batch!(samples, false);
  const was = ctx.model.training;
  ctx.model.train();
  try {
    return unitScoreMaps(ctx.target, unitGateGradients(ctx.model, ctx.target, b.x, b.y, { perExample: false }));
  } finally {
    ctx.model.train(was);
    b.x.dispose();
    b.y.dispose();
  }
}
