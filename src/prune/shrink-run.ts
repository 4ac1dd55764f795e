/**
 * The physically smaller model of a structured run, written next to the masked one:
 * `model.shrunk.graph.json` (the graph) and `model.shrunk.safetensors` (its weights), loadable with
 * loadGraphModule(`<run>/model.shrunk`) without the model's code. Used by `topiary prune
 * --granularity structured` and `topiary shrink --from <run>`.
 */
import { join } from 'node:path';
import { graphStats } from '../graph/flops.js';
import { saveGraphModule } from '../graph/run.js';
import { shrink, ShrinkError, type MaskInput } from '../graph/shrink.js';
import { trace } from '../graph/trace.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { randn } from '../tensor/creation.js';
import { tidy } from '../tensor/scope.js';

export const SHRUNK_PREFIX = 'model.shrunk';

export interface ShrunkSummary {
  /** Files written, relative to the run folder. */
  files: { graph: string; weights: string };
  params: { masked: number; shrunk: number };
  macs: { masked: number; shrunk: number };
  /** Largest |masked - shrunk| over the outputs of 4 random inputs (eval mode). */
  maxAbsDiff: number;
}

/** Shrink `model` under `masks`, check it against the masked model, and save it in `dir`. */
export function writeShrunk(model: Module, masks: MaskInput, inputShape: number[], dir: string): ShrunkSummary {
  const small = shrink(model, masks, { inputShape });
  try {
    const was = model.training;
    model.eval();
    small.eval();
    let maxAbsDiff: number;
    try {
      maxAbsDiff = tidy(() => noGrad(() => {
        const x = randn([4, ...inputShape], { device: model.parameters()[0]?.device });
        return model.call(x).sub(small.call(x)).abs().max().item();
      }));
    } finally {
      model.train(was);
    }
    const scale = tidy(() => noGrad(() => model.call(randn([4, ...inputShape], { device: model.parameters()[0]?.device })).abs().max().item()));
    if (!(maxAbsDiff <= 1e-4 * Math.max(1, scale))) {
      throw new ShrinkError(`shrink: the shrunk model differs from the masked one by ${maxAbsDiff.toExponential(2)} (are the removed channels' biases and BatchNorm entries masked too?); nothing written`);
    }
    const g0 = trace(model, { inputShape }), g1 = small.graph;
    const s0 = graphStats(g0), s1 = graphStats(g1);
    g0.dispose();
    saveGraphModule(small, join(dir, SHRUNK_PREFIX));
    return {
      files: { graph: `${SHRUNK_PREFIX}.graph.json`, weights: `${SHRUNK_PREFIX}.safetensors` },
      params: { masked: s0.params, shrunk: s1.params }, macs: { masked: s0.macs, shrunk: s1.macs }, maxAbsDiff,
    };
  } finally {
    small.dispose();
  }
}
