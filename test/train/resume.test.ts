/**
 * Resuming: a short real run (2000 MNIST images, 3 epochs, one thread) stopped after epoch 1 and
 * resumed in the same folder ends bit-identical to an uninterrupted run: weights, optimizer state,
 * BatchNorm statistics, callback state, dropout and augmentation randomness, history and accuracy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { runTraining } from '../../src/experiment/train-run.js';
import { BatchNorm1d, Dropout, Flatten, Linear, ReLU, Sequential } from '../../src/nn/index.js';
import { keep, loadSafetensors, memory, tidy, zeros, type Tensor } from '../../src/tensor/index.js';
import type { Callback } from '../../src/train/index.js';
import { dataRoot } from '../nn/util.js';

const present = existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte.gz')) || existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte'));
const skip = !present && `real MNIST not found under ${dataRoot} (set TOPIARY_DATA to a folder holding mnist/)`;

const config = () => validate(TrainConfig, {
  model: 'mlp', dataset: 'mnist', epochs: 3, batchSize: 64, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, schedule: 'cosine',
  subset: 2000, valFraction: 0.1, seed: 3, threads: 1, augment: { rotation: 10, translation: 0.1 },
});

/** Dropout (the CPU generator) and BatchNorm (buffers) make the resumed state matter. */
const smallNet = () => new Sequential(new Flatten(), new Linear(784, 64), new BatchNorm1d(64), new ReLU(), new Dropout(0.3), new Linear(64, 10));

/** A callback with checkpointed state: a step count (JSON) and a running sum of a weight (tensor). */
function tracker(log: string[]): Callback & { sum: Tensor | null; steps: number } {
  const cb = {
    name: 'tracker', sum: null as Tensor | null, steps: 0,
    onEpochStart(ctx: { epoch: number }) { log.push(`start ${ctx.epoch}`); },
    afterStep(ctx: { model: { stateDict(): Record<string, Tensor> } }) {
      cb.steps++;
      cb.sum ??= keep(zeros([10]));
      tidy(() => { cb.sum!.add_(ctx.model.stateDict()['5.bias'].detach()); });
    },
    onEpochEnd(_ctx: unknown, rec: { epoch: number; extra: Record<string, unknown> }) { rec.extra.steps = cb.steps; log.push(`end ${rec.epoch}`); },
    stateDict: () => ({ tensors: (cb.sum ? { sum: cb.sum } : {}) as Record<string, Tensor>, json: { steps: cb.steps } }),
    loadStateDict(s: { tensors: Record<string, Tensor>; json: unknown }) {
      cb.steps = (s.json as { steps: number }).steps;
      if (s.tensors.sum) { cb.sum ??= keep(zeros([10])); tidy(() => { cb.sum!.copy_(s.tensors.sum); }); }
      log.push(`restored ${cb.steps}`);
    },
  };
  return cb;
}

async function run(out: string, stopAfterEpochs?: number) {
  const log: string[] = [];
  const cb = tracker(log);
  const r = await runTraining(config(), { out, dataDir: dataRoot, stopAfterEpochs }, { model: () => smallNet(), callbacks: () => [cb], kind: 'resume-test' });
  const weights = tidy(() => Object.fromEntries(Object.entries(r.model.stateDict()).map(([k, t]) => [k, t.dataSync()])));
  const sum = cb.sum ? tidy(() => cb.sum!.dataSync()) : null;
  r.model.dispose();
  r.data.dispose();
  cb.sum?.dispose();
  return { result: r.result, history: r.history, weights, sum, steps: cb.steps, log };
}

test('a run stopped after epoch 1 and resumed equals an uninterrupted run, bit for bit', { skip }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'topiary-resume-'));
  try {
    const live = memory().tensors;
    const full = await run(join(root, 'full'));
    assert.equal(full.result.completed, true);
    assert.deepEqual(full.log, ['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);

    const part = await run(join(root, 'split'), 1);
    assert.equal(part.result.completed, false);
    assert.equal(part.history.length, 1);
    assert.ok(!existsSync(join(root, 'split', 'model.safetensors')), 'an unfinished run writes no final weights');
    const latest = JSON.parse(readFileSync(join(root, 'split', 'checkpoints', 'latest.json'), 'utf8'));
    assert.deepEqual(latest, { epoch: 0, path: 'epoch_0' });
    // The first piece's time, as its checkpoint records it.
    const first = JSON.parse(readFileSync(join(root, 'split', 'checkpoints', 'epoch_0', 'state.json'), 'utf8')).elapsedSeconds as number;
    assert.ok(first >= part.history[0].seconds, `the first piece (${first} s) covers its epoch (${part.history[0].seconds} s)`);

    const resumed = await run(join(root, 'split'));
    assert.equal(resumed.result.completed, true);
    assert.equal(resumed.result.resumedFrom, 0);
    // wallSeconds is the whole run's: the first piece's plus the second's own epochs (rounded to 0.01 s).
    const own = resumed.history.slice(1).reduce((s, h) => s + h.seconds, 0);
    assert.ok((resumed.result.wallSeconds as number) + 0.005 >= first + own, `wallSeconds ${resumed.result.wallSeconds} >= ${first} + ${own}`);
    assert.deepEqual(resumed.log, ['restored 29', 'start 1', 'end 1', 'start 2', 'end 2']);
    assert.equal(memory().tensors, live, 'no tensors left behind by three runs');

    // Identical, not merely close.
    assert.deepEqual(resumed.weights, full.weights);
    assert.deepEqual(resumed.sum, full.sum);
    assert.equal(resumed.steps, full.steps);
    assert.equal(full.steps, 3 * Math.ceil(1800 / 64));
    for (const k of ['testAccuracy', 'testLoss', 'finalValAccuracy', 'bestValAccuracy', 'bestEpoch']) assert.equal(resumed.result[k], full.result[k], k);
    const strip = (h: typeof full.history) => h.map(({ seconds: _s, ...rest }) => rest);
    assert.deepEqual(strip(resumed.history), strip(full.history));
    assert.ok((full.result.testAccuracy as number) > 0.8, `a real (if short) training: test accuracy ${full.result.testAccuracy}`);

    // The final weights on disk are the model's.
    const saved = loadSafetensors(join(root, 'split', 'model.safetensors'));
    assert.deepEqual(tidy(() => saved.tensors['1.weight'].dataSync()), full.weights['1.weight']);
    for (const t of Object.values(saved.tensors)) t.dispose();
    assert.deepEqual(readdirSync(join(root, 'split', 'checkpoints')).sort(), ['epoch_2', 'latest.json'], 'only the newest checkpoint is kept');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
