/**
 * Heads from the API: populationModel(vit, { units: 'heads' }) wraps the attention heads (the CLI's
 * populationModelFor), selection moves their masses, removeByMass removes whole heads (the smaller
 * ViT computes what the masked population model does); the one-shot functions prune heads with the
 * masks the CLI's step makes, element by element.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { headImportance, magnitude, populationModel, removeByMass, selection, snip } from '../../src/api/index.js';
import { createModel } from '../../src/models/registry.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { SGD } from '../../src/optim/optimizer.js';
import { allPopulations, HeadPopulation, NeuronPopulation } from '../../src/prune/evo-pop/heads.js';
import { pruneWith } from '../../src/prune/step.js';
import { PruneTarget } from '../../src/prune/target.js';
import { memory, noGrad, randint, randn, tensor, tidy } from '../../src/tensor/index.js';
import { train } from '../../src/train/loop.js';

const shape = [1, 28, 28];
const vit = (seed: number) => { manualSeed(seed); return createModel('vit_tiny', { inputShape: shape, numClasses: 10 }) as VisionTransformer; };

test("populationModel(vit, { units: 'heads' }) + selection + removeByMass: whole heads leave, the smaller ViT computes the masked population model", () => {
  const before = memory().tensors;
  const pop = populationModel(vit(1), { units: 'heads' });
  assert.ok(pop instanceof VisionTransformer);
  const layers = allPopulations(pop);
  assert.equal(layers.length, 4);
  assert.ok(layers.every(([n, l]) => l instanceof HeadPopulation && /^blocks\.\d\.self_attn$/.test(n)));
  const opt = new SGD(pop.namedParameters(), { lr: 0.05, momentum: 0.9 });
  const sel = selection(pop, { dynamics: 'replicator', fitness: 'gradient', eta: 0.5, recordEvery: 1 });
  manualSeed(3);
  const batches = Array.from({ length: 6 }, () => ({ x: randn([16, ...shape]), y: randint(0, 10, [16]) }));
  train({ model: pop, optimizer: opt, epochs: 1, trainBatches: () => batches.map((b) => ({ x: b.x.clone(), y: b.y.clone() })), callbacks: [sel] });
  const masses = layers.map(([, l]) => Array.from(l.mass.dataSync()));
  assert.ok(masses.flat().some((m) => Math.abs(m - 1) > 1e-4), `the masses moved: ${masses.flat().map((m) => m.toFixed(4))}`);
  assert.ok(sel.trajectory.steps.length >= 6);
  const r = removeByMass(pop, 0.5);
  assert.equal(r.total, 16);
  assert.equal(r.removed, 8);
  const small = r.model as VisionTransformer;
  assert.equal(small.config.heads.reduce((a, b) => a + b, 0), 8);
  assert.deepEqual(small.config.heads, (r.architecture as { kept: number[] }).kept);
  // The masked population model: the removed heads' masses set to 0 (the 8 lowest, each layer keeping its best).
  const ranked = masses.flatMap((ms, l) => ms.map((m, h) => ({ l, h, m }))).sort((a, b) => a.m - b.m);
  const gone = new Set(ranked.slice(0, 8).map((x) => `${x.l}:${x.h}`));
  for (let l = 0; l < 4; l++) assert.equal(small.config.heads[l], 4 - [0, 1, 2, 3].filter((h) => gone.has(`${l}:${h}`)).length, `layer ${l}`);
  noGrad(() => layers.forEach(([, p], l) => {
    const keep = tensor([0, 1, 2, 3].map((h) => (gone.has(`${l}:${h}`) ? 0 : 1)));
    p.mass.mul_(keep);
    keep.dispose();
  }));
  pop.eval(); small.eval();
  const [a, b] = tidy(() => noGrad(() => { const x = randn([4, ...shape]); return [Array.from(pop.call(x).dataSync()), Array.from(small.call(x).dataSync())]; }));
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-5, `output ${i}: ${v} vs ${b[i]}`));
  small.dispose(); opt.dispose(); pop.dispose();
  for (const x of batches) { x.x.dispose(); x.y.dispose(); }
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test("populationModel: a ViT's default units are heads and neurons; filters on a ViT and heads on an MLP are refused naming units", () => {
  const pop = populationModel(vit(2));
  const kinds = allPopulations(pop).map(([, l]) => (l instanceof HeadPopulation ? 'heads' : l instanceof NeuronPopulation ? 'neurons' : 'other'));
  assert.deepEqual(kinds, ['heads', 'neurons', 'heads', 'neurons', 'heads', 'neurons', 'heads', 'neurons']);
  pop.dispose();
  const named = (re: RegExp) => (e: Error) => e instanceof ConfigError && e.issues.some((i) => i.path === 'units') && re.test(e.message);
  const v = vit(3);
  assert.throws(() => populationModel(v, { units: ['heads', 'filters'] }), named(/no filters/));
  v.dispose();
  const mlp = createModel('mlp', { inputShape: shape, numClasses: 10 });
  assert.throws(() => populationModel(mlp, { units: 'heads' }), named(/units: 'heads' needs a transformer/));
  mlp.dispose();
});

test('one-shot API over heads: magnitude, snip and headImportance give the masks of the CLI\'s step, element by element', () => {
  manualSeed(4);
  const x = randn([24, ...shape]), y = randint(0, 10, [24]);
  for (const which of ['magnitude', 'snip', 'head_importance'] as const) {
    const m1 = vit(5), m2 = vit(5);
    const o = { sparsity: 0.5, granularity: 'structured' as const, unit: 'heads' as const, inputShape: shape };
    const api = which === 'magnitude' ? magnitude(m1, o) : which === 'snip' ? snip(m1, { x, y }, o) : headImportance(m1, { x, y }, { sparsity: 0.5, inputShape: shape, chunk: 8 });
    const t = new PruneTarget(m2, { granularity: 'structured', unit: 'heads', inputShape: shape });
    const hp = which === 'snip' ? { samples: 24 } : which === 'head_importance' ? { samples: 24, chunk: 8 } : {};
    pruneWith(which, { model: m2, target: t, batch: () => ({ x: x.clone(), y: y.clone() }) }, { sparsity: 0.5, scope: 'global', hparams: hp });
    assert.equal(api.record.achieved, 0.5, which);
    assert.deepEqual(api.target.weights, t.weights);
    for (const n of t.masks.names) {
      const same = tidy(() => api.masks.get(n).eq(t.mask(n)).all().item());
      assert.equal(same, 1, `${which}: mask of ${n}`);
    }
    api.target.dispose(); t.dispose(); m1.dispose(); m2.dispose();
  }
  x.dispose(); y.dispose();
});
