/**
 * The memo (memo.ts): a batch with copies, and a later batch repeating earlier networks, give the
 * plain evaluator's results candidate for candidate while each distinct network is scored once;
 * a racing candidate stopped early is not kept (it is scored again next time).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/registry.js';
import { MaskedEvaluator } from '../../src/prune/hier-moea/evaluator.js';
import { PrunableLayout, type LayerMasks } from '../../src/prune/hier-moea/layout.js';
import { masksKey, MemoEvaluator } from '../../src/prune/hier-moea/memo.js';
import { memory, randint, randn } from '../../src/tensor/index.js';

test('the memo gives the plain evaluator\'s results and scores each distinct network once', async () => {
  const before = memory().tensors;
  manualSeed(1);
  const model = createModel('mlp', { inputShape: [1, 8, 8], numClasses: 10, widths: [32] });
  const layout = new PrunableLayout(model);
  const ev = new MaskedEvaluator(model, layout, { val: [0, 1].map(() => ({ x: randn([40, 1, 8, 8]), y: randint(0, 10, [40]) })), calib: [] });
  const rng = new Rng(2);
  const distinct: LayerMasks[] = [0.9, 0.5, 0.2].map((k) => layout.sizes.map((n) => Uint8Array.from({ length: n }, () => (rng.random() < k ? 1 : 0))));
  const copy = (m: LayerMasks) => m.map((x) => Uint8Array.from(x));
  assert.equal(masksKey(distinct[0]), masksKey(copy(distinct[0])));
  assert.notEqual(masksKey(distinct[0]), masksKey(distinct[1]));
  const batch1 = [distinct[0], copy(distinct[0]), distinct[1]];
  const batch2 = [copy(distinct[1]), distinct[2], copy(distinct[0]), copy(distinct[2])];
  const memo = new MemoEvaluator(ev);
  const a = await memo.evaluateBatch(batch1.length, (i) => batch1[i]);
  assert.equal(ev.evaluations, 2, 'the copy within the batch is scored once');
  assert.equal(memo.lastHits, 1);
  const b = await memo.evaluateBatch(batch2.length, (i) => batch2[i]);
  assert.equal(ev.evaluations, 3, 'only the new network is scored');
  assert.equal(memo.lastHits, 3);
  const plain = await ev.evaluateBatch(batch1.length + batch2.length, (i) => [...batch1, ...batch2][i]);
  assert.deepEqual([...a, ...b], plain);
  // A stopped (racing) result is not kept: the same network with a bound is scored again.
  const wrong = plain[2].n - plain[2].correct;
  const r1 = await new MemoEvaluator(ev).evaluateBatch(1, () => distinct[2], () => 0);
  assert.ok(wrong > 0 && r1[0].seen !== undefined, 'stopped after its first batch');
  const m2 = new MemoEvaluator(ev);
  await m2.evaluateBatch(1, () => distinct[2], () => 0);
  const n = ev.evaluations;
  await m2.evaluateBatch(1, () => distinct[2], () => 0);
  assert.equal(ev.evaluations, n + 1, 'scored again');
  ev.dispose();
  model.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});
