/** shrink: the physically smaller model computes what the masked one does, for every zoo model and a user-written residual module. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { manualSeed } from '../../src/core/runtime.js';
import { graphStats } from '../../src/graph/flops.js';
import { loadGraphModule, saveGraphModule } from '../../src/graph/run.js';
import { shrink, shrinkModel } from '../../src/graph/shrink.js';
import { trace } from '../../src/graph/trace.js';
import { createModel } from '../../src/models/registry.js';
import { BatchNorm2d, Conv2d, Linear } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import { random } from '../../src/prune/criteria.js';
import { pruneTo } from '../../src/prune/step.js';
import { PruneTarget } from '../../src/prune/target.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { cat, randn } from '../../src/tensor/creation.js';
import { dispose, memory, tidy } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';

/** Prune at random to `sparsity` (structured), apply the masks, and compare the model with its shrunk self on random inputs. */
function check(model: Module, inputShape: number[], sparsity: number, scope: 'global' | 'layer' = 'global'): { before: number; after: number; maxDiff: number } {
  const t = new PruneTarget(model, { granularity: 'structured', inputShape });
  const scores = random.score({ model, target: t }, {});
  pruneTo(t, scores, { sparsity, scope, groupReduce: 'first' });
  dispose([...scores.values()]);
  // Random BatchNorm statistics, so that removed channels would show if they leaked.
  noGrad(() => {
    for (const [n, b] of model.namedBuffers()) if (n.endsWith('running_mean')) b.copy_(tidy(() => randn(b.shape).mul(0.1)));
    for (const [n, b] of model.namedBuffers()) if (n.endsWith('running_var')) b.copy_(tidy(() => randn(b.shape).abs().add(0.5)));
  });
  t.apply();
  const small = shrink(model, t.masks, { inputShape });
  model.eval();
  small.eval();
  const maxDiff = tidy(() => noGrad(() => {
    const x = randn([3, ...inputShape]);
    return model.call(x).sub(small.call(x)).abs().max().item();
  }));
  const g0 = trace(model, { inputShape }), g1 = trace(small, { inputShape });
  const out = { before: graphStats(g0).macs, after: graphStats(g1).macs, maxDiff };
  g0.dispose(); g1.dispose();
  small.dispose();
  t.dispose();
  return out;
}

const ZOO: [string, number[]][] = [
  ['mlp', [1, 28, 28]], ['lenet_300_100', [1, 28, 28]], ['lenet5', [1, 28, 28]], ['vgg_like', [3, 32, 32]], ['vgg19', [3, 32, 32]],
  ['resnet18', [3, 16, 16]], ['resnet20', [3, 16, 16]], ['resnet32', [3, 8, 8]], ['resnet56', [3, 8, 8]], ['resnet110', [1, 8, 8]],
];

for (const [name, shape] of ZOO) {
  test(`shrink ${name}: outputs equal the masked model's (max |diff| <= 1e-5), fewer MACs`, () => {
    manualSeed(11);
    const model = createModel(name, { inputShape: shape, numClasses: 10 });
    const r = check(model, shape, 0.5, name === 'resnet20' ? 'layer' : 'global');
    assert.ok(r.maxDiff <= 1e-5, `${name}: max |diff| ${r.maxDiff}`);
    assert.ok(r.after < r.before, `${name}: MACs ${r.after} < ${r.before}`);
    model.dispose();
  });
}

/** A user-written module: a residual add and a channel concatenation, then a head after Flatten. */
class UserNet extends Module {
  a = this.registerModule('a', new Conv2d(3, 8, 3, { padding: 1 }));
  an = this.registerModule('an', new BatchNorm2d(8));
  b1 = this.registerModule('b1', new Conv2d(8, 8, 3, { padding: 1, bias: false }));
  b1n = this.registerModule('b1n', new BatchNorm2d(8));
  b2 = this.registerModule('b2', new Conv2d(8, 4, 1));
  c = this.registerModule('c', new Conv2d(12, 6, 3, { stride: 2, padding: 1 }));
  head = this.registerModule('head', new Linear(6 * 4 * 4, 5));
  forward(x: Tensor): Tensor {
    const a = this.an.call(this.a.call(x)).relu(); // [B, 8, 8, 8]
    const r = this.b1n.call(this.b1.call(a)).add(a).relu(); // residual
    const y = cat([r, this.b2.call(a).relu()], 1); // [B, 12, 8, 8]
    return this.head.call(this.c.call(y).relu().flatten(1)); // [B, 5]
  }
}

test('shrink a user-defined residual + concat module; the saved graph and weights load back without the class', () => {
  manualSeed(3);
  const model = new UserNet();
  const r = check(model, [3, 8, 8], 0.4);
  assert.ok(r.maxDiff <= 1e-5, `max |diff| ${r.maxDiff}`);
  assert.ok(r.after < r.before);
  const t = new PruneTarget(model, { granularity: 'structured', inputShape: [3, 8, 8] });
  // a's channels couple with b1's through the add; b2's are their own groups, placed after them by the cat.
  assert.equal(t.groups.length, 8 + 4 + 6);
  assert.ok(t.groups.some((g) => g.family === 'a.weight,b1.weight'));
  const sc = random.score({ model, target: t }, {});
  pruneTo(t, sc, { sparsity: 0.3, scope: 'layer', groupReduce: 'first' });
  dispose([...sc.values()]);
  const small = shrink(model, t.masks, { inputShape: [3, 8, 8] });
  const dir = mkdtempSync(join(tmpdir(), 'shrink-'));
  try {
    saveGraphModule(small, join(dir, 'model.shrunk'));
    const back = loadGraphModule(join(dir, 'model.shrunk'));
    back.eval(); small.eval();
    const d = tidy(() => noGrad(() => { const x = randn([2, 3, 8, 8]); return back.call(x).sub(small.call(x)).abs().max().item(); }));
    assert.equal(d, 0);
    back.dispose();
    const before = memory().tensors;
    const again = shrinkModel(model, t.masks, { inputShape: [3, 8, 8] });
    assert.ok(again.removedGroups.length > 0);
    again.dependencies.graph.dispose();
    dispose(Object.values(again.state));
    assert.equal(memory().tensors, before, 'shrinkModel leaks no tensors');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    small.dispose();
    t.dispose();
  }
  model.dispose();
});

test('bad masks are refused with one line naming the layer', () => {
  manualSeed(4);
  const shape = [3, 8, 8];
  const model = createModel('resnet20', { inputShape: shape, numClasses: 10 });
  const w = (n: string) => model.namedParameters().find(([k]) => k === n)![1];
  const rowsOff = (n: string, rows: number[]) => tidy(() => {
    const p = w(n);
    const m = randn(p.shape).ne(12345); // all true
    for (const r of rows) m.narrow(0, r, 1).fill_(false);
    return m;
  });
  const refuse = (masks: Record<string, Tensor>, re: RegExp) => {
    assert.throws(() => shrink(model, masks, { inputShape: shape }), (e: Error) => re.test(e.message) && !e.message.includes('\n'), `expected ${re}`);
    dispose(masks);
  };
  refuse({ 'layers.0.conv1.weight': randn([3, 3]).gt(0) }, /mask for 'layers\.0\.conv1\.weight' has shape \[3,3\], the parameter \[16,16,3,3\]/);
  refuse({ 'layers.0.conv1.weight': rowsOff('layers.0.conv1.weight', [...Array(16).keys()]) }, /removes every channel of 'layers\.0\.conv1\.weight' \(16 of 16\)/);
  refuse({ 'layers.0.conv2.weight': rowsOff('layers.0.conv2.weight', [2]) }, /removes channel 2 of 'layers\.0\.conv2\.weight' but keeps channel 2 of '[a-z0-9.]+weight', which is coupled to it/);
  refuse({ 'head.2.weight': rowsOff('head.2.weight', [0]) }, /channel 0 of 'head\.2\.weight', which cannot be removed: it reaches the model output/);
  refuse({ 'nope.weight': randn([2]).gt(0) }, /mask for 'nope\.weight': the model has no parameter of that name/);
  model.dispose();
});
