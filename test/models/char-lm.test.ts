/**
 * char_lm: causal (a position's logits do not depend on later characters), bad inputs refused by
 * name, and a short run on the King James Bible reaching a validation perplexity well below what
 * character frequencies alone give.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { manualSeed } from '../../src/core/runtime.js';
import { KJV_DATA, KJV_PROGRAM } from '../../src/data/kjv.js';
import { trainCharLm } from '../../src/experiment/char-lm.js';
import { CharLM } from '../../src/models/char-lm.js';
import { memory, noGrad, tensor, tidy } from '../../src/tensor/index.js';

test('char_lm is causal: changing character t changes no logits before t', () => {
  manualSeed(0);
  const m = new CharLM({ vocab: 11, context: 8, dim: 16, depth: 2, heads: 4, mlp: 32 });
  m.eval();
  tidy(() => noGrad(() => {
    const a = m.call(tensor([[1, 2, 3, 4, 5, 6, 7, 8]], { dtype: 'int64' }));
    const b = m.call(tensor([[1, 2, 3, 4, 9, 10, 0, 8]], { dtype: 'int64' }));
    assert.deepEqual(a.shape, [1, 8, 11]);
    assert.equal(a.narrow(1, 0, 4).sub(b.narrow(1, 0, 4)).abs().max().item(), 0, 'positions 0-3 see only positions 0-3');
    assert.ok(a.narrow(1, 4, 1).sub(b.narrow(1, 4, 1)).abs().max().item() > 1e-4, 'position 4 sees its own character');
  }));
  assert.throws(() => tidy(() => m.call(tensor([[1, 2]]))), /char_lm: input must be int64 token ids/);
  assert.throws(() => tidy(() => m.call(tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9]], { dtype: 'int64' }))), /T <= 8, got \[1,9\]/);
  assert.throws(() => new CharLM({ vocab: 11, context: 8, dim: 10, depth: 1, heads: 4, mlp: 8 }), /heads 4 does not divide the width 10/);
  m.dispose();
});

const skip = !(existsSync(KJV_DATA) && existsSync(KJV_PROGRAM)) && `bible-kjv-text / bible-kjv not installed (${KJV_DATA}, ${KJV_PROGRAM})`;

// Measured (seed 0, one thread): validation perplexity 9.59 after 200 steps; the characters'
// frequencies alone give 20.49. About 25 s.
test('char_lm trains on the King James Bible: 200 AdamW steps reach validation perplexity < 12 (unigram 20.5)', { skip }, () => {
  const live = memory().tensors;
  const { model, result } = trainCharLm({ steps: 200, batch: 16, threads: 1, valWindows: 128, seed: 0 });
  model.dispose();
  assert.equal(result.vocab, 63);
  assert.equal(result.params, 112_319);
  assert.ok(Math.abs(result.unigramPerplexity - 20.49) < 0.01, `unigram perplexity ${result.unigramPerplexity}`);
  assert.ok(result.valPerplexity < 12, `validation perplexity ${result.valPerplexity}`);
  assert.ok(Number.isFinite(result.finalTrainLoss) && result.finalTrainLoss < 2.6, `train loss ${result.finalTrainLoss}`);
  assert.equal(memory().tensors, live);
});
