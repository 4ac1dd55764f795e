/**
 * Lock-step against PyTorch (issue 15, section 4): topiary's training (loader, LeNet-300-100 with
 * PyTorch's default init, SGD from a validated config, the cosine schedule stepped per epoch, mean
 * cross-entropy) and bench/torch/mlp_recipe.py (nn.Linear, torch.optim.SGD, CosineAnnealingLR,
 * F.cross_entropy, x / 255 then Normalize) start from the same weights and see the same batches.
 * Both run libtorch's kernels on one thread, so they agree to float rounding; a difference in what
 * either computes (normalization constants, the lr of an epoch, the last short batch, what weight
 * decay or momentum touch, the loss's reduction) shows at the step where it begins, far beyond the
 * tolerances. 1,300 Fashion-MNIST images: 11 steps an epoch (the last one of 20 images), all 8
 * epochs of the schedule. Needs /usr/bin/python3 with python3-torch (skipped with the reason if not).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { lockstep, torchAvailable, type LockstepConfig } from '../../bench/crosscheck/lockstep.js';
import { memory } from '../../src/tensor/index.js';
import { dataRoot } from '../nn/util.js';

const haveData = existsSync(join(dataRoot, 'fashion-mnist', 'train-images-idx3-ubyte.gz'));
const skip = !haveData ? `Fashion-MNIST not found under ${dataRoot} (set TOPIARY_DATA)` : torchAvailable() ?? false;

const base: LockstepConfig = {
  dataset: 'fashion_mnist', seed: 3, steps: 88, samples: 1300, epochs: 8, batchSize: 128,
  lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: false, widths: [300, 100],
};

function check(r: Awaited<ReturnType<typeof lockstep>>, steps: number): void {
  // manualSeed(s) then LeNet-300-100 gives the weights torch.manual_seed(s) then nn.Linear does, bit for bit.
  assert.equal(r.initDiff, 0);
  assert.equal(r.topiary.losses.length, steps);
  assert.equal(r.torch.losses.length, steps);
  // The same lr in every epoch: CosineAnnealingLR stepped once per epoch, base lr in epoch 0.
  assert.equal(r.topiary.lrs.length, r.torch.lrs.length);
  r.topiary.lrs.forEach((lr, e) => assert.ok(Math.abs(lr - r.torch.lrs[e]) < 1e-12, `epoch ${e}: lr ${lr} vs ${r.torch.lrs[e]}`));
  // Step 0 sees only the init and the input: a normalization or init difference shows here.
  assert.ok(Math.abs(r.topiary.losses[0] - r.torch.losses[0]) < 1e-6, `step 0 loss ${r.topiary.losses[0]} vs ${r.torch.losses[0]}`);
  assert.equal(r.firstDivergence, null, `losses differ by more than 1e-4 from step ${r.firstDivergence}: ${r.topiary.losses[r.firstDivergence!]} vs ${r.torch.losses[r.firstDivergence!]}`);
  for (const [name, d] of Object.entries(r.weightDiff)) assert.ok(d < 1e-4, `${name}: final weights differ by ${d}`);
}

test('lock-step with PyTorch: SGD momentum 0.9, weight decay 5e-4, cosine over 8 epochs', { skip }, async () => {
  const live = memory().tensors;
  const r = await lockstep(base, { dataDir: dataRoot });
  check(r, 88);
  assert.deepEqual(r.topiary.lrs.map((x) => +x.toFixed(6)), [0.1, 0.096194, 0.085355, 0.069134, 0.05, 0.030866, 0.014645, 0.003806]);
  assert.equal(memory().tensors, live);
});

test('lock-step with PyTorch: Nesterov momentum, no weight decay, a run cut mid-epoch', { skip }, async () => {
  const r = await lockstep({ ...base, seed: 4, steps: 40, epochs: 5, lr: 0.05, weightDecay: 0, nesterov: true }, { dataDir: dataRoot });
  check(r, 40);
  assert.equal(r.topiary.lrs.length, 4); // 40 steps of 11 an epoch: the fourth epoch is cut after 7
});
