/**
 * Racing (racing.ts, issue 14 section 2) on a recorded generation of a real model: a CNN trained
 * in PyTorch (the ONNX fixture, BatchNorm included) on 1000 real MNIST validation images, phase 1's
 * first population evaluated in full (the archive), then the offspring NSGA-II asks for next (the
 * recorded generation), scored once in full and once with racing (hardest images first, bounds from
 * the archive), in this thread and in 2 worker threads. Every candidate racing lets run to the end
 * has exactly the full evaluation's objectives; a stopped one is strictly dominated by the archive
 * (so none that the full evaluation keeps on the front is dropped); the archive after the
 * generation is the same point for point.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/core/rng.js';
import { manualSeed, setNumThreads } from '../../src/core/runtime.js';
import { DataLoader, loadDataset, splitTrainVal } from '../../src/data/index.js';
import { ParetoArchive } from '../../src/evo/archive.js';
import { Nsga2 } from '../../src/evo/nsga2.js';
import { polynomialMutation, sbx } from '../../src/evo/real-operators.js';
import { importOnnx } from '../../src/graph/onnx-import.js';
import { EvalPool } from '../../src/prune/hier-moea/eval-pool.js';
import { MaskedEvaluator, type CandidateResult } from '../../src/prune/hier-moea/evaluator.js';
import { PrunableLayout } from '../../src/prune/hier-moea/layout.js';
import { graphOf } from '../../src/prune/hier-moea/model-source.js';
import { phase1Bounds, stratifiedSampling, ThresholdDecoder } from '../../src/prune/hier-moea/phase1.js';
import { hardestFirst, maxWrong } from '../../src/prune/hier-moea/racing.js';
import { memory, type Tensor } from '../../src/tensor/index.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const skip = !existsSync(join(dataDir, 'mnist', 'train-images-idx3-ubyte.gz')) && `real MNIST not found under ${dataDir} (set TOPIARY_DATA)`;

test('maxWrong: the fewest errors among archived points that keep no more weights', () => {
  const front = [[0.30, 0.1], [0.05, 0.5], [0.02, 0.9]];
  assert.equal(maxWrong(front, 0.05, 1000), undefined, 'nothing keeps as little: no bound');
  assert.equal(maxWrong(front, 0.1, 1000), 300);
  assert.equal(maxWrong(front, 0.6, 1000), 50);
  assert.equal(maxWrong(front, 1, 1000), 20);
});

test('racing on a recorded generation: the same objectives for every candidate run to the end, stopped ones dominated, the same archive', { skip }, async () => {
  setNumThreads(1);
  manualSeed(0);
  const before = memory().tensors;
  const model = importOnnx(join(repo, 'test/fixtures/onnx/mnist_trained.onnx'));
  const train = await loadDataset('mnist', { split: 'train', dataDir });
  const { train: tr, val } = splitTrainVal(train, 0.1, 0);
  const batches = () => [...new DataLoader({ dataset: val.dataset, indices: val.indices.slice(0, 1000) }, { batchSize: 125 }).epoch(0)].map((b) => ({ x: b.x, y: b.y }));
  const calibOf = () => { const out: Tensor[] = []; for (const b of new DataLoader(tr, { batchSize: 64, shuffle: true, seed: 0 }).epoch(0)) { if (out.length === 2) { b.x.dispose(); b.y.dispose(); break; } out.push(b.x); b.y.dispose(); } return out; };
  const layout = new PrunableLayout(model);
  const full = new MaskedEvaluator(model, layout, { val: batches(), calib: calibOf() });
  const dec = new ThresholdDecoder(layout);
  const bounds = phase1Bounds(layout.nLayers);
  const algo = new Nsga2({ popSize: 16, rng: new Rng(7), sampling: stratifiedSampling(layout.nLayers), crossover: sbx({ bounds }), mutation: polynomialMutation({ bounds }) });
  const first = algo.ask();
  const firstRes = await full.evaluateBatch(first.length, (i) => dec.decode(first[i]));
  const objs0 = first.map((g, i) => [firstRes[i].error, dec.keptFraction(g)]);
  algo.tell(objs0);
  const archive = new ParetoArchive<Float64Array>();
  first.forEach((g, i) => archive.add(g, objs0[i]));
  // The recorded generation: NSGA-II's offspring of that population, with the archive as it stands.
  const gen = algo.ask();
  const kept = gen.map((g) => dec.keptFraction(g));
  const front = archive.entries().map((e) => e.objectives);
  const bound = (i: number) => maxWrong(front, kept[i], full.n);
  const fullRes = await full.evaluateBatch(gen.length, (i) => dec.decode(gen[i]));
  full.restore();
  const ordered = hardestFirst(model, batches(), 125);
  const racing = new MaskedEvaluator(model, layout, { val: ordered, calib: calibOf() });
  const raceRes = await racing.evaluateBatch(gen.length, (i) => dec.decode(gen[i]), bound);
  // The same in 2 worker threads, which get the imported graph (and the dense state: restored first).
  racing.restore();
  const calib = calibOf();
  const pool = await EvalPool.start({ model: 'onnx', config: { inputShape: [1, 28, 28], numClasses: 10 }, graph: graphOf(model), state: model.stateDict(),
    data: { val: ordered, calib }, layout, workers: 2 });
  for (const t of calib) t.dispose();
  let poolRes: CandidateResult[];
  try {
    poolRes = await pool.evaluateBatch(gen.length, (i) => dec.decode(gen[i]), bound);
  } finally {
    await pool.close();
  }
  assert.deepEqual(poolRes, raceRes, 'the workers race as this thread does');
  const stopped = raceRes.filter((r) => r.seen !== undefined).length;
  assert.ok(stopped > 0 && stopped < gen.length, `${stopped} of ${gen.length} stopped: the rule is exercised both ways`);
  const archFull = new ParetoArchive<Float64Array>(), archRace = new ParetoArchive<Float64Array>();
  first.forEach((g, i) => { archFull.add(g, objs0[i]); archRace.add(g, objs0[i]); });
  gen.forEach((g, i) => {
    const f = fullRes[i], r = raceRes[i];
    if (r.seen === undefined) {
      assert.ok(Math.abs(r.error - f.error) <= 1e-6, `candidate ${i}: error ${r.error} with racing, ${f.error} without`);
      assert.equal(r.correct, f.correct);
    } else {
      assert.ok(r.seen < r.n && r.error <= f.error + 1e-12, `candidate ${i}: the stopped error ${r.error} is a lower bound of ${f.error}`);
      assert.ok(Math.round(r.error * r.n) > bound(i)!, `candidate ${i}: stopped past its bound`);
      // Strictly dominated by an archived point: the full evaluation can never keep it on the front.
      assert.ok(front.some(([e, k]) => k <= kept[i] && e < f.error), `candidate ${i} was stopped but is not dominated`);
    }
    archFull.add(g, [f.error, kept[i]]);
    archRace.add(g, [r.error, kept[i]]);
  });
  assert.deepEqual(archRace.entries().map((e) => e.objectives), archFull.entries().map((e) => e.objectives), 'the same front after the generation');
  const scored = raceRes.reduce((s, r) => s + (r.seen ?? r.n), 0) / (gen.length * full.n);
  assert.ok(scored < 1, `racing scored ${(100 * scored).toFixed(1)}% of the images`);
  process.stderr.write(`racing: ${stopped} of ${gen.length} candidates stopped, ${(100 * scored).toFixed(1)}% of candidate x image scored\n`);
  full.dispose();
  racing.dispose();
  model.dispose();
  train.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});
