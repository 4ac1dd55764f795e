/**
 * Native memory: scopes free what they should and nothing else, disposal is idempotent, memory()
 * counts tensors and bytes exactly, and a long training loop on raw tensors keeps both flat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArgumentError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import {
  F, Tensor, dispose, keep, memory, noGrad, ones, randint, randn, tidy, zeros,
} from '../../src/tensor/index.js';

const live = (): number => memory().tensors;

test('tidy frees intermediates and returns its result to the caller', () => {
  const before = memory();
  let a: Tensor | undefined, b: Tensor | undefined;
  const r = tidy(() => {
    a = ones([2, 3]);
    b = a.add(1);
    return b.mul(3).sum();
  });
  assert.equal(r.item(), 36);
  assert.equal(a!.isDisposed, true);
  assert.equal(b!.isDisposed, true);
  assert.equal(r.isDisposed, false);
  assert.equal(live(), before.tensors + 1);
  assert.equal(memory().bytes, before.bytes + 4);
  r.dispose();
  assert.deepEqual(memory(), before);
});

test('tidy returns tensors inside arrays, plain objects and maps; nested scopes hand results outward', () => {
  const before = live();
  const out = tidy(() => {
    const inner = tidy(() => {
      const tmp = ones([3]);
      return { x: tmp.add(1), list: [tmp.mul(2), zeros([1])] };
    });
    assert.equal(memory().scopes, 1);
    const m = new Map([['y', inner.x.add(1)]]);
    inner.list[1].dispose(); // disposing by hand inside a scope is fine
    return { inner, m };
  });
  assert.deepEqual(out.inner.x.toArray(), [2, 2, 2]);
  assert.deepEqual(out.inner.list[0].toArray(), [2, 2, 2]);
  assert.deepEqual(out.m.get('y')!.toArray(), [3, 3, 3]);
  assert.equal(live(), before + 3);
  dispose(out);
  assert.equal(live(), before);
  assert.equal(memory().scopes, 0);
});

test('tidy frees everything when fn throws, and closes its scope', () => {
  const before = live();
  let made: Tensor | undefined;
  assert.throws(() => tidy(() => {
    made = ones([4]).mul(2);
    throw new Error('boom');
  }), /boom/);
  assert.equal(made!.isDisposed, true);
  assert.equal(live(), before);
  assert.equal(memory().scopes, 0);
});

test('tidy refuses an async fn, freeing what it made', () => {
  const before = live();
  assert.throws(() => tidy(() => { ones([2]); return Promise.resolve(1); }), ArgumentError);
  assert.equal(live(), before);
});

test('keep() survives every enclosing scope until disposed by hand', () => {
  const before = live();
  let k: Tensor | undefined;
  tidy(() => {
    tidy(() => { k = keep(ones([2]).mul(5)); });
  });
  assert.equal(k!.isDisposed, false);
  assert.deepEqual(k!.toArray(), [5, 5]);
  assert.equal(live(), before + 1);
  k!.dispose();
  assert.equal(live(), before);
});

test('tensors created outside a tidy are not touched by it; in-place results stay', () => {
  const x = zeros([3]);
  const r = tidy(() => x.add_(2));
  assert.equal(r, x);
  assert.equal(x.isDisposed, false);
  assert.deepEqual(x.toArray(), [2, 2, 2]);
  x.dispose();
});

test('dispose twice is safe, and dispose() walks structures', () => {
  const before = live();
  const t = ones([2]);
  t.dispose();
  t.dispose();
  assert.equal(t.isDisposed, true);
  assert.equal(String(t), 'Tensor(disposed)');
  const s = { a: ones([1]), b: [ones([1]), new Map([['c', ones([1])]])] };
  dispose(s);
  dispose(s);
  assert.equal(s.a.isDisposed, true);
  assert.equal(live(), before);
});

test('Symbol.dispose: `using` frees at the end of the block', () => {
  const before = live();
  let seen: Tensor | undefined;
  {
    using t = ones([3]);
    seen = t;
    assert.equal(live(), before + 1);
  }
  assert.equal(seen.isDisposed, true);
  assert.equal(live(), before);
  const u = ones([1]);
  u[Symbol.dispose]();
  assert.equal(u.isDisposed, true);
});

test('memory() counts tensors and element bytes per dtype; views count their own elements', () => {
  const before = memory();
  const made = [
    zeros([10]), zeros([3], { dtype: 'int64' }), zeros([5], { dtype: 'bool' }), zeros([2, 2], { dtype: 'float64' }),
    zeros([4], { dtype: 'float16' }), zeros([0]),
  ];
  const after = memory();
  assert.equal(after.tensors - before.tensors, 6);
  assert.equal(after.bytes - before.bytes, 40 + 24 + 5 + 32 + 8 + 0);
  const v = made[0].narrow(0, 0, 4);
  assert.equal(memory().bytes - after.bytes, 16);
  v.dispose();
  dispose(made);
  assert.deepEqual(memory(), before);
});

test('a 5000-step training loop (after 1000 warm-up steps) keeps tensors and bytes flat and RSS within 10%', (t) => {
  manualSeed(7);
  const [inDim, hidden, classes, batch] = [16, 24, 5, 32];
  const x = keep(randn([batch, inDim]));
  const y = keep(randint(0, classes, [batch]));
  const params = tidy(() => [
    randn([hidden, inDim]).mul(0.3), zeros([hidden]), randn([classes, hidden]).mul(0.3), zeros([classes]),
  ].map((p) => keep(p.requiresGrad_(true))));
  const [W1, b1, W2, b2] = params;
  const lr = 0.1;
  const step = (): number => tidy(() => {
    const logits = F.linear(F.relu(F.linear(x, W1, b1)), W2, b2);
    const loss = F.crossEntropy(logits, y);
    loss.backward();
    noGrad(() => {
      for (const p of params) p.add_(p.grad!, -lr);
    });
    for (const p of params) p.grad = null;
    return loss.item();
  });

  const firstLoss = step();
  for (let i = 1; i < 1000; i++) step(); // warm-up: allocator caches and V8's heap settle
  const warm = memory();
  const warmRss = process.memoryUsage().rss;
  let lastLoss = NaN;
  let maxRss = warmRss;
  for (let i = 0; i < 5000; i++) {
    lastLoss = step();
    if (i % 250 === 0) {
      const m = memory();
      assert.equal(m.tensors, warm.tensors, `live tensors at step ${i}`);
      assert.equal(m.bytes, warm.bytes, `live bytes at step ${i}`);
      maxRss = Math.max(maxRss, process.memoryUsage().rss);
    }
  }
  assert.deepEqual(memory(), warm);
  const endRss = process.memoryUsage().rss;
  maxRss = Math.max(maxRss, endRss);
  t.diagnostic(`RSS ${(warmRss / 2 ** 20).toFixed(1)} MB after warm-up, peak ${(maxRss / 2 ** 20).toFixed(1)} MB, end ${(endRss / 2 ** 20).toFixed(1)} MB; loss ${firstLoss.toFixed(3)} -> ${lastLoss.toFixed(3)}`);
  assert.ok(Math.abs(endRss - warmRss) <= 0.1 * warmRss, `RSS went from ${(warmRss / 2 ** 20).toFixed(1)} MB to ${(endRss / 2 ** 20).toFixed(1)} MB`);
  assert.ok(maxRss <= 1.1 * warmRss, `RSS peaked at ${(maxRss / 2 ** 20).toFixed(1)} MB after ${(warmRss / 2 ** 20).toFixed(1)} MB`);
  // The loop really trained: the loss fell a long way from log(5) ~ 1.6.
  assert.ok(firstLoss > 1, `first loss ${firstLoss}`);
  assert.ok(lastLoss < 0.2 * firstLoss, `loss ${firstLoss} -> ${lastLoss}`);
  for (const p of params) assert.equal(p.grad, null);
  dispose([x, y, params]);
});

test('no test here leaked a tensor', () => {
  assert.equal(memory().tensors, 0);
  assert.equal(memory().bytes, 0);
});
