/** PMP and GMP end to end on an MNIST subset: real accuracy, exact sparsity, the schedule followed, resuming. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pruneConfigFrom, pruneEnv } from '../../src/cli/prune.js';
import { runPrune } from '../../src/prune/options.js';
import { keepCount } from '../../src/prune/select.js';
import { linear } from '../../src/prune/schedules.js';
import { loadSafetensors } from '../../src/tensor/safetensors.js';
import { dispose, memory } from '../../src/tensor/index.js';
import { DATA, NO_MNIST, quickTrain } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'topiary-prune-e2e-'));
const N = 266200; // LeNet-300-100's prunable weights

test('pmp: LeNet-300-100 at 90%, global threshold once per epoch; resuming mid-schedule changes nothing', { skip: NO_MNIST }, async () => {
  const before = memory().tensors;
  const { train, prune } = pruneConfigFrom({ ...quickTrain({ epochs: 4 }), method: 'pmp', sparsity: 0.9, phase: 3 });
  const out = tmp();
  const r = await runPrune({ train, prune, run: { out, dataDir: DATA } }, pruneEnv);
  assert.equal(r.completed, true);
  assert.equal(r.keptWeights, keepCount(N, 0.9), 'exact final sparsity');
  assert.ok(Math.abs((r.achievedSparsity as number) - 0.9) <= 1 / N);
  assert.ok((r.testAccuracy as number) > 0.88, `test accuracy ${r.testAccuracy}`);
  const rec = r.record as { followed: { epoch: number; target: number; kept: number; achieved: number; threshold: number }[]; phase: number };
  assert.equal(rec.phase, 3);
  assert.deepEqual(rec.followed.map((f) => f.epoch), [0, 1, 2, 3]);
  rec.followed.forEach((f) => assert.equal(f.kept, keepCount(N, linear.sparsityAt(f.epoch, { final: 0.9, phase: 3 })), `epoch ${f.epoch}`));
  assert.ok(rec.followed.every((f) => Number.isFinite(f.threshold) && f.threshold >= 0), 'each epoch records its threshold');
  const layers = r.sparsityLayers as { name: string; total: number; kept: number }[];
  assert.deepEqual(layers.map((l) => l.name), ['1.weight', '3.weight', '5.weight']);
  assert.equal(layers.reduce((s, l) => s + l.kept, 0), r.keptWeights);
  // The saved weights are zero exactly where the saved masks are.
  const w = loadSafetensors(join(out, 'model.safetensors')).tensors, m = loadSafetensors(join(out, 'masks.safetensors')).tensors;
  for (const n of Object.keys(m)) {
    const wd = w[n].dataSync(), md = m[n].dataSync();
    md.forEach((v, i) => { if (!v) assert.ok(wd[i] === 0, `${n}[${i}]`); });
  }
  dispose([w, m]);

  // Interrupted after 2 epochs, then resumed: the same masks and the same test accuracy.
  const out2 = tmp();
  const part = await runPrune({ train, prune, run: { out: out2, dataDir: DATA, stopAfterEpochs: 2 } }, pruneEnv);
  assert.equal(part.completed, false);
  const full = await runPrune({ train, prune, run: { out: out2, dataDir: DATA } }, pruneEnv);
  assert.equal(full.resumedFrom, 1);
  assert.equal(full.testAccuracy, r.testAccuracy);
  assert.deepEqual((full.record as typeof rec).followed.map((f) => f.kept), rec.followed.map((f) => f.kept));
  const m1 = loadSafetensors(join(out, 'masks.safetensors')).tensors, m2 = loadSafetensors(join(out2, 'masks.safetensors')).tensors;
  for (const n of Object.keys(m1)) assert.ok(m1[n].equal(m2[n]), `${n}: same mask after resuming`);
  dispose([m1, m2]);
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('pmp per layer: every layer at the sparsity', { skip: NO_MNIST }, async () => {
  const { train, prune } = pruneConfigFrom({ ...quickTrain({ epochs: 2 }), method: 'pmp', sparsity: 0.8, scope: 'layer' });
  const r = await runPrune({ train, prune, run: { out: tmp(), dataDir: DATA } }, pruneEnv);
  for (const l of r.sparsityLayers as { total: number; kept: number }[]) assert.equal(l.kept, keepCount(l.total, 0.8));
  assert.ok((r.testAccuracy as number) > 0.88, `test accuracy ${r.testAccuracy}`);
});

test('gmp: cubic schedule every 20 steps reaches the final sparsity, then trains on', { skip: NO_MNIST }, async () => {
  const { train, prune } = pruneConfigFrom({ ...quickTrain({ epochs: 3 }), method: 'gmp', sparsity: 0.9, startEpoch: 0, endEpoch: 2, frequency: 20 });
  const out = tmp();
  const r = await runPrune({ train, prune, run: { out, dataDir: DATA } }, pruneEnv);
  assert.equal(r.keptWeights, keepCount(N, 0.9));
  assert.ok((r.testAccuracy as number) > 0.88, `test accuracy ${r.testAccuracy}`);
  const rec = r.record as { followed: { step: number; target: number; kept: number }[]; steps: { start: number; end: number } };
  const f = rec.followed;
  assert.equal(f[0].step, 0);
  assert.equal(f[f.length - 1].step, rec.steps.end);
  assert.ok(f.every((u, i) => i === 0 || (u.kept <= f[i - 1].kept && u.target >= f[i - 1].target)), 'sparsity only grows');
  assert.ok(f.slice(0, -1).every((u) => u.step % 20 === 0), 'updates every 20 steps');
  const saved = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
  assert.equal(saved.record.followed.length, f.length);
});

test('pmp structured: whole neurons with their biases, output layer dense, sparsity within one row', { skip: NO_MNIST }, async () => {
  const { train, prune } = pruneConfigFrom({ ...quickTrain({ epochs: 2 }), method: 'pmp', sparsity: 0.5, granularity: 'structured' });
  const out = tmp();
  const r = await runPrune({ train, prune, run: { out, dataDir: DATA } }, pruneEnv);
  const layers = r.sparsityLayers as { name: string; total: number; kept: number }[];
  assert.deepEqual(layers.map((l) => l.name), ['1.weight', '3.weight'], 'the output layer is not structured-prunable');
  assert.ok(Math.abs((r.keptWeights as number) - keepCount(265200, 0.5)) <= 784 / 2, `kept ${r.keptWeights}`);
  assert.ok((r.testAccuracy as number) > 0.88, `test accuracy ${r.testAccuracy}`);
  const w = loadSafetensors(join(out, 'model.safetensors')).tensors;
  const w1 = w['1.weight'].dataSync(), b1 = w['1.bias'].dataSync();
  let deadRows = 0;
  for (let row = 0; row < 300; row++) {
    const zero = w1.slice(row * 784, (row + 1) * 784).every((v) => v === 0);
    if (zero) { deadRows++; assert.ok(b1[row] === 0, `bias of pruned neuron ${row}`); }
  }
  assert.ok(deadRows > 0, 'some first-layer neurons removed');
  dispose(w);
});
