/**
 * HIER-MOEA at structured granularity (issue 10 section 3): phase 1's genes remove whole channel
 * groups (smallest norm first, per family), the masks are whole groups element by element, the
 * masked model (companions zeroed, BatchNorm recalibrated) equals its physically shrunk model, and
 * a structured search from an ONNX model writes its picks shrunk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/core/rng.js';
import { manualSeed } from '../../src/core/runtime.js';
import { validate } from '../../src/experiment/config.js';
import { runHierMoea } from '../../src/experiment/reproduce-hier-moea.js';
import { loadGraphModule } from '../../src/graph/run.js';
import { shrink } from '../../src/graph/shrink.js';
import { createModel } from '../../src/models/registry.js';
import { SearchConfig } from '../../src/prune/hier-moea/config.js';
import { MaskedEvaluator } from '../../src/prune/hier-moea/evaluator.js';
import { PrunableLayout } from '../../src/prune/hier-moea/layout.js';
import { GroupDecoder, groupStructure, removedGroups } from '../../src/prune/hier-moea/structured.js';
import { memory, noGrad, randint, randn, tensor, tidy } from '../../src/tensor/index.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const skip = !existsSync(join(dataDir, 'mnist', 'train-images-idx3-ubyte.gz')) && `real MNIST not found under ${dataDir} (set TOPIARY_DATA)`;
const inputShape = [1, 8, 8];

function resnet() {
  manualSeed(4);
  const model = createModel('resnet20', { inputShape, numClasses: 10 });
  noGrad(() => { for (const [n, b] of model.namedBuffers()) if (n.endsWith('running_var')) b.fill_(1.5); });
  const layout = new PrunableLayout(model);
  return { model, layout, structure: groupStructure(model, layout, inputShape) };
}

test('structured phase 1: each gene removes the smallest-norm groups of its family, and the masks are whole groups, element by element', () => {
  const before = memory().tensors;
  const { model, layout, structure } = resnet();
  const dec = new GroupDecoder(layout, structure);
  // ResNet-20 with option-A shortcuts: 3 stage families (coupled by the additions) and 9 inner convs.
  assert.equal(dec.nGenes, 12);
  const rng = new Rng(3);
  for (let trial = 0; trial < 4; trial++) {
    const genome: Float64Array = Float64Array.from({ length: dec.nGenes }, () => rng.uniform(0, 0.9));
    const masks = dec.decode(genome);
    const gone = removedGroups(layout, structure, masks);
    // The norm of each group, computed here from the weights (mean |w| over its producer rows).
    const norms = structure.groups.map((g) => tidy(() => {
      let s = 0, n = 0;
      for (const r of g.rows) {
        const w = model.namedParameters().find(([k]) => k === r.param)![1];
        const rows = w.reshape(w.shape[0], -1).slice(0, r.start, r.start + r.length, 1).abs();
        s += rows.sum().item(); n += rows.numel;
      }
      return s / n;
    }));
    dec.families.forEach((f, fi) => {
      const ids = structure.groups.map((g, i) => i).filter((i) => structure.groups[i].family === f);
      const removed = ids.filter((i) => gone[i]);
      assert.equal(removed.length, Math.min(ids.length - 1, Math.round(genome[fi] * ids.length)), `family ${f}`);
      const keptMin = Math.min(...ids.filter((i) => !gone[i]).map((i) => norms[i]));
      for (const i of removed) assert.ok(norms[i] <= keptMin + 1e-6, `family ${f}: removed group ${i} (norm ${norms[i]}) is not among the smallest (kept min ${keptMin})`);
    });
    // Element by element: a weight is pruned exactly when a removed group owns its row or its input column.
    const expected = layout.sizes.map((s) => new Uint8Array(s).fill(1));
    structure.groups.forEach((g, i) => {
      if (!gone[i]) return;
      for (const r of [...g.rows.map((x) => ({ ...x, kind: 'row' })), ...g.cols.map((x) => ({ ...x, kind: 'col' }))]) {
        const l = layout.names.indexOf(r.param), shape = layout.params[l].shape;
        const inner = shape.slice(2).reduce((a, b) => a * b, 1);
        for (let o = 0; o < shape[0]; o++) for (let c = 0; c < shape[1]; c++) {
          const hit = r.kind === 'row' ? o >= r.start && o < r.start + r.length : c >= r.start && c < r.start + r.length;
          if (hit) expected[l].fill(0, (o * shape[1] + c) * inner, (o * shape[1] + c + 1) * inner);
        }
      }
    });
    masks.forEach((m, l) => { for (let i = 0; i < m.length; i++) if (m[i] !== expected[l][i]) assert.fail(`${layout.names[l]}[${i}]: mask ${m[i]}, expected ${expected[l][i]}`); });
    assert.ok(gone.some(Boolean), 'something was removed');
    assert.equal(dec.keptFraction(genome), masks.reduce((s, m) => s + m.reduce((a, b) => a + b, 0), 0) / layout.total);
  }
  model.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('a structured solution, masked (companions zeroed, BatchNorm recalibrated), equals its physically shrunk model within 1e-5', () => {
  const before = memory().tensors;
  const { model, layout, structure } = resnet();
  const dec = new GroupDecoder(layout, structure);
  const val = [{ x: randn([16, ...inputShape]), y: randint(0, 10, [16]) }];
  const calib = [randn([32, ...inputShape]), randn([32, ...inputShape])];
  const ev = new MaskedEvaluator(model, layout, { val, calib }, { structure });
  const genome = Float64Array.from({ length: dec.nGenes }, (_, i) => 0.3 + 0.05 * (i % 5));
  const masks = dec.decode(genome);
  ev.apply(masks);
  const m = new Map(layout.names.map((n, l) => [n, tensor(masks[l], { shape: layout.params[l].shape })]));
  const small = shrink(model, m, { inputShape });
  for (const t of m.values()) t.dispose();
  model.eval(); small.eval();
  const x = randn([8, ...inputShape]);
  const [diff, scale] = tidy(() => noGrad(() => { const a = model.call(x), b = small.call(x); return [a.sub(b).abs().max().item(), a.abs().max().item()]; }));
  assert.ok(diff <= 1e-5, `max |masked - shrunk| = ${diff} (outputs up to ${scale})`);
  assert.ok(scale > 1e-3, 'the outputs are not trivially zero');
  const count = (mod: { parameters(): { numel: number }[] }) => mod.parameters().reduce((s, p) => s + p.numel, 0);
  assert.ok(count(small) < 0.85 * count(model), `shrunk ${count(small)} of ${count(model)} parameters`);
  x.dispose();
  small.dispose();
  ev.dispose();
  model.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('a structured search from an ONNX model writes its fine-tuned picks shrunk, and they compute what the masked picks did', { skip }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'hier-moea-structured-'));
  try {
    const cfg = validate(SearchConfig, { from: join(repo, 'test/fixtures/onnx/mnist_trained.onnx'), dataset: 'mnist', granularity: 'structured', pop: 6, phase1Gens: 3, phase2Gens: 0,
      valSize: 500, bnBatches: 2, bnBatchSize: 64, finetuneEpochs: 0, pick: [0.3], seed: 1, workers: 2 });
    const r = await runHierMoea(cfg, { out: tmp, dataDir });
    assert.ok(r.completed && r.solutions.length >= 2);
    assert.ok(r.picks.length >= 1);
    for (const p of r.picks) {
      assert.ok(p.shrunk, `${p.label} was shrunk`);
      assert.ok(p.shrunk!.maxAbsDiff <= 1e-4, `${p.label}: ${p.shrunk!.maxAbsDiff}`);
      assert.ok(p.shrunk!.params.shrunk < p.shrunk!.params.masked);
      const gm = loadGraphModule(join(tmp, 'finetune', p.label, 'model.shrunk'));
      assert.ok(gm.parameters().length > 0);
      gm.dispose();
    }
    const one = await runHierMoea(validate(SearchConfig, { ...cfg, workers: 1 }), { out: join(tmp, 'one'), dataDir });
    assert.deepEqual(one.solutions, r.solutions, 'workers 2 and 1 agree at structured granularity');
    assert.throws(() => validate(SearchConfig, { ...cfg, granularity: 'blocks' }), /granularity/);
    await assert.rejects(runHierMoea(validate(SearchConfig, { ...cfg, phase2Gens: 3 }), { out: join(tmp, 'bad'), dataDir }), /phase2Gens: phase 2 flips single weights/);
    assert.ok(JSON.parse(readFileSync(join(tmp, 'result.json'), 'utf8')).config.granularity === 'structured');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
