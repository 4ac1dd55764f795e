/**
 * End to end on real MNIST (a subset): a small MLP trained by runTraining, then HIER-MOEA through
 * runHierMoea, as `topiary search` runs it. Checks the front's shape, the outputs on disk, resuming
 * after an interruption, and the rejection of bad options by field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/core/errors.js';
import { readRecipe, TrainConfig, validate } from '../../src/experiment/config.js';
import { ensureDense, hierMoeaCases, runHierMoea, selectCases } from '../../src/experiment/reproduce-hier-moea.js';
import { runTraining } from '../../src/experiment/train-run.js';
import { createModel } from '../../src/models/registry.js';
import { SearchConfig } from '../../src/prune/hier-moea/config.js';
import { PrunableLayout } from '../../src/prune/hier-moea/layout.js';
import { ThresholdDecoder } from '../../src/prune/hier-moea/phase1.js';
import { BitSpace } from '../../src/prune/hier-moea/phase2.js';
import { BitSet } from '../../src/evo/bitset.js';
import { decodeGenome, decodeNumber, type EncodedGenome, type EncodedNumber } from '../../src/evo/genome-codec.js';
import { loadMaskBits } from '../../src/prune/hier-moea/mask-io.js';
import { loadSafetensors, memory, saveSafetensors } from '../../src/tensor/index.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const skip = !existsSync(join(dataDir, 'mnist', 'train-images-idx3-ubyte.gz')) && `real MNIST not found under ${dataDir} (set TOPIARY_DATA)`;

const tmp = mkdtempSync(join(tmpdir(), 'hier-moea-e2e-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const denseCfg = { model: 'mlp', dataset: 'mnist', widths: [48], epochs: 2, batchSize: 64, lr: 0.05, momentum: 0.9, subset: 3000, valFraction: 0.2, threads: 1, seed: 0 };
const ckpt = join(tmp, 'dense', 'model.safetensors');
const searchCfg = { from: ckpt, pop: 8, phase1Gens: 4, phase2Gens: 4, valSize: 400, finetuneEpochs: 1, pick: [0.8], seed: 1 };

async function dense(): Promise<void> {
  if (existsSync(ckpt)) return;
  const run = await runTraining(validate(TrainConfig, denseCfg), { out: join(tmp, 'dense'), dataDir });
  run.model.dispose();
  run.data.dispose();
}

test('a short search gives a front of several solutions, each smaller one with a higher error, and writes its outputs', { skip }, async () => {
  await dense();
  const before = memory().tensors;
  const out = join(tmp, 'a');
  const r = await runHierMoea(validate(SearchConfig, searchCfg), { out, dataDir });
  assert.equal(memory().tensors, before, 'no tensor leaks');
  assert.ok(r.completed);
  assert.ok(r.solutions.length >= 3, `${r.solutions.length} solutions`);
  for (let i = 1; i < r.solutions.length; i++) {
    const a = r.solutions[i - 1], b = r.solutions[i];
    assert.ok(b.kept > a.kept && b.valError < a.valError, `solution ${i}: size ${b.kept} > ${a.kept} and error ${b.valError} < ${a.valError}`);
  }
  assert.ok(r.solutions.some((s) => s.phase === 2), 'phase 2 contributes to the final set');
  assert.ok(r.solutions[0].sparsity > 0.5, 'the front reaches sparse networks');
  assert.equal(r.evaluations, 8 * 4 * 2);
  assert.ok(r.hypervolume.phase1 > 0.5 && r.hypervolume.phase1 <= 1);
  assert.ok(r.hypervolume.final >= r.hypervolume.phase1 - 1e-12);
  // Outputs: every mask of the final set, its history, the plots, result.json.
  const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as { phase: number; hypervolume: number; front: unknown[] }[];
  assert.deepEqual(history.map((h) => h.phase), [1, 1, 1, 1, 2, 2, 2, 2]);
  // Each phase's front is its archive (every non-dominated point evaluated so far): it never gets worse.
  for (const i of [1, 2, 3, 5, 6, 7]) assert.ok(history[i].hypervolume >= history[i - 1].hypervolume - 1e-12, `hypervolume fell at record ${i}`);
  const model = createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10, widths: [48] });
  const layout = new PrunableLayout(model);
  const bits = loadMaskBits(join(out, 'pareto-masks.safetensors'), layout);
  assert.deepEqual(bits.map((b) => b.count()), r.solutions.map((s) => s.keptWeights));
  model.dispose();
  for (const f of ['pareto.json', 'fronts.svg', 'hypervolume.svg', 'result.json']) assert.ok(existsSync(join(out, f)), f);
  assert.match(readFileSync(join(out, 'fronts.svg'), 'utf8'), /^<svg/);
  // The knee and the 80% pick were fine-tuned with their masks fixed, then tested.
  assert.deepEqual(r.picks.map((p) => p.label), ['knee', 'sparsity-0.8']);
  for (const p of r.picks) {
    assert.equal(p.keptWeights, r.solutions[p.solution].keptWeights, 'the mask stayed fixed');
    assert.ok(p.testAccuracy > 0.5 && p.valErrorAfter <= 1);
  }
  assert.ok(r.picks[1].sparsity >= 0.8);
  assert.ok(r.denseTestAccuracy! > 0.8);
});

test('an interrupted search resumes from its last generation and ends as an uninterrupted one', { skip }, async () => {
  await dense();
  const out = join(tmp, 'b');
  const cfg = validate(SearchConfig, { ...searchCfg, pick: [] });
  const first = await runHierMoea(cfg, { out, dataDir, stopAfterGenerations: 3 });
  assert.equal(first.completed, false);
  const second = await runHierMoea(cfg, { out, dataDir, stopAfterGenerations: 3 }); // into phase 2
  assert.equal(second.completed, false);
  const state = JSON.parse(readFileSync(join(out, 'search-state.json'), 'utf8')) as { history: unknown[]; phase2: unknown };
  assert.equal(state.history.length, 6);
  assert.ok(state.phase2 !== null);
  const done = await runHierMoea(cfg, { out, dataDir });
  const whole = await runHierMoea(cfg, { out: join(tmp, 'c'), dataDir });
  assert.ok(done.completed && whole.completed);
  assert.deepEqual(done.solutions, whole.solutions);
  assert.deepEqual(done.hypervolume, whole.hypervolume);
  assert.equal(done.picks[0].testAccuracy, whole.picks[0].testAccuracy);
  // A different search into the same folder is refused, naming the field.
  await assert.rejects(runHierMoea(validate(SearchConfig, { ...searchCfg, pop: 10 }), { out, dataDir }),
    (e: unknown) => e instanceof ConfigError && e.issues[0].path === 'pop');
});

test('workers: 2 finds the same front as workers: 1, and a search stopped with one resumes with the other', { skip }, async () => {
  await dense();
  const base = { ...searchCfg, pick: [], finetuneEpochs: 0 };
  const one = await runHierMoea(validate(SearchConfig, base), { out: join(tmp, 'w1'), dataDir });
  const before = memory().tensors;
  const two = await runHierMoea(validate(SearchConfig, { ...base, workers: 2 }), { out: join(tmp, 'w2'), dataDir });
  assert.equal(memory().tensors, before, 'no tensor leaks');
  assert.ok(one.completed && two.completed);
  assert.deepEqual(two.solutions, one.solutions);
  assert.deepEqual(two.hypervolume, one.hypervolume);
  assert.deepEqual(two.reference, one.reference, 'the global-magnitude reference, evaluated by the pool too');
  assert.deepEqual(two.atSparsity, one.atSparsity);
  assert.equal(two.denseTestAccuracy, one.denseTestAccuracy);
  assert.equal(two.picks[0].testAccuracy, one.picks[0].testAccuracy);
  type H = { front: number[][]; hypervolume: number; rates?: unknown }[];
  const hist = (d: string) => (JSON.parse(readFileSync(join(tmp, d, 'history.json'), 'utf8')) as H).map((h) => [h.front, h.hypervolume, h.rates]);
  assert.deepEqual(hist('w2'), hist('w1'), 'every generation\'s front');
  // workers is not part of the search's identity: stopped with 2 workers, resumed with 1, the same result.
  const out = join(tmp, 'w3');
  const first = await runHierMoea(validate(SearchConfig, { ...base, workers: 2 }), { out, dataDir, stopAfterGenerations: 5 });
  assert.equal(first.completed, false);
  const rest = await runHierMoea(validate(SearchConfig, base), { out, dataDir });
  assert.deepEqual(rest.solutions, one.solutions);
  assert.deepEqual(rest.hypervolume, one.hypervolume);
});

const field = (path: string) => (e: unknown) => e instanceof ConfigError && e.issues.some((i) => i.path === path);

test('phase 2 starts from the phase-1 front: its first population holds each front solution within the heavy anchor, projected onto its weights', { skip }, async () => {
  await dense();
  const out = join(tmp, 'seeded');
  const r = await runHierMoea(validate(SearchConfig, { ...searchCfg, phase1Gens: 3, phase2Gens: 1, phase2Seeds: 1, finetuneEpochs: 0, pick: [] }), { out, dataDir });
  assert.ok(r.completed);
  const st = JSON.parse(readFileSync(join(out, 'search-state.json'), 'utf8'));
  const { tensors } = loadSafetensors(ckpt);
  const model = createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10, widths: [48] });
  try {
    model.loadStateDict(tensors);
    const layout = new PrunableLayout(model);
    const decoder = new ThresholdDecoder(layout);
    const space = new BitSpace(layout, decoder.decode(Float64Array.from(st.anchors.heavyGenome)));
    const seen = new Set<string>();
    const front = (st.phase1.population as { genome: EncodedGenome; objectives: EncodedNumber[]; rank: number }[])
      .filter((i) => i.rank === 0).map((i) => ({ g: decodeGenome(i.genome) as Float64Array, o: i.objectives.map(decodeNumber) }))
      .sort((a, b) => a.o[1] - b.o[1] || a.o[0] - b.o[0]).filter((i) => { const k = i.o.join(); if (seen.has(k)) return false; seen.add(k); return true; })
      .filter((i) => i.o[1] <= st.anchors.heavyPoint[1]);
    const expected = [...new Set(front.map((i) => space.fromMasks(decoder.decode(i.g)).words.join()))];
    assert.ok(expected.length >= 2 && expected.length <= searchCfg.pop, `${expected.length} seeds`);
    const pop2 = new Set((st.phase2.population as { genome: EncodedGenome }[]).map((i) => (decodeGenome(i.genome) as BitSet).words.join()));
    for (const e of expected) assert.ok(pop2.has(e), 'a projected phase-1 solution is in phase 2\'s first population');
    // The heavy anchor is on the phase-1 front and projects onto every bit of the space.
    const counts = front.map((i) => space.fromMasks(decoder.decode(i.g)).count());
    assert.equal(Math.max(...counts), space.nBits);
  } finally {
    model.dispose();
    for (const t of Object.values(tensors)) t.dispose();
  }
});

test('bad options are rejected naming the field', { skip }, async () => {
  await dense();
  assert.throws(() => validate(SearchConfig, { ...searchCfg, pop: 3 }), field('pop'));
  assert.throws(() => validate(SearchConfig, { ...searchCfg, importance: 'random' }), field('importance'));
  for (const workers of [0, -1, 1.5, '2']) assert.throws(() => validate(SearchConfig, { ...searchCfg, workers }), field('workers'));
  // The validation split of this dense run has 600 examples.
  await assert.rejects(runHierMoea(validate(SearchConfig, { ...searchCfg, valSize: 601 }), { out: join(tmp, 'bad1'), dataDir }), field('valSize'));
  await assert.rejects(runHierMoea(validate(SearchConfig, { ...searchCfg, model: 'lenet5' }), { out: join(tmp, 'bad2'), dataDir }), field('model'));
  // A checkpoint whose tensors do not fit the model its metadata names.
  const { tensors, metadata } = loadSafetensors(ckpt);
  const wrong = join(tmp, 'wrong.safetensors');
  saveSafetensors(wrong, tensors, { ...metadata, config: JSON.stringify({ ...JSON.parse(metadata.config), widths: [40] }) });
  for (const t of Object.values(tensors)) t.dispose();
  await assert.rejects(runHierMoea(validate(SearchConfig, { ...searchCfg, from: wrong }), { out: join(tmp, 'bad3'), dataDir }), field('from'));
  await assert.rejects(runHierMoea(validate(SearchConfig, { ...searchCfg, from: undefined }), { out: join(tmp, 'bad4'), dataDir }), field('from'));
  // Without --from, a recipe's dense: section is trained into <out>/dense, or reused if that run matches it.
  assert.equal(await ensureDense(validate(SearchConfig, { ...searchCfg, from: undefined, dense: denseCfg }), { out: tmp, dataDir }), ckpt);
  await assert.rejects(ensureDense(validate(SearchConfig, { ...searchCfg, from: undefined, dense: { ...denseCfg, epochs: 3 } }), { out: tmp, dataDir }), field('dense'));
  // Through the command line: one line naming the flag's field, exit code 2.
  const cli = spawnSync(process.execPath, [join(repo, 'bin', 'topiary.js'), 'search', '--from', ckpt, '--pop', '3', '--out', join(tmp, 'bad5')], { encoding: 'utf8' });
  assert.equal(cli.status, 2, cli.stderr);
  assert.match(cli.stderr, /pop: must be at least 4/);
  const cliWorkers = spawnSync(process.execPath, [join(repo, 'bin', 'topiary.js'), 'search', '--from', ckpt, '--workers', '0', '--out', join(tmp, 'bad6')], { encoding: 'utf8' });
  assert.equal(cliWorkers.status, 2, cliWorkers.stderr);
  assert.match(cliWorkers.stderr, /workers: must be a positive integer/);
});

test('the ResNet-56 and ResNet-110 CIFAR recipes are valid search options with a valid dense training', () => {
  for (const d of [56, 110]) {
    const c = validate(SearchConfig, readRecipe(join(repo, 'recipes', `hier-moea-resnet${d}.yaml`)), `recipe resnet${d}`);
    const t = validate(TrainConfig, c.dense, 'dense');
    assert.equal(t.model, `resnet${d}`);
    assert.equal(t.dataset, 'cifar10');
    assert.equal(c.pop, 40);
    assert.equal(c.valSize, 5000);
  }
});

test('HIER_MOEA_ONLY selects models of a budget, and an unknown one is refused naming the known ones', () => {
  const cases = hierMoeaCases('full', 3);
  assert.deepEqual(selectCases(cases, undefined).map((c) => c.key), ['lenet5', 'resnet20']);
  assert.deepEqual(selectCases(cases, 'lenet5').map((c) => c.key), ['lenet5']);
  assert.deepEqual(selectCases(cases, ' resnet20 , lenet5').map((c) => c.key), ['lenet5', 'resnet20']);
  const full = selectCases(cases, 'lenet5')[0];
  assert.deepEqual([full.search.pop, full.search.phase1Gens, full.search.phase2Gens, full.search.valSize], [40, 30, 60, 5000]);
  assert.throws(() => selectCases(cases, 'lenet5,vgg'), (e: unknown) => e instanceof ConfigError && /HIER_MOEA_ONLY: unknown model 'vgg' \(known: lenet5, resnet20\)/.test(e.message));
  assert.throws(() => selectCases(cases, ' , '), /HIER_MOEA_ONLY: unknown model ''/);
});
