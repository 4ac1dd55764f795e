/** Mask invariants (DESIGN.md): exact sparsity, ties, the threshold, all-ones masks, pruned weights stay zero. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/registry.js';
import { SGD } from '../../src/optim/optimizer.js';
import { magnitude, random } from '../../src/prune/criteria.js';
import { pmpCallback } from '../../src/prune/methods/pmp.js';
import { linear } from '../../src/prune/schedules.js';
import { keepCount, selectGlobal, topKMask } from '../../src/prune/select.js';
import { pruneTo } from '../../src/prune/step.js';
import { PruneTarget } from '../../src/prune/target.js';
import { dispose, grad, memory, noGrad, randint, randn, tensor, tidy, type Tensor } from '../../src/tensor/index.js';
import { F } from '../../src/tensor/index.js';
import { train } from '../../src/train/loop.js';

const lenet = () => createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 });
const bits = (t: Tensor) => t.dataSync();

test('exact sparsity: global and per layer, to the weight, across sparsities', () => {
  manualSeed(1);
  const before = memory().tensors;
  const model = lenet();
  for (const scope of ['global', 'layer'] as const) {
    for (const s of [0, 0.1, 0.5, 0.789, 0.9, 0.98, 0.999]) {
      const t = new PruneTarget(model);
      const scores = random.score({ model, target: t }, {});
      const r = pruneTo(t, scores, { sparsity: s, scope });
      const c = t.counts();
      if (scope === 'global') assert.equal(c.kept, keepCount(c.total, s), `global ${s}`);
      else for (const l of c.layers) assert.equal(l.kept, keepCount(l.total, s), `${l.name} at ${s}`);
      assert.equal(r.kept, c.kept);
      assert.ok(Math.abs(r.achieved - s) <= 1 / c.total + 1e-12 || scope === 'layer', `achieved ${r.achieved} vs ${s}`);
      dispose([...scores.values()]);
      t.dispose();
    }
  }
  model.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('ties at the threshold: exact count, lower positions kept first, deterministic', () => {
  const before = memory().tensors;
  // Scores 0, 1, 2 repeated: keeping 7 of 12 takes all four 2s and the first three 1s.
  const flat = tensor([1, 2, 0, 1, 2, 1, 0, 2, 1, 0, 2, 1]);
  const { mask, threshold, kept } = topKMask(flat, 7, null);
  assert.equal(kept, 7);
  assert.equal(threshold, 1);
  assert.deepEqual(bits(mask), [1, 1, 0, 1, 1, 1, 0, 1, 0, 0, 1, 0]);
  // Inactive entries are never chosen, even with the best score; k is capped at the active count.
  const active = tensor([true, false, true, true, false, true, true, true, true, true, false, true]);
  const r2 = topKMask(flat, 100, active);
  assert.deepEqual(bits(r2.mask), bits(active));
  const r3 = topKMask(flat, 3, active);
  assert.deepEqual(bits(r3.mask), [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]); // the 2 at 7, then the first two active 1s
  // Constant scores: the first k positions across layers, in the order given.
  const a = tensor([[5, 5], [5, 5]]), b = tensor([5, 5, 5]);
  const sel = selectGlobal(new Map([['a', a], ['b', b]]), 5);
  assert.deepEqual(bits(sel.masks.get('a')!), [1, 1, 1, 1]);
  assert.deepEqual(bits(sel.masks.get('b')!), [1, 0, 0]);
  dispose([flat, mask, active, r2.mask, r3.mask, a, b, ...sel.masks.values()]);
  assert.equal(memory().tensors, before);
});

test('the threshold separates kept from pruned weights (global magnitude)', () => {
  manualSeed(2);
  const model = lenet();
  const t = new PruneTarget(model);
  const absBefore = new Map(t.weights.map((n) => [n, tidy(() => t.param(n).abs()).dataSync()]));
  const scores = magnitude.score({ model, target: t }, {});
  const r = pruneTo(t, scores, { sparsity: 0.9, scope: 'global' });
  let minKept = Infinity, maxPruned = -Infinity;
  for (const n of t.weights) {
    const m = bits(t.mask(n));
    absBefore.get(n)!.forEach((v, i) => { if (m[i]) minKept = Math.min(minKept, v); else maxPruned = Math.max(maxPruned, v); });
  }
  assert.ok(minKept >= r.threshold && maxPruned <= r.threshold, `kept >= ${r.threshold} >= pruned (${minKept}, ${maxPruned})`);
  assert.ok(minKept > maxPruned, 'no ties among random float magnitudes: strict separation');
  dispose([...scores.values()]);
  t.dispose();
  model.dispose();
});

test('an all-ones mask changes neither the forward pass nor the gradients', () => {
  manualSeed(3);
  const model = lenet();
  const x = randn([16, 1, 28, 28]), y = randint(0, 10, [16]);
  const run = () => tidy(() => {
    const loss = F.crossEntropy(model.call(x), y);
    const gs = grad(loss, model.parameters());
    return [loss.detach(), ...gs.map((g) => g!)];
  });
  const plain = run();
  const t = new PruneTarget(model);
  const cb = t.callback();
  cb.beforeForward!({} as never);
  const masked = tidy(() => {
    const loss = F.crossEntropy(model.call(x), y);
    loss.backward();
    cb.afterBackward!({} as never);
    return [loss.detach(), ...model.parameters().map((p) => p.grad!)];
  });
  plain.forEach((p, i) => assert.ok(p.equal(masked[i]), `tensor ${i} identical`));
  dispose([...plain, ...masked, x, y]);
  model.zeroGrad();
  t.dispose();
  model.dispose();
});

test('pruned weights stay exactly zero through many SGD steps with momentum and weight decay', () => {
  manualSeed(4);
  const before = memory().tensors;
  const model = lenet();
  const t = new PruneTarget(model);
  const scores = random.score({ model, target: t }, {});
  pruneTo(t, scores, { sparsity: 0.8, scope: 'layer' });
  dispose([...scores.values()]);
  const opt = new SGD(model.namedParameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-3, nesterov: true });
  const startKept = new Map(t.weights.map((n) => [n, tidy(() => t.param(n).clone())]));
  const batches = function* () { for (let i = 0; i < 60; i++) yield { x: randn([8, 1, 28, 28]), y: randint(0, 10, [8]) }; };
  train({ model, optimizer: opt, epochs: 1, trainBatches: batches, callbacks: [t.callback()] });
  for (const n of t.weights) {
    const w = bits(t.param(n)), m = bits(t.mask(n)), w0 = startKept.get(n)!.dataSync();
    let zeroed = 0, moved = 0;
    w.forEach((v, i) => { if (!m[i]) { assert.ok(v === 0, `${n}[${i}] pruned but ${v}`); zeroed++; } else if (v !== w0[i]) moved++; });
    assert.ok(zeroed > 0 && moved > 0.9 * (w.length - zeroed), `${n}: ${zeroed} zero, ${moved} kept weights trained`);
  }
  dispose([...startKept.values()]);
  opt.dispose();
  t.dispose();
  model.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('PMP: masks only shrink, each epoch hits s(e) exactly, and saved masks load back', () => {
  manualSeed(5);
  const model = lenet();
  const t = new PruneTarget(model);
  const phase = 6, final = 0.95, epochs = 9;
  const cb = pmpCallback(t, { final, phase, scope: 'global' });
  let prev: number[][] | null = null;
  for (let e = 0; e < epochs; e++) {
    cb.onEpochStart!({ model, epoch: e } as never);
    const now = t.weights.map((n) => bits(t.mask(n)));
    if (prev) prev.forEach((p, li) => p.forEach((v, i) => assert.ok(v || !now[li][i], `epoch ${e}: ${t.weights[li]}[${i}] regrew`)));
    assert.equal(t.counts().kept, keepCount(t.total, linear.sparsityAt(e, { final, phase })), `epoch ${e}`);
    prev = now;
    // Training moves the surviving weights between epochs.
    noGrad(() => tidy(() => { for (const n of t.weights) t.param(n).add_(randn(t.param(n).shape).mul(0.05)); }));
    t.apply();
  }
  const saved = Object.fromEntries(Object.entries(t.masks.stateDict()).map(([k, v]) => [k, v.clone()]));
  const t2 = new PruneTarget(model);
  t2.masks.loadStateDict(saved);
  for (const n of t.weights) assert.ok(t.mask(n).equal(t2.mask(n)), `${n} round-trips`);
  dispose(saved);
  t.dispose();
  t2.dispose();
  model.dispose();
});

test('structured: whole rows go with their bias and BatchNorm entries, output layer kept, sparsity within one channel group', () => {
  manualSeed(6);
  for (const [name, shape] of [['lenet_300_100', [1, 28, 28]], ['resnet20', [3, 32, 32]]] as const) {
    const model = createModel(name, { inputShape: [...shape], numClasses: 10 });
    const t = new PruneTarget(model, { granularity: 'structured', inputShape: [...shape] });
    const all = model.namedParameters().filter(([, p]) => p.ndim > 1).map(([n]) => n);
    assert.ok(!t.weights.includes(all[all.length - 1]), 'output layer not structured-prunable');
    const scores = magnitude.score({ model, target: t }, {});
    const r = pruneTo(t, scores, { sparsity: 0.5, scope: 'global' });
    // Whole channel groups go (coupled rows together, src/graph/depgroups.ts): exact to within one group.
    const rowSize = (n: string) => t.param(n).numel / t.param(n).shape[0];
    const maxGroup = Math.max(...t.groups.map((g) => g.rows.reduce((a, x) => a + rowSize(x.param), 0)));
    assert.ok(Math.abs(r.kept - keepCount(r.total, 0.5)) <= maxGroup, `${name}: kept ${r.kept} of ${r.total}`);
    let companions = 0;
    for (const n of t.weights) {
      const rows = t.param(n).shape[0];
      const rowKept = tidy(() => t.mask(n).reshape(rows, -1).to('float32').sum(1)).dataSync();
      const size = t.param(n).numel / rows;
      rowKept.forEach((k) => assert.ok(k === 0 || k === size, `${n}: rows are all or nothing`));
      for (const c of t.companions.get(n)!) {
        companions++;
        const cm = bits(t.mask(c)), cp = bits(t.param(c));
        rowKept.forEach((k, i) => { assert.equal(cm[i], k > 0 ? 1 : 0, `${c}[${i}] follows its row`); if (!k) assert.ok(cp[i] === 0); });
      }
    }
    assert.ok(companions > 0, `${name}: found bias / BatchNorm companions`);
    if (name === 'resnet20') assert.deepEqual(t.companions.get('layers.0.conv1.weight'), ['layers.0.bn1.weight', 'layers.0.bn1.bias']);
    dispose([...scores.values()]);
    t.dispose();
    model.dispose();
  }
});
