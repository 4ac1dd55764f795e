/**
 * The physically smaller transformer of a structured run over heads / neurons (`--unit heads`):
 * the heads and MLP neurons whose rows the masks removed leave the model (a removed head's q, k
 * and v rows of in_proj_weight and in_proj_bias, its columns of out_proj; a neuron's linear1 row
 * and bias and its linear2 column), so blocks may end with different head counts and MLP widths
 * (evo-pop/heads.ts physicalPruneTransformer builds that VisionTransformer). It is written as the
 * other structured runs' shrunk model is (shrink-run.ts): `model.shrunk.graph.json` and
 * `model.shrunk.safetensors`, loadable with loadGraphModule(`<run>/model.shrunk`) without the
 * model's code, after checking that it computes what the masked model does.
 */
import { join } from 'node:path';
import { graphStats } from '../graph/flops.js';
import { GraphModule, saveGraphModule } from '../graph/run.js';
import { ShrinkError } from '../graph/shrink.js';
import { trace } from '../graph/trace.js';
import { VisionTransformer } from '../models/vit.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { randn } from '../tensor/creation.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { physicalPruneTransformer, type VitArchitecture } from './evo-pop/heads.js';
import { keptUnits, type PruneUnit } from './heads.js';
import { SHRUNK_PREFIX, type ShrunkSummary } from './shrink-run.js';
import { PruneTarget } from './target.js';

/** Kept unit indices per layer (`blocks.i.self_attn`, `blocks.i.linear1`) under the target's masks. */
export function keptUnitIndices(target: PruneTarget): Map<string, number[]> {
  const alive = new Map<string, number[]>();
  tidy(() => {
    for (const g of target.groups) for (const r of g.rows) {
      const key = `${r.param}#${r.axis}`;
      if (alive.has(key)) continue;
      const m = target.mask(r.param);
      const n = m.shape[r.axis];
      alive.set(key, (r.axis === 0 ? m : m.transpose(0, r.axis)).reshape(n, -1).to('float32').sum(1).dataSync());
    }
  });
  return keptUnits(target.groups, (r) => alive.get(`${r.param}#${r.axis}`)![r.start] > 0);
}

/** The smaller VisionTransformer (a new model) and its architecture, under the target's masks. */
export function shrinkUnits(model: Module, target: PruneTarget): { model: VisionTransformer; architecture: VitArchitecture; kept: Map<string, number[]> } {
  if (!(model instanceof VisionTransformer)) throw new ShrinkError(`shrink: physical removal of ${target.unit} is built for vision transformers (vit_tiny); this model is a ${model.typeName}`);
  const kept = keptUnitIndices(target);
  for (const [layer, k] of kept) if (k.length === 0) throw new ShrinkError(`shrink: the masks remove every unit of '${layer}'`);
  const r = physicalPruneTransformer(model, kept);
  return { ...r, kept };
}

/** Largest |a(x) - b(x)| over `n` random inputs, both in eval mode. */
function maxDiff(a: Module, b: Module, inputShape: number[], n = 4): { diff: number; scale: number } {
  const wa = a.training, wb = b.training;
  a.eval(); b.eval();
  try {
    return tidy(() => noGrad(() => {
      const x = randn([n, ...inputShape], { device: a.parameters()[0]?.device });
      const ya: Tensor = a.call(x), yb: Tensor = b.call(x);
      return { diff: ya.sub(yb).abs().max().item(), scale: ya.abs().max().item() };
    }));
  } finally {
    a.train(wa); b.train(wb);
  }
}

/** Shrink, check against the masked model (within 1e-5 relative to the outputs' scale), save in `dir`. */
export function writeShrunkUnits(model: Module, target: PruneTarget, inputShape: number[], dir: string): ShrunkSummary & { heads: number[]; mlp: number[] } {
  const { model: small } = shrinkUnits(model, target);
  let gm: GraphModule | null = null;
  try {
    const { diff, scale } = maxDiff(model, small, inputShape);
    if (!(diff <= 1e-5 * Math.max(1, scale))) throw new ShrinkError(`shrink: the smaller transformer differs from the masked one by ${diff.toExponential(2)}; nothing written`);
    gm = GraphModule.fromModule(small, inputShape);
    const g0 = trace(model, { inputShape });
    const s0 = graphStats(g0), s1 = graphStats(gm.graph);
    g0.dispose();
    saveGraphModule(gm, join(dir, SHRUNK_PREFIX));
    return {
      files: { graph: `${SHRUNK_PREFIX}.graph.json`, weights: `${SHRUNK_PREFIX}.safetensors` },
      params: { masked: s0.params, shrunk: s1.params }, macs: { masked: s0.macs, shrunk: s1.macs }, maxAbsDiff: diff,
      heads: small.config.heads, mlp: small.config.mlp,
    };
  } finally {
    gm?.dispose();
    small.dispose();
  }
}

/** `topiary shrink --from <run>` for a run over units: the run's saved masks (masks.safetensors) on its trained model. */
export function writeShrunkUnitsFromMasks(model: Module, masks: Record<string, Tensor>, unit: Exclude<PruneUnit, 'channels'>, inputShape: number[], dir: string): ReturnType<typeof writeShrunkUnits> {
  const target = new PruneTarget(model, { granularity: 'structured', unit, inputShape });
  try {
    for (const n of target.masks.names) {
      const m = masks[n];
      if (!m) throw new ShrinkError(`shrink: masks.safetensors has no mask for '${n}' (a run over ${unit} masks every ${unit} weight)`);
      target.masks.set(n, tidy(() => m.ne(0)));
    }
    return writeShrunkUnits(model, target, inputShape, dir);
  } finally {
    target.dispose();
  }
}
