/**
 * vit_tiny: parameter and MAC counts against a hand count, its module paths (PyTorch's names inside
 * each block), a patch size that does not divide the image rejected with the field named, and a
 * short real training run on an MNIST subset that must reach real accuracy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArgumentError } from '../../src/core/errors.js';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { runTraining } from '../../src/experiment/train-run.js';
import { createModel, modelStats } from '../../src/models/index.js';
import { memory } from '../../src/tensor/index.js';
import { dataRoot, noLeaks } from '../nn/util.js';

const MNIST = [1, 28, 28];

test('vit_tiny: 139,018 parameters and 2,427,008 MACs per image, by hand', async () => {
  await noLeaks('vit_tiny stats', () => {
    const D = 64, T = 17, I = 64, F = 128, N = 16, P = 7;
    const block = 2 * D /* norm1 */ + (3 * I * D + 3 * I) /* in_proj */ + (D * I + D) /* out_proj */ + 2 * D /* norm2 */ + (F * D + F) + (D * F + D);
    const params = (D * P * P + D) /* patch conv */ + D /* class token */ + (N + 1) * D /* positions */ + 4 * block + 2 * D /* norm */ + (D * 10 + 10);
    assert.equal(block, 33_472);
    assert.equal(params, 139_018);
    const attn = T * 3 * I * D + 2 * T * T * I, out = T * I * D, mlp = 2 * T * D * F;
    const macs = N * D * P * P + 4 * (attn + out + mlp) + D * 10;
    assert.equal(macs, 2_427_008);
    const m = createModel('vit_tiny', { inputShape: MNIST, numClasses: 10 });
    const s = modelStats(m, MNIST);
    assert.equal(m.numParameters(), params);
    assert.equal(s.params, params);
    assert.equal(s.flops, macs);
    const by = (name: string) => s.layers.find((l) => l.name === name)!;
    assert.equal(by('patch_embed.proj').macs, N * D * P * P);
    assert.equal(by('blocks.0.self_attn').kind, 'attention');
    assert.equal(by('blocks.0.self_attn').macs, attn);
    assert.equal(by('blocks.3.self_attn.out_proj').macs, out);
    assert.equal(by('blocks.2.linear1').macs, T * D * F);
    assert.equal(by('head').macs, D * 10);
    const names = m.namedParameters().map(([n, p]) => `${n} [${p.shape}]`);
    for (const n of ['patch_embed.proj.weight [64,1,7,7]', 'cls_token [1,1,64]', 'pos_embed.weight [17,64]', 'blocks.0.self_attn.in_proj_weight [192,64]',
      'blocks.0.self_attn.in_proj_bias [192]', 'blocks.0.self_attn.out_proj.weight [64,64]', 'blocks.3.linear1.weight [128,64]', 'blocks.3.linear2.weight [64,128]',
      'blocks.1.norm1.weight [64]', 'norm.bias [64]', 'head.weight [10,64]']) assert.ok(names.includes(n), n);
    m.dispose();
  });
});

test('vit_tiny rejects an image its patch size does not divide, naming the field', () => {
  assert.throws(() => createModel('vit_tiny', { inputShape: [3, 32, 32], numClasses: 10 }),
    (e: unknown) => e instanceof ArgumentError && /patchSize 7 does not divide the image size 32x32/.test((e as Error).message));
});

const present = existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte.gz')) || existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte'));
const skip = !present && `real MNIST not found under ${dataRoot} (set TOPIARY_DATA to a folder holding mnist/)`;

// 5,400 training images (6,000 less the validation split), 3 epochs of 85 steps, Adam 3e-3 cosine:
// 87.0% test accuracy with seed 0 (chance is 10%); about 40 s on one thread.
test('vit_tiny trains: 255 Adam steps on 5,400 MNIST images reach >= 80% test accuracy', { skip }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'topiary-vit-'));
  try {
    const live = memory().tensors;
    const c = validate(TrainConfig, { model: 'vit_tiny', dataset: 'mnist', subset: 6000, epochs: 3, batchSize: 64, optimizer: 'adam', lr: 3e-3, schedule: 'cosine', seed: 0, threads: 1 });
    const r = await runTraining(c, { out, dataDir: dataRoot });
    const acc = r.result.testAccuracy as number;
    assert.ok(acc >= 0.8, `test accuracy ${(100 * acc).toFixed(2)}% < 80%`);
    assert.equal(r.result.params, 139_018);
    r.model.dispose();
    r.data.dispose();
    assert.equal(memory().tensors, live);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
