/** The one-shot functions against the CLI's methods: the same masks, element by element, for the same seed. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { pruneConfigFrom, pruneEnv } from '../../src/cli/prune.js';
import { ArgumentError, ConfigError, ShapeError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { setupData } from '../../src/experiment/data-setup.js';
import { runTraining } from '../../src/experiment/train-run.js';
import { grasp, magnitude, prune, random, snip } from '../../src/api/index.js';
import { createModel } from '../../src/models/registry.js';
import { Linear, ReLU, Sequential, Flatten } from '../../src/nn/layers.js';
import type { Module } from '../../src/nn/module.js';
import { runPrune } from '../../src/prune/options.js';
import { scoringBatch } from '../../src/prune/saliency.js';
import { keepCount } from '../../src/prune/select.js';
import type { PruneTarget } from '../../src/prune/target.js';
import { loadSafetensors } from '../../src/tensor/safetensors.js';
import { memory, ones, randn, tidy } from '../../src/tensor/index.js';
import { DATA, NO_MNIST } from '../prune/helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'topiary-api-'));
const small = (over: Record<string, unknown> = {}) => ({ model: 'mlp', widths: [64, 32], dataset: 'mnist' as const, epochs: 1, batchSize: 64, lr: 0.05, momentum: 0.9, subset: 1000, valFraction: 0.1, threads: 1, seed: 3, ...over });

async function cliMasks(o: Record<string, unknown>): Promise<Record<string, ReturnType<typeof loadSafetensors>['tensors'][string]>> {
  return (await cliRun(o)).masks;
}

/** The CLI's run: its masks, and its training config (defaults filled in as the CLI fills them). */
async function cliRun(o: Record<string, unknown>) {
  const out = tmp();
  const { train, prune: p } = pruneConfigFrom(o);
  await runPrune({ train, prune: p, run: { out, dataDir: DATA } }, pruneEnv);
  return { masks: loadSafetensors(join(out, 'masks.safetensors')).tensors, train };
}

function assertSameMasks(target: PruneTarget, cli: Record<string, import('../../src/tensor/tensor.js').Tensor>): void {
  assert.deepEqual(target.masks.names.sort(), Object.keys(cli).sort());
  for (const n of target.masks.names) {
    const same = tidy(() => target.mask(n).eq(cli[n].to('bool')).all().item() ? true : false);
    assert.equal(same, true, `mask of ${n} differs from the CLI's`);
  }
  for (const t of Object.values(cli)) t.dispose();
}

const mlp = (c: TrainConfig, data: { inputShape: number[]; numClasses: number }) =>
  createModel(c.model, { inputShape: data.inputShape, numClasses: data.numClasses, widths: c.widths, init: c.init });

test('magnitude of a trained model: the CLI masks, global, per layer and structured; exact count; apply or not', { skip: NO_MNIST }, async () => {
  const before = memory().tensors;
  const denseDir = tmp();
  const dense = await runTraining(validate(TrainConfig, small()), { out: denseDir, dataDir: DATA });
  dense.model.dispose();
  dense.data.dispose();
  const structured = await cliMasks({ ...small(), method: 'magnitude', sparsity: 0.5, granularity: 'structured', from: denseDir, finetune: false });
  {
    const model = createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10, widths: [64, 32] });
    const { tensors } = loadSafetensors(join(denseDir, 'model.safetensors'));
    model.loadStateDict(tensors);
    Object.values(tensors).forEach((t) => t.dispose());
    const r = magnitude(model, { sparsity: 0.5, granularity: 'structured', inputShape: [1, 28, 28] });
    assert.equal(r.record.granularity, 'structured');
    assertSameMasks(r.target, structured);
    r.target.dispose();
    model.dispose();
  }
  for (const scope of ['global', 'layer'] as const) {
    const cli = await cliMasks({ ...small(), method: 'magnitude', sparsity: 0.8, scope, from: denseDir, finetune: false });
    const model = createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10, widths: [64, 32] });
    const { tensors } = loadSafetensors(join(denseDir, 'model.safetensors'));
    model.loadStateDict(tensors);
    Object.values(tensors).forEach((t) => t.dispose());
    const w0 = tidy(() => model.namedParameters()[0][1].abs().sum().item());
    const kept = magnitude(model, { sparsity: 0.8, scope, apply: false });
    assert.equal(tidy(() => model.namedParameters()[0][1].abs().sum().item()), w0, 'apply: false leaves the weights');
    assertSameMasks(kept.target, cli);
    const total = kept.record.total;
    if (scope === 'global') assert.equal(kept.record.kept, keepCount(total, 0.8));
    else for (const l of kept.record.layers) assert.equal(l.kept, keepCount(l.total, 0.8));
    kept.target.dispose();
    const applied = magnitude(model, { sparsity: 0.8, scope });
    assert.ok(tidy(() => model.namedParameters()[0][1].abs().sum().item()) < w0, 'applied: pruned weights are zero');
    const nz = tidy(() => model.namedParameters().filter(([n]) => applied.target.weights.includes(n)).reduce((s, [, p]) => s + p.countNonzero().item(), 0));
    assert.equal(nz, applied.record.kept);
    applied.target.dispose();
    model.dispose();
  }
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('random, SNIP and GraSP at initialization: the CLI masks for the same seed', { skip: NO_MNIST }, async () => {
  const c = small();
  const cliRandom = await cliMasks({ ...c, method: 'random', sparsity: 0.7, finetune: false });
  const cliSnip = await cliMasks({ ...c, method: 'snip', sparsity: 0.9 });
  const g0 = await cliRun({ ...c, method: 'grasp', sparsity: 0.9 });
  const cliGrasp = g0.masks;
  const tc = g0.train;
  const data = await setupData(tc, { dataDir: DATA });
  try {
    // As the CLI does: the seed, the data, then the model.
    manualSeed(c.seed);
    let model: Module = mlp(tc, data);
    const r = random(model, { sparsity: 0.7 });
    assertSameMasks(r.target, cliRandom);
    assert.equal(r.record.kept, keepCount(r.record.total, 0.7));
    r.target.dispose();
    model.dispose();

    manualSeed(c.seed);
    model = mlp(tc, data);
    const b = scoringBatch(data.trainLoader, 100, { seed: c.seed, numClasses: data.numClasses });
    const s = snip(model, b, { sparsity: 0.9 });
    assertSameMasks(s.target, cliSnip);
    assert.equal(s.record.criterion, 'snip');
    s.target.dispose();
    model.dispose();
    b.x.dispose(); b.y.dispose();

    manualSeed(c.seed);
    model = mlp(tc, data);
    const gb = scoringBatch(data.trainLoader, 100, { seed: c.seed, classBalanced: true, numClasses: data.numClasses });
    const g = grasp(model, gb, { sparsity: 0.9, temperature: 200 });
    assertSameMasks(g.target, cliGrasp);
    g.target.dispose();
    model.dispose();
    gb.x.dispose(); gb.y.dispose();
  } finally {
    data.dispose();
  }
});

const net = () => new Sequential(new Flatten(), new Linear(16, 8), new ReLU(), new Linear(8, 4));

test('bad input: sparsity, nothing prunable, a criterion of the wrong shape, missing data: typed errors before any work', () => {
  const before = memory().tensors;
  const model = net();
  const w0 = tidy(() => model.namedParameters()[0][1].abs().sum().item());
  assert.throws(() => magnitude(model, { sparsity: 1 }), (e: Error) => e instanceof ArgumentError && /sparsity/.test(e.message));
  assert.throws(() => magnitude(model, { sparsity: -0.1 }), ArgumentError);
  assert.throws(() => magnitude(model, { sparsity: Number.NaN }), ArgumentError);
  assert.throws(() => magnitude(model, { sparsity: 0.5, prunable: /^nothing$/ }), (e: Error) => e instanceof ConfigError && /prunable/.test(e.message));
  assert.throws(() => snip(model, [], { sparsity: 0.5 }), (e: Error) => e instanceof ArgumentError && /batches/.test(e.message));
  assert.throws(() => prune(model, 'snip', { sparsity: 0.5 }), (e: Error) => e instanceof ArgumentError && /batches/.test(e.message));
  const wrong = { name: 'wrong_shape', description: 'rows only', hparams: z.object({}), needsData: false,
    score: ({ target }: { target: PruneTarget }) => new Map(target.weights.map((n) => [n, ones([target.param(n).shape[0]])])) };
  assert.throws(() => prune(model, wrong, { sparsity: 0.5 }), (e: Error) => e instanceof ShapeError && /wrong_shape/.test(e.message) && /shape/.test(e.message));
  assert.throws(() => prune(model, 'no_such_criterion', { sparsity: 0.5 }), /unknown criterion 'no_such_criterion' \(known: magnitude/);
  assert.equal(tidy(() => model.namedParameters()[0][1].abs().sum().item()), w0, 'nothing was pruned');
  model.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('a custom criterion value prunes exactly, and several batches are scored as one', () => {
  const model = net();
  const crit = { name: 'neg_magnitude', description: '-|w|: keep the smallest', hparams: z.object({}), needsData: false,
    score: ({ target }: { target: PruneTarget }) => tidy(() => new Map(target.weights.map((n) => [n, target.param(n).detach().abs().neg()]))) };
  const r = prune(model, crit, { sparsity: 0.75, apply: false });
  assert.equal(r.record.kept, keepCount(16 * 8 + 8 * 4, 0.75));
  // The kept weights are the smallest ones: every kept |w| <= every pruned |w|.
  const [w] = model.namedParameters().filter(([n]) => n === r.target.weights[0]).map(([, p]) => p);
  const m = r.target.mask(r.target.weights[0]);
  const { keptMax, prunedMin } = tidy(() => ({ keptMax: w.abs().maskedFill(m.logicalNot(), -1).max().item(), prunedMin: w.abs().maskedFill(m, 1e9).min().item() }));
  assert.ok(keptMax <= prunedMin, `${keptMax} <= ${prunedMin}`);
  r.target.dispose();
  const x = randn([6, 1, 4, 4]);
  const y = tidy(() => ones([6], { dtype: 'int64' }));
  const one = snip(model, { x, y }, { sparsity: 0.5 });
  const two = snip(model, [{ x: x.narrow(0, 0, 3), y: y.narrow(0, 0, 3) }, { x: x.narrow(0, 3, 3), y: y.narrow(0, 3, 3) }], { sparsity: 0.5, apply: false });
  for (const n of one.target.weights) assert.equal(tidy(() => one.target.mask(n).eq(two.target.mask(n)).all().item() ? true : false), true);
  one.target.dispose(); two.target.dispose(); x.dispose(); y.dispose(); model.dispose();
});
