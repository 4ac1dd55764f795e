/**
 * A short real run that must reach real accuracy: the MLP 784-512-256-10 on the full MNIST training
 * set (54,000 after the validation split) for one epoch, SGD with momentum, one thread: test
 * accuracy at least 95% (it lands at 96.5% with seed 0). A broken loss, optimizer, loader or normalization fails it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { runTraining } from '../../src/experiment/train-run.js';
import { memory } from '../../src/tensor/index.js';
import { dataRoot } from '../nn/util.js';

const present = existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte.gz')) || existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte'));
const skip = !present && `real MNIST not found under ${dataRoot} (set TOPIARY_DATA to a folder holding mnist/)`;

test('MLP on full MNIST, one epoch: test accuracy >= 95%', { skip }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'topiary-mnist-'));
  try {
    const live = memory().tensors;
    const c = validate(TrainConfig, { model: 'mlp', dataset: 'mnist', epochs: 1, batchSize: 128, lr: 0.05, momentum: 0.9, seed: 0, threads: 1 });
    const r = await runTraining(c, { out, dataDir: dataRoot });
    const acc = r.result.testAccuracy as number;
    assert.ok(acc >= 0.95, `test accuracy ${(100 * acc).toFixed(2)}% < 95%`);
    assert.ok((r.result.bestValAccuracy as number) >= 0.95, `validation accuracy ${r.result.bestValAccuracy}`);
    assert.equal(r.history[0].trainAccuracy > 0.85, true);
    assert.equal(r.result.params, 535_818);
    const onDisk = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    assert.equal(onDisk.testAccuracy, acc);
    r.model.dispose();
    r.data.dispose();
    assert.equal(memory().tensors, live);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
