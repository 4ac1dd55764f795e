/** Module: dot-path names, traversal, train/eval, state dicts (strict errors), hooks, setParameter. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerializationError, ShapeError, ConfigError } from '../../src/core/errors.js';
import { BatchNorm1d, Dropout, Linear, Module, ReLU, Sequential } from '../../src/nn/index.js';
import { dispose, memory, ones, tidy, zeros, type Tensor } from '../../src/tensor/index.js';
import { noLeaks } from './util.js';

/** A small tree: features = Sequential(Linear 4-3, BatchNorm1d 3, ReLU, Dropout), head = Linear 3-2. */
class Net extends Module {
  features = this.registerModule('features', new Sequential(new Linear(4, 3), new BatchNorm1d(3), new ReLU(), new Dropout(0.5)));
  head = this.registerModule('head', new Linear(3, 2));
  forward(x: Tensor): Tensor { return this.head.call(this.features.call(x)); }
}

test('parameters and buffers are named by dot paths, in registration order', () => {
  const n = new Net();
  assert.deepEqual(n.namedParameters().map(([k]) => k), ['features.0.weight', 'features.0.bias', 'features.1.weight', 'features.1.bias', 'head.weight', 'head.bias']);
  assert.deepEqual(n.namedBuffers().map(([k]) => k), ['features.1.running_mean', 'features.1.running_var', 'features.1.num_batches_tracked']);
  assert.deepEqual(n.namedModules().map(([k]) => k), ['', 'features', 'features.0', 'features.1', 'features.2', 'features.3', 'head']);
  assert.deepEqual(n.namedChildren().map(([k]) => k), ['features', 'head']);
  assert.equal(n.children().length, 2);
  assert.equal(n.modules().length, 7);
  assert.equal(n.getModule('features.1').typeName, 'BatchNorm1d');
  assert.equal(n.getModule(''), n);
  assert.throws(() => n.getModule('features.9'), /no submodule named 'features.9'/);
  assert.throws(() => n.getModule('nope.0'), /no submodule 'nope' on the path 'nope.0'/);
  assert.equal(n.numParameters(), 4 * 3 + 3 + 3 + 3 + 3 * 2 + 2);
  assert.ok(n.parameters().every((p) => p.requiresGrad));
  assert.ok(n.namedBuffers().every(([, b]) => !b.requiresGrad));
  assert.deepEqual(Object.keys(n.stateDict()), [...n.namedParameters(), ...n.namedBuffers()].map(([k]) => k));
  n.dispose();
});

test('train() and eval() reach every descendant; eval changes what Dropout and BatchNorm compute', () => {
  const n = new Net();
  n.eval();
  assert.ok(n.modules().every((m) => !m.training));
  const x = ones([8, 4]);
  const a = tidy(() => n.call(x).dataSync()), b = tidy(() => n.call(x).dataSync());
  assert.deepEqual(a, b, 'eval is deterministic');
  n.train();
  assert.ok(n.modules().every((m) => m.training));
  n.features.at(1).eval();
  assert.equal(n.features.at(1).training, false);
  assert.equal(n.features.at(3).training, true, 'eval() on a child leaves its siblings');
  assert.equal(n.train(false), n, 'train() returns the module');
  x.dispose();
  n.dispose();
});

test('stateDict round-trips into a fresh model: same outputs', () => {
  const a = new Net(), b = new Net();
  a.eval(); b.eval();
  tidy(() => {
    const x = ones([2, 4]);
    assert.notDeepEqual(a.call(x).dataSync(), b.call(x).dataSync());
    const r = b.loadStateDict(a.stateDict());
    assert.deepEqual(r, { missing: [], unexpected: [] });
    assert.deepEqual(a.call(x).dataSync(), b.call(x).dataSync());
  });
  assert.notEqual(a.stateDict()['head.weight'], b.stateDict()['head.weight'], 'values are copied, not shared');
  a.dispose(); b.dispose();
});

test('loadStateDict (strict) names missing, unexpected and misshapen keys, and changes nothing', async () => {
  await noLeaks('strict errors', () => {
    const n = new Net();
    const before = tidy(() => n.stateDict()['head.weight'].dataSync());
    const base = (): Record<string, Tensor> => Object.fromEntries(Object.entries(n.stateDict()).map(([k, t]) => [k, t.clone()]));
    const missing = base();
    missing['head.bias'].dispose();
    delete missing['head.bias'];
    assert.throws(() => n.loadStateDict(missing), (e: Error) => e instanceof SerializationError && /missing head\.bias/.test(e.message));
    const extra = { ...base(), 'head.extra': zeros([1]) };
    assert.throws(() => n.loadStateDict(extra), (e: Error) => e instanceof SerializationError && /unexpected head\.extra/.test(e.message));
    const bad = base();
    bad['features.0.weight'].dispose();
    bad['features.0.weight'] = zeros([3, 5]);
    assert.throws(() => n.loadStateDict(bad), (e: Error) => e instanceof ShapeError && /'features\.0\.weight' has shape \[3,5\] in the state dict but \[3,4\] in the model/.test(e.message));
    assert.deepEqual(tidy(() => n.stateDict()['head.weight'].dataSync()), before, 'a failed load leaves the weights');
    // Non-strict: loads what matches and reports the rest.
    for (const t of Object.values(extra)) t.fill_(0.5);
    const r = n.loadStateDict(Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'head.bias')), false);
    assert.deepEqual(r, { missing: ['head.bias'], unexpected: ['head.extra'] });
    assert.ok(tidy(() => n.stateDict()['head.weight'].dataSync()).every((v) => v === 0.5));
    for (const sd of [missing, extra, bad]) dispose(sd);
    n.dispose();
  });
});

test('forward hooks see input and output, may replace the output, and can be removed', () => {
  const n = new Net();
  n.eval();
  const seen: string[] = [];
  const off1 = n.features.at(0).registerForwardHook((m, x, y) => { seen.push(`${m.typeName} [${x.shape}] -> [${y.shape}]`); });
  const off2 = n.head.registerForwardHook((_m, _x, y) => y.mul(0));
  tidy(() => {
    const x = ones([5, 4]);
    const y = n.call(x).dataSync();
    assert.ok(y.length === 10 && y.every((v) => v === 0), 'the hook replaced the output');
    assert.deepEqual(seen, ['Linear [5,4] -> [5,3]']);
    off2();
    off1();
    assert.ok(n.call(x).dataSync().some((v) => v !== 0));
    assert.equal(seen.length, 1);
  });
  assert.doesNotThrow(off1, 'removing twice is harmless');
  n.dispose();
});

test('setParameter replaces a tensor by dot path (physically shrinking a layer) and frees the old one', () => {
  const n = new Net();
  const old = n.stateDict()['head.weight'];
  const replacement = tidy(() => ones([2, 3]).mul(2));
  const live = memory().tensors;
  n.setParameter('head.weight', replacement);
  assert.ok(old.isDisposed);
  assert.equal(memory().tensors, live - 1);
  const w = n.stateDict()['head.weight'];
  assert.ok(w.requiresGrad && w.kept, 'the new parameter is a kept leaf that trains');
  assert.equal(n.head.weight, w);
  // Shrink head's input from 3 to 2 features: new weight and a matching previous layer.
  n.setParameter('features.0.weight', zeros([2, 4]));
  n.setParameter('features.0.bias', zeros([2]));
  assert.deepEqual(n.features.at(0) instanceof Linear && (n.features.at(0) as Linear).weight.shape, [2, 4]);
  n.setBuffer('features.1.running_mean', ones([3]));
  assert.deepEqual(tidy(() => n.namedBuffers()[0][1].dataSync()), [1, 1, 1]);
  assert.throws(() => n.setParameter('head.nope', zeros([1])), (e: Error) => e instanceof ConfigError && /no parameter named 'head\.nope'/.test(e.message));
  assert.throws(() => n.setBuffer('head.weight', zeros([1])), /no buffer named 'head\.weight'/);
  assert.throws(() => n.setParameter('x.weight', zeros([1])), /no submodule 'x'/);
  n.dispose();
});

test('parameters survive tidy scopes; dispose() frees them all', async () => {
  const live = memory().tensors;
  const n = tidy(() => new Net());
  assert.ok(n.parameters().every((p) => !p.isDisposed));
  assert.equal(memory().tensors, live + 9);
  n.dispose();
  assert.equal(memory().tensors, live);
});

test('Sequential: children 0..n-1, at() with negative index, append()', () => {
  const s = new Sequential(new Linear(2, 2), new ReLU());
  s.append(new Linear(2, 1));
  assert.equal(s.length, 3);
  assert.equal(s.at(-1).typeName, 'Linear');
  assert.deepEqual(s.namedParameters().map(([k]) => k), ['0.weight', '0.bias', '2.weight', '2.bias']);
  tidy(() => assert.deepEqual(s.call(ones([4, 2])).shape, [4, 1]));
  s.dispose();
});
