/** One-shot methods end to end on an MNIST subset: magnitude (of a trained model), random, SNIP, GraSP. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pruneConfigFrom, pruneEnv } from '../../src/cli/prune.js';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { runTraining } from '../../src/experiment/train-run.js';
import { runPrune } from '../../src/prune/options.js';
import { keepCount } from '../../src/prune/select.js';
import { memory } from '../../src/tensor/index.js';
import { DATA, NO_MNIST, quickTrain } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'topiary-prune-e2e-'));
const N = 266200;
type R = Record<string, unknown> & { testAccuracy: number; keptWeights: number; record: Record<string, unknown> };
const run = async (o: Record<string, unknown>, out = tmp()) => {
  const { train, prune } = pruneConfigFrom(o);
  return (await runPrune({ train, prune, run: { out, dataDir: DATA } }, pruneEnv)) as R;
};

test('magnitude: one-shot on a trained model, with and without fine-tuning, global and per layer', { skip: NO_MNIST }, async () => {
  const before = memory().tensors;
  const denseDir = tmp();
  const dense = await runTraining(validate(TrainConfig, quickTrain()), { out: denseDir, dataDir: DATA });
  const denseAcc = dense.result.testAccuracy as number;
  dense.model.dispose();
  dense.data.dispose();
  assert.ok(denseAcc > 0.92, `dense ${denseAcc}`);

  const raw = await run({ ...quickTrain(), method: 'magnitude', sparsity: 0.9, from: denseDir, finetune: false });
  assert.equal(raw.keptWeights, keepCount(N, 0.9));
  assert.equal(raw.trained, false);
  assert.ok(raw.testAccuracy > 0.5 && raw.testAccuracy < denseAcc, `pruned, not fine-tuned: ${raw.testAccuracy}`);
  assert.equal((raw.record as { prunedAt: string }).prunedAt, 'trained model');

  const tuned = await run({ ...quickTrain({ epochs: 1 }), method: 'magnitude', sparsity: 0.9, from: denseDir });
  assert.equal(tuned.keptWeights, keepCount(N, 0.9));
  assert.ok(tuned.testAccuracy > Math.max(0.9, raw.testAccuracy), `fine-tuned ${tuned.testAccuracy} vs ${raw.testAccuracy}`);

  const layer = await run({ ...quickTrain(), method: 'magnitude', sparsity: 0.5, scope: 'layer', from: denseDir, finetune: false });
  for (const l of layer.sparsityLayers as { total: number; kept: number }[]) assert.equal(l.kept, keepCount(l.total, 0.5));
  assert.ok(layer.testAccuracy > denseAcc - 0.02, `50% per layer barely hurts: ${layer.testAccuracy} vs ${denseAcc}`);
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('random: a random mask at initialization, then training', { skip: NO_MNIST }, async () => {
  const r = await run({ ...quickTrain(), method: 'random', sparsity: 0.9 });
  assert.equal(r.keptWeights, keepCount(N, 0.9));
  assert.ok(r.testAccuracy > 0.85, `test accuracy ${r.testAccuracy}`);
  // Uniform random: every layer near 90% too.
  for (const l of r.sparsityLayers as { sparsity: number; total: number }[]) assert.ok(Math.abs(l.sparsity - 0.9) < 0.05, `${l.sparsity}`);
});

test('snip: scores on one batch of 100 at initialization, then training with the mask fixed', { skip: NO_MNIST }, async () => {
  const r = await run({ ...quickTrain(), method: 'snip', sparsity: 0.95 });
  assert.equal(r.keptWeights, keepCount(N, 0.95));
  assert.ok(r.testAccuracy > 0.88, `test accuracy ${r.testAccuracy}`);
  assert.equal(((r.record as { step: { kept: number } }).step).kept, keepCount(N, 0.95));
  // SNIP prunes the input layer hardest (most pixels are background).
  const l = r.sparsityLayers as { name: string; sparsity: number }[];
  assert.ok(l[0].sparsity > l[2].sparsity, `first layer ${l[0].sparsity} vs output ${l[2].sparsity}`);
});

test('grasp: -w * Hg on a class-balanced batch, highest removed, then training', { skip: NO_MNIST }, async () => {
  const r = await run({ ...quickTrain(), method: 'grasp', sparsity: 0.9 });
  assert.equal(r.keptWeights, keepCount(N, 0.9));
  assert.ok(r.testAccuracy > 0.85, `test accuracy ${r.testAccuracy}`);
});
