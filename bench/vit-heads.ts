/**
 * vit_tiny with heads removed physically: parameters, MACs and inference latency (eval, no grad,
 * one thread) at batch 1 and 128, dense against 25%, 50% and 75% of the 16 heads removed
 * (4, 8, 12 heads; which heads does not matter for the time, so the masses are a seeded draw).
 * Configurations alternate within each repetition (same background load for all); medians.
 *
 *   node --import tsx bench/vit-heads.ts [--reps 5] [--no-doc]
 *
 * Writes its block of the `## Transformers` section of docs/benchmarks.md.
 */
import { manualSeed, setNumThreads } from '../src/core/runtime.js';
import { createModel } from '../src/models/registry.js';
import { modelStats } from '../src/models/stats.js';
import type { Module } from '../src/nn/module.js';
import { allPopulations, physicalPruneTransformer, populationModelFor, scorePopulations, selectKeep } from '../src/prune/evo-pop/index.js';
import { noGrad, rand, randn, tidy } from '../src/tensor/index.js';
import { median, parseFlags } from './lib/common.js';
import { updateSection } from './report.js';

const flags = parseFlags();
setNumThreads(1);
manualSeed(0);
const MNIST = [1, 28, 28];
const dense = createModel('vit_tiny', { inputShape: MNIST, numClasses: 10 });
dense.eval();
const pop = populationModelFor(createModel('vit_tiny', { inputShape: MNIST, numClasses: 10 }), 'vit_tiny', ['heads']);
tidy(() => noGrad(() => { for (const [, l] of allPopulations(pop)) l.mass.copy_(rand([l.size]).add(0.5)); }));
const models: [string, Module][] = [['dense (16 heads)', dense]];
for (const f of [0.25, 0.5, 0.75]) {
  const { model, architecture } = physicalPruneTransformer(pop, selectKeep(scorePopulations(pop, 'mass'), f));
  model.eval();
  models.push([`${Math.round(16 * (1 - f))} heads [${architecture.config.heads}]`, model]);
}

function latencyMs(m: Module, batch: number, iters: number): number {
  const x = randn([batch, ...MNIST]);
  const t: number[] = [];
  noGrad(() => {
    for (let i = 0; i < 3; i++) tidy(() => { m.call(x); });
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      tidy(() => { m.call(x); });
      t.push(performance.now() - t0);
    }
  });
  x.dispose();
  return median(t);
}

const res = new Map<string, { b1: number[]; b128: number[] }>(models.map(([n]) => [n, { b1: [], b128: [] }]));
for (let r = 0; r < flags.reps; r++) {
  for (const [n, m] of models) {
    res.get(n)!.b1.push(latencyMs(m, 1, 50));
    res.get(n)!.b128.push(latencyMs(m, 128, 10));
  }
}
const base = res.get(models[0][0])!;
const rows = models.map(([n, m]) => {
  const s = modelStats(m, MNIST), r = res.get(n)!;
  const b1 = median(r.b1), b128 = median(r.b128);
  return `| ${n} | ${s.params.toLocaleString('en-US')} | ${(s.flops / 1e6).toFixed(2)} M | ${b1.toFixed(2)} ms (${(median(base.b1) / b1).toFixed(2)}x) | ${b128.toFixed(1)} ms (${(median(base.b128) / b128).toFixed(2)}x) |`;
});
const body = [
  `vit_tiny inference, eval, no grad, one thread, median of ${flags.reps} repetitions (50 batches of 1, 10 of 128 each); heads removed physically (\`bench/vit-heads.ts\`).`,
  '',
  '| model | parameters | MACs / image | batch 1 | batch 128 |',
  '|---|---|---|---|---|',
  ...rows,
].join('\n');
process.stdout.write(body + '\n');
if (!flags.noDoc) updateSection('Transformers', 'vit-heads', body);
for (const [, m] of models) m.dispose();
pop.dispose();
