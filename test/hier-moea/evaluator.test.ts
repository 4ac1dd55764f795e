import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed } from '../../src/core/runtime.js';
import { Rng } from '../../src/core/rng.js';
import { ArgumentError } from '../../src/core/errors.js';
import { BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { F, memory, noGrad, randn, randint, tensor, tidy, type Tensor } from '../../src/tensor/index.js';
import { MaskedEvaluator } from '../../src/prune/hier-moea/evaluator.js';
import { PrunableLayout, type LayerMasks } from '../../src/prune/hier-moea/layout.js';
import { taylorScores } from '../../src/prune/hier-moea/phase2.js';

const build = (bn: boolean) => bn
  ? new Sequential(new Conv2d(1, 6, 3), new BatchNorm2d(6), new ReLU(), new Conv2d(6, 4, 3), new BatchNorm2d(4), new ReLU(), new Flatten(), new Linear(4 * 4 * 4, 10))
  : new Sequential(new Conv2d(1, 6, 3), new ReLU(), new Conv2d(6, 4, 3), new ReLU(), new Flatten(), new Linear(4 * 4 * 4, 10));

function randomMasks(layout: PrunableLayout, rng: Rng, keep: number): LayerMasks {
  return layout.sizes.map((n) => Uint8Array.from({ length: n }, () => (rng.random() < keep ? 1 : 0)));
}

/** The reference: a fresh model with the same weights times the mask, BatchNorm statistics computed directly. */
function freshLogits(src: Sequential, bn: boolean, masks: LayerMasks, calib: Tensor[], x: Tensor): Tensor {
  const m = build(bn);
  m.loadStateDict(src.stateDict());
  const layout = new PrunableLayout(m);
  noGrad(() => layout.params.forEach((p, l) => p.mul_(tensor(masks[l], { shape: p.shape }))));
  m.eval();
  if (bn) {
    // Running stats = the mean over the calibration batches of each batch's mean and unbiased variance
    // (PyTorch's momentum=None), from the inputs each BatchNorm sees in a train-mode forward pass, where
    // the first BatchNorm normalizes with the batch's own statistics.
    const mods = [m.at(1) as BatchNorm2d, m.at(4) as BatchNorm2d];
    for (const [i, b] of mods.entries()) {
      const means: Tensor[] = [], vars: Tensor[] = [];
      for (const c of calib) {
        const h = noGrad(() => {
          let y = m.at(0).call(c);
          if (i === 1) {
            const bn1 = mods[0];
            y = F.batchNorm(y, { weight: bn1.weight, bias: bn1.bias, training: true, eps: bn1.eps }).relu();
            y = m.at(3).call(y);
          }
          return y; // [B, C, H, W]
        });
        const flat = h.transpose(0, 1).flatten(1); // [C, B*H*W]
        means.push(flat.mean(1));
        vars.push(flat.var(1)); // unbiased, as PyTorch's running_var
      }
      const bufs = new Map(b.namedBuffers());
      noGrad(() => {
        bufs.get('running_mean')!.copy_(means.reduce((a, c) => a.add(c)).div(means.length));
        bufs.get('running_var')!.copy_(vars.reduce((a, c) => a.add(c)).div(vars.length));
      });
    }
  }
  const out = noGrad(() => m.call(x));
  m.dispose();
  return out;
}

for (const bn of [false, true]) {
  test(`in-place evaluation equals a fresh masked model${bn ? ' (BatchNorm recalibrated)' : ''}, and restores the weights`, () => {
    const before = memory().tensors;
    tidy(() => {
      manualSeed(1);
      const model = build(bn);
      const layout = new PrunableLayout(model);
      // Trained-looking BatchNorm statistics, which recalibration must replace and restore() bring back.
      if (bn) noGrad(() => { for (const [n, b] of model.namedBuffers()) if (n.endsWith('running_mean')) b.fill_(0.3); });
      const dense = model.stateDict();
      const snapshot = Object.fromEntries(Object.entries(dense).map(([k, t]) => [k, t.clone()]));
      const val = [0, 1].map(() => ({ x: randn([50, 1, 8, 8]), y: randint(0, 10, [50]) }));
      const calib = bn ? [randn([32, 1, 8, 8]), randn([32, 1, 8, 8])] : [];
      const xs = val.map((b) => b.x.clone()), ys = val.map((b) => b.y.clone()), cs = calib.map((c) => c.clone());
      const ev = new MaskedEvaluator(model, layout, { val, calib });
      const rng = new Rng(2);
      for (const keepFrac of [1, 0.6, 0.2]) {
        const masks = randomMasks(layout, rng, keepFrac);
        const r = ev.evaluate(masks);
        let correct = 0;
        for (const [i, x] of xs.entries()) {
          const ref = freshLogits(model, bn, masks, cs, x);
          const got = noGrad(() => { model.eval(); return model.call(x); });
          assert.ok(got.allclose(ref, 1e-4, 1e-5), `logits differ at keep ${keepFrac}: max ${got.sub(ref).abs().max().item()}`);
          correct += ref.argmax(1).eq(ys[i]).sum().item();
        }
        assert.equal(r.correct, correct);
        assert.equal(r.n, 100);
        assert.ok(Math.abs(r.error - (1 - correct / 100)) < 1e-12);
        // The masked weights are exactly dense * mask.
        layout.params.forEach((p, l) => assert.ok(p.equal(snapshot[layout.names[l]].mul(tensor(masks[l], { shape: p.shape })))));
      }
      // The same masks again give the same result: nothing carries over between candidates.
      const m1 = randomMasks(layout, new Rng(7), 0.5);
      const a = ev.evaluate(m1).correct;
      ev.evaluate(randomMasks(layout, new Rng(8), 0.1));
      assert.equal(ev.evaluate(m1).correct, a);
      assert.equal(ev.evaluations, 6);
      ev.restore();
      for (const [k, t] of Object.entries(model.stateDict())) assert.ok(t.equal(snapshot[k]), `${k} restored`);
      ev.dispose();
      model.dispose();
    });
    assert.equal(memory().tensors, before, 'no tensor leaks');
  });
}

test('a BatchNorm model without calibration batches is refused', () => {
  const before = memory().tensors;
  const model = build(true);
  const val = [{ x: randn([4, 1, 8, 8]), y: randint(0, 10, [4]) }];
  assert.throws(() => new MaskedEvaluator(model, new PrunableLayout(model), { val, calib: [] }), ArgumentError);
  val[0].x.dispose(); val[0].y.dispose();
  model.dispose();
  assert.equal(memory().tensors, before);
});

test('taylor importance: |w * g| with g the mean gradient on the masked network; the model is restored', () => {
  const before = memory().tensors;
  tidy(() => {
    manualSeed(3);
    const model = build(false);
    const layout = new PrunableLayout(model);
    const snapshot = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, t.clone()]));
    const val = [{ x: randn([10, 1, 8, 8]), y: randint(0, 10, [10]) }];
    const ev = new MaskedEvaluator(model, layout, { val, calib: [] });
    const masks = randomMasks(layout, new Rng(5), 0.5);
    const batches = [0, 1].map(() => ({ x: randn([16, 1, 8, 8]), y: randint(0, 10, [16]) }));
    const copies = batches.map((b) => ({ x: b.x.clone(), y: b.y.clone() }));
    const scores = taylorScores(model, ev, masks, batches);
    // Reference: a fresh masked copy, gradients of the mean loss summed over the batches, halved.
    const ref = build(false);
    ref.loadStateDict(snapshot);
    const rl = new PrunableLayout(ref);
    noGrad(() => rl.params.forEach((p, l) => p.mul_(tensor(masks[l], { shape: p.shape }))));
    ref.eval();
    for (const b of copies) F.crossEntropy(ref.call(b.x), b.y).backward();
    rl.params.forEach((p, l) => {
      const want = p.detach().mul(p.grad!).div(2).abs().toTypedArray() as Float32Array;
      for (let i = 0; i < want.length; i += 7) assert.ok(Math.abs(scores[l][i] - want[i]) <= 1e-5 * (1 + want[i]), `${layout.names[l]}[${i}]`);
      // Pruned weights score 0: their w is 0 on the masked network.
      for (let i = 0; i < want.length; i++) if (!masks[l][i]) assert.equal(scores[l][i], 0);
    });
    for (const [k, t] of Object.entries(model.stateDict())) assert.ok(t.equal(snapshot[k]), `${k} restored`);
    for (const p of model.parameters()) assert.equal(p.grad, null);
    ev.dispose();
    model.dispose();
    ref.dispose();
  });
  assert.equal(memory().tensors, before, 'no tensor leaks');
});
