/**
 * EvalPool: candidates scored in worker threads get exactly the errors of the in-process
 * evaluator (a model without and one with BatchNorm), worker failures become rejected promises
 * with the worker's message, and the workers never keep the process alive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArgumentError, RegistryError, SerializationError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { getNumThreads, getRngState, manualSeed, setNumThreads } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/registry.js';
import type { ModelConfig } from '../../src/models/types.js';
import { EvalPool } from '../../src/prune/hier-moea/eval-pool.js';
import { MaskedEvaluator } from '../../src/prune/hier-moea/evaluator.js';
import { PrunableLayout, type LayerMasks } from '../../src/prune/hier-moea/layout.js';
import { memory, noGrad, randint, randn, type Tensor } from '../../src/tensor/index.js';

const here = resolve(fileURLToPath(import.meta.url), '..');

function randomMasks(layout: PrunableLayout, rng: Rng, keep: number): LayerMasks {
  return layout.sizes.map((n) => Uint8Array.from({ length: n }, () => (rng.random() < keep ? 1 : 0)));
}

interface Setup { model: ReturnType<typeof createModel>; layout: PrunableLayout; val: { x: Tensor; y: Tensor }[]; calib: Tensor[] }

function setup(name: string, config: ModelConfig, bn: boolean): Setup {
  manualSeed(3);
  const model = createModel(name, config);
  const [c, h, w] = config.inputShape;
  // Trained-looking BatchNorm statistics: they must reach the workers with the weights.
  if (bn) noGrad(() => { for (const [n, b] of model.namedBuffers()) if (n.endsWith('running_mean')) b.fill_(0.2); });
  const val = [0, 1, 2].map(() => ({ x: randn([30, c, h, w]), y: randint(0, 10, [30]) }));
  const calib = bn ? [randn([16, c, h, w]), randn([16, c, h, w])] : [];
  return { model, layout: new PrunableLayout(model), val, calib };
}

const cases: [string, string, ModelConfig, boolean][] = [
  ['a small MLP', 'mlp', { inputShape: [1, 8, 8], numClasses: 10, widths: [32, 16] }, false],
  ['ResNet-20 (BatchNorm, recalibrated per candidate)', 'resnet20', { inputShape: [1, 8, 8], numClasses: 10 }, true],
];

for (const [what, name, config, bn] of cases) {
  test(`the pool's errors equal the in-process evaluator's, candidate for candidate: ${what}`, async () => {
    const before = memory().tensors;
    const s = setup(name, config, bn);
    const rng = new Rng(5);
    const masks = [1, 0.9, 0.6, 0.4, 0.2, 0.05, 0.5].map((k) => randomMasks(s.layout, rng, k));
    const rngBefore = getRngState();
    const live = memory().tensors;
    setNumThreads(2);
    const pool = await EvalPool.start({ model: name, config, state: s.model.stateDict(), data: { val: s.val, calib: s.calib }, layout: s.layout, workers: 2 });
    try {
      // The workers count their own tensors and leave the main thread's generator where it was.
      assert.equal(memory().tensors, live, 'the main thread counts only its own tensors');
      assert.deepEqual(getRngState(), rngBefore, 'building the workers\' models does not move the main generator');
      assert.equal(pool.size, 2);
      // Each worker runs libtorch with one thread; the main thread keeps its two (at::set_num_threads is per thread for OpenMP).
      assert.deepEqual(pool.workerThreads, [1, 1]);
      assert.equal(getNumThreads(), 2);
      const ev = new MaskedEvaluator(s.model, s.layout, { val: s.val, calib: s.calib });
      const seq = await ev.evaluateBatch(masks.length, (i) => masks[i]);
      const par = await pool.evaluateBatch(masks.length, (i) => masks[i]);
      assert.deepEqual(par, seq);
      assert.ok(new Set(seq.map((r) => r.correct)).size > 1, 'the masks give different errors');
      // A second batch on the same workers (in another order) gives the same again.
      const again = await pool.evaluateBatch(masks.length, (i) => masks[masks.length - 1 - i]);
      assert.deepEqual(again, [...seq].reverse());
      assert.equal(pool.evaluations, 2 * masks.length);
      ev.dispose();
    } finally {
      await pool.close();
      s.model.dispose();
    }
    assert.equal(memory().tensors, before, 'no tensor leaks');
  });
}

test('a failure inside a worker rejects the batch with the worker\'s message, and the pool stops', async () => {
  const s = setup('mlp', cases[0][2], false);
  const pool = await EvalPool.start({ model: 'mlp', config: cases[0][2], state: s.model.stateDict(), data: { val: s.val, calib: [] }, layout: s.layout, workers: 2 });
  try {
    const ok = randomMasks(s.layout, new Rng(1), 0.5);
    await assert.rejects(pool.evaluateBatch(4, (i) => (i === 2 ? [new Uint8Array(3)] : ok)),
      (e: unknown) => e instanceof ArgumentError && /evaluation worker \d, candidate 2: masks for 1 layers, the model has 3 prunable layers/.test(e.message));
    // The pool is done: later batches get the same error at once.
    await assert.rejects(pool.evaluateBatch(1, () => ok), /candidate 2: masks for 1 layers/);
    await pool.close();
    await assert.rejects(pool.evaluateBatch(1, () => ok), /candidate 2: masks for 1 layers/);
  } finally {
    await pool.close();
    for (const b of s.val) { b.x.dispose(); b.y.dispose(); }
    s.model.dispose();
  }
});

test('a worker that cannot build the model rejects start() naming the cause', async () => {
  const s = setup('mlp', cases[0][2], false);
  const data = { val: s.val, calib: [] };
  try {
    await assert.rejects(EvalPool.start({ model: 'no-such-net', config: cases[0][2], state: s.model.stateDict(), data, layout: s.layout, workers: 2 }),
      (e: unknown) => e instanceof RegistryError && /evaluation worker \d could not start: unknown model 'no-such-net'/.test(e.message));
    // The same name with other widths: the dense state dict does not fit the rebuilt model.
    await assert.rejects(EvalPool.start({ model: 'mlp', config: { ...cases[0][2], widths: [8] }, state: s.model.stateDict(), data, layout: s.layout, workers: 1 }),
      (e: unknown) => e instanceof SerializationError && /could not start: loadStateDict: unexpected 5.bias/.test(e.message));
    await assert.rejects(EvalPool.start({ model: 'mlp', config: cases[0][2], state: s.model.stateDict(), data, layout: s.layout, workers: 0 }), /workers: expected a positive integer/);
  } finally {
    for (const b of s.val) { b.x.dispose(); b.y.dispose(); }
    s.model.dispose();
  }
});

test('the workers never keep a process alive: a pool left open, or a worker error left unhandled, still ends it', () => {
  const run = (mode: string) => spawnSync(process.execPath, ['--import', 'tsx', join(here, 'pool-child.ts'), mode],
    { encoding: 'utf8', timeout: 120_000, cwd: resolve(here, '../..') });
  const forgot = run('forget');
  assert.equal(forgot.signal, null, 'ended by itself');
  assert.equal(forgot.status, 0, forgot.stderr);
  assert.match(forgot.stdout, /evaluated 3/);
  const threw = run('throw');
  assert.equal(threw.signal, null, 'ended by itself');
  assert.equal(threw.status, 1);
  assert.match(threw.stderr, /ArgumentError: evaluation worker \d, candidate \d: masks for 1 layers/);
});
