/**
 * EVO-POP on vit_tiny's heads and MLP neurons: the population model computes the plain model's
 * outputs at masses 1; the 'grad' probe gives dL/dm (checked against autograd on the masses); the
 * l2 and activation controls of a head are its q/k/v rows and out_proj columns and mean |m_h o_h|;
 * removal masks are checked element by element (masses and head outputs); physical removal gives a
 * smaller VisionTransformer (different head counts per block) whose outputs equal the masked model's
 * within 1e-5, with the hand-counted parameters, and reloads from its folder; bad options are
 * refused naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/registry.js';
import { VisionTransformer } from '../../src/models/vit.js';
import {
  EvoPop, EvoConfig, HeadPopulation, headImportance, NeuronPopulation, allPopulations, getFitness, loadPrunedTransformer, maskRemoved, meanActivations,
  physicalPruneTransformer, populationModelFor, saveTransformer, scorePopulations, selectKeep,
} from '../../src/prune/evo-pop/index.js';
import { F, noGrad, rand, randint, randn, tidy, type Tensor } from '../../src/tensor/index.js';

const MNIST = [1, 28, 28];
const vit = () => createModel('vit_tiny', { inputShape: MNIST, numClasses: 10 }) as VisionTransformer;
const maxDiff = (a: Tensor, b: Tensor) => tidy(() => a.sub(b).abs().max().item());

function randomMasses(model: VisionTransformer): void {
  tidy(() => noGrad(() => {
    for (const [, l] of allPopulations(model)) l.mass.copy_(rand([l.size]).mul(2));
  }));
}

test('vit_tiny as a population model: 4 head layers of 4 and 4 neuron layers of 128, same outputs at masses 1', () => {
  manualSeed(1);
  const m = vit();
  const x = randn([3, ...MNIST]);
  m.eval();
  const before = noGrad(() => m.call(x));
  const p = populationModelFor(m, 'vit_tiny') as VisionTransformer;
  assert.equal(p, m, 'wrapped in place, same tensors');
  const layers = allPopulations(p);
  assert.deepEqual(layers.map(([n, l]) => `${n}:${l.size}`),
    ['blocks.0.self_attn:4', 'blocks.0.linear1:128', 'blocks.1.self_attn:4', 'blocks.1.linear1:128', 'blocks.2.self_attn:4', 'blocks.2.linear1:128', 'blocks.3.self_attn:4', 'blocks.3.linear1:128']);
  assert.ok(layers[0][1] instanceof HeadPopulation && layers[1][1] instanceof NeuronPopulation);
  assert.equal(p.numParameters(), 139_018, 'masses are buffers, not parameters');
  assert.ok(p.stateDict()['blocks.0.self_attn.mass'] && p.stateDict()['blocks.2.self_attn.attn.in_proj_weight']);
  const after = noGrad(() => p.call(x));
  assert.ok(maxDiff(before, after) === 0, 'masses of 1 change nothing');
  before.dispose(); after.dispose(); x.dispose();
  p.dispose();
});

test('the grad probe gives dL/dm per example; gradient and taylor fitness follow from it', () => {
  manualSeed(2);
  const p = populationModelFor(vit(), 'vit_tiny') as VisionTransformer;
  randomMasses(p);
  const x = randn([4, ...MNIST]), y = randint(0, 10, [4]);
  tidy(() => {
    // Reference: the masses as leaves of the graph, in the same training-mode forward.
    const layers = allPopulations(p);
    for (const [, l] of layers) l.mass.requiresGrad_(true);
    F.crossEntropy(p.call(x), y).backward();
    const ref = layers.map(([, l]) => l.mass.grad!.dataSync());
    for (const [, l] of layers) { l.mass.grad = null; l.mass.requiresGrad_(false); }
    for (const [, l] of layers) l.probe = 'grad';
    F.crossEntropy(p.call(x), y).backward();
    layers.forEach(([n, l], k) => {
      const g = getFitness('gradient').measure(l).dataSync();
      assert.equal(g.length, l.size);
      for (let i = 0; i < g.length; i++) assert.ok(Math.abs(-g[i] - ref[k][i]) <= 1e-6 + 1e-4 * Math.abs(ref[k][i]), `${n}[${i}]: -fitness ${-g[i]}, dL/dm ${ref[k][i]}`);
      const leaf = l.lastLeaf!.grad!;
      assert.deepEqual(leaf.shape, l instanceof HeadPopulation ? [4, 4, 1, 1] : [4, 1, 128]);
      const t = getFitness('taylor').measure(l).dataSync(), m = l.mass.dataSync(), per = leaf.flatten(1).abs().sum(0).dataSync();
      for (let i = 0; i < t.length; i++) assert.ok(Math.abs(t[i] - m[i] * per[i]) <= 1e-7 + 1e-5 * Math.abs(t[i]), `${n} taylor[${i}]`);
      l.probe = null; l.lastLeaf = null;
    });
  });
  x.dispose(); y.dispose();
  p.dispose();
});

test("a head's l2 control is the norm of its q, k, v rows and out_proj columns; its activation is mean |m_h o_h|", () => {
  manualSeed(3);
  const p = populationModelFor(vit(), 'vit_tiny') as VisionTransformer;
  randomMasses(p);
  const l2 = scorePopulations(p, 'l2');
  const hp = allPopulations(p)[2][1] as HeadPopulation; // blocks.1.self_attn
  const w = hp.attn.inProjWeight.toArray() as number[][], o = hp.attn.outProj.weight.toArray() as number[][];
  for (let h = 0; h < 4; h++) {
    let s = 0;
    for (let part = 0; part < 3; part++) for (let j = 0; j < 16; j++) for (const v of w[part * 64 + h * 16 + j]) s += v * v;
    for (const row of o) for (let j = 0; j < 16; j++) s += row[h * 16 + j] ** 2;
    assert.ok(Math.abs(l2.get('blocks.1.self_attn')![h] - Math.sqrt(s)) < 1e-4, `head ${h}: ${l2.get('blocks.1.self_attn')![h]} vs ${Math.sqrt(s)}`);
  }
  // mean |m_h o_h| over batch, tokens and head dims, by capturing the gate's input
  const x = randn([5, ...MNIST]);
  let captured: number[] = [];
  const gate = hp.attn.headGate!;
  hp.attn.headGate = (heads) => {
    const m = hp.mass.dataSync();
    const a = heads.abs().mean([0, 2, 3]).dataSync();
    captured = a.map((v, i) => v * m[i]);
    return gate(heads);
  };
  const act = meanActivations(p, [{ x: x.clone(), y: randint(0, 10, [5]) }]);
  hp.attn.headGate = gate;
  const got = act.get('blocks.1.self_attn')!;
  for (let h = 0; h < 4; h++) assert.ok(Math.abs(got[h] - captured[h]) < 1e-6, `head ${h}: ${got[h]} vs ${captured[h]}`);
  assert.equal(act.get('blocks.3.linear1')!.length, 128);
  assert.ok(allPopulations(p).every(([, l]) => !('onActivation' in l) || l.onActivation === null), 'calibration hooks removed');
  x.dispose();
  p.dispose();
});

test("the importance control (Michel et al. 2019): m_h mean_x |dl(x)/dm_h|, L2-normalized per layer", () => {
  manualSeed(6);
  const p = populationModelFor(vit(), 'vit_tiny') as VisionTransformer;
  randomMasses(p);
  const x = randn([3, ...MNIST]), y = randint(0, 10, [3]);
  // Reference: one example at a time, the masses as leaves, the model in eval mode.
  p.eval();
  const layers = allPopulations(p);
  const ref = layers.map(([, l]) => new Float64Array(l.size));
  for (let b = 0; b < 3; b++) {
    tidy(() => {
      for (const [, l] of layers) l.mass.requiresGrad_(true);
      F.crossEntropy(p.call(x.narrow(0, b, 1)), y.narrow(0, b, 1)).backward();
      layers.forEach(([, l], k) => { const g = l.mass.grad!.dataSync(); for (let i = 0; i < g.length; i++) ref[k][i] += Math.abs(g[i]) / 3; });
      for (const [, l] of layers) { l.mass.grad = null; l.mass.requiresGrad_(false); }
    });
  }
  p.zeroGrad();
  const imp = headImportance(p, [{ x: x.clone(), y: y.clone() }]);
  layers.forEach(([n, l], k) => {
    const m = l.mass.dataSync();
    const raw = Array.from(ref[k], (v, i) => v * m[i]);
    const norm = Math.sqrt(raw.reduce((a, v) => a + v * v, 0));
    const got = imp.get(n)!;
    for (let i = 0; i < raw.length; i++) assert.ok(Math.abs(got[i] - raw[i] / norm) < 1e-4, `${n}[${i}]: ${got[i]} vs ${raw[i] / norm}`);
  });
  assert.ok(p.parameters().every((t) => t.grad === null), 'parameter gradients cleared');
  assert.ok(!p.training && allPopulations(p).every(([, l]) => !l.training && l.probe === null), 'modes and probes restored');
  x.dispose(); y.dispose();
  p.dispose();
});

test('removal masks, element by element, and physical removal equal to the masked model within 1e-5', () => {
  manualSeed(4);
  const p = populationModelFor(vit(), 'vit_tiny') as VisionTransformer;
  randomMasses(p);
  // Hand-picked kept heads so that blocks end with different counts (4, 1, 2, 3), and neurons by mass.
  const keepIdx = selectKeep(scorePopulations(p, 'mass'), 0.5);
  const heads = [[0, 1, 2, 3], [2], [0, 3], [1, 2, 3]];
  heads.forEach((h, b) => keepIdx.set(`blocks.${b}.self_attn`, h));
  const masses = allPopulations(p).map(([, l]) => l.mass.dataSync());
  const x = randn([3, ...MNIST]);
  p.eval();
  // The physical model from the unmasked population model, then mask in place.
  const { model: small, architecture } = physicalPruneTransformer(p, keepIdx);
  maskRemoved(p, keepIdx);
  allPopulations(p).forEach(([n, l], k) => {
    const kept = new Set(keepIdx.get(n)!), m = l.mass.dataSync();
    for (let i = 0; i < l.size; i++) assert.equal(m[i], kept.has(i) ? masses[k][i] : 0, `${n} mass[${i}]`);
  });
  // The masked heads' outputs are exactly zero, the kept ones are not.
  const hp = allPopulations(p)[4][1] as HeadPopulation; // blocks.2: keeps heads 0 and 3
  const gate = hp.attn.headGate!;
  let zeroed: boolean[] = [];
  hp.attn.headGate = (hs) => { const out = gate(hs); zeroed = [0, 1, 2, 3].map((h) => out.select(1, h).abs().max().item() === 0); return out; };
  const masked = noGrad(() => p.call(x));
  hp.attn.headGate = gate;
  assert.deepEqual(zeroed, [false, true, true, false]);
  small.eval();
  const out = noGrad(() => small.call(x));
  const d = maxDiff(out, masked);
  assert.ok(d <= 1e-5, `physical vs masked: max |diff| ${d}`);
  // Blocks keep different head counts; q, k, v rows and out_proj columns of removed heads are gone.
  assert.deepEqual(architecture.config.heads, [4, 1, 2, 3]);
  assert.deepEqual(small.blocks.map((b) => (b.selfAttn as unknown as { numHeads: number }).numHeads), [4, 1, 2, 3]);
  const mlp = architecture.config.mlp;
  assert.deepEqual(mlp, [0, 1, 2, 3].map((b) => keepIdx.get(`blocks.${b}.linear1`)!.length));
  assert.ok(mlp.every((f) => f >= 1 && f <= 128) && mlp.reduce((a, b) => a + b, 0) < 512, `neurons kept per block [${mlp}]`);
  const dense = p.blocks[2].selfAttn as HeadPopulation;
  const w = dense.attn.inProjWeight.toArray() as number[][], sw = (small.blocks[2].selfAttn as unknown as { inProjWeight: Tensor }).inProjWeight.toArray() as number[][];
  const rows = [0, 1, 2].flatMap((part) => [0, 3].flatMap((h) => Array.from({ length: 16 }, (_, j) => part * 64 + h * 16 + j)));
  rows.forEach((r, i) => assert.deepEqual(sw[i], w[r], `in_proj row ${r} -> ${i}`));
  const T = 17, D = 64, hd = 16;
  const blockParams = (h: number, f: number) => 2 * D + (3 * h * hd * D + 3 * h * hd) + (D * h * hd + D) + 2 * D + (f * D + f) + (D * f + D);
  const params = D * 49 + D + D + T * D + 2 * D + D * 10 + 10 + [4, 1, 2, 3].reduce((s, h, b) => s + blockParams(h, mlp[b]), 0);
  assert.equal(small.numParameters(), params, 'a physically smaller model');
  // Saved and reloaded from its folder: the same outputs.
  const dir = mkdtempSync(join(tmpdir(), 'vit-pruned-'));
  try {
    saveTransformer(dir, small, architecture);
    const { model: again } = loadPrunedTransformer(dir);
    again.eval();
    const out2 = noGrad(() => again.call(x));
    assert.equal(maxDiff(out, out2), 0);
    out2.dispose();
    again.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  out.dispose(); masked.dispose(); x.dispose();
  small.dispose();
  p.dispose();
});

test('EVO-POP selection runs on heads and neurons unchanged (replicator keeps each layer\'s mass)', () => {
  manualSeed(5);
  const p = populationModelFor(vit(), 'vit_tiny') as VisionTransformer;
  const e = EvoConfig.parse({ dynamics: 'replicator', fitness: 'gradient', eta: 0.05 });
  const evo = new EvoPop(p, { ...e, dynamics: e.dynamics });
  assert.equal(evo.layers.length, 8);
  const x = randn([4, ...MNIST]), y = randint(0, 10, [4]);
  for (let s = 0; s < 3; s++) {
    tidy(() => {
      for (const [, l] of evo.layers) l.probe = 'grad';
      F.crossEntropy(p.call(x), y).backward();
      evo.step(s);
    });
    p.zeroGrad();
  }
  for (const [n, l] of evo.layers) {
    const m = l.mass.dataSync(), total = m.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - l.size) < 1e-3 * l.size, `${n}: total mass ${total}`);
    assert.ok(m.some((v) => Math.abs(v - 1) > 1e-4), `${n}: masses moved`);
  }
  x.dispose(); y.dispose();
  p.dispose();
});

test('bad options are refused naming the field', () => {
  const mlp = createModel('mlp', { inputShape: MNIST, numClasses: 10 });
  assert.throws(() => populationModelFor(mlp, 'mlp', ['heads']),
    (e: unknown) => e instanceof ConfigError && e.issues[0]?.path === 'populations' && /'mlp' has no attention heads/.test((e as Error).message));
  mlp.dispose();
  const v = vit();
  assert.throws(() => populationModelFor(v, 'vit_tiny', ['filters']), (e: unknown) => e instanceof ConfigError && e.issues[0]?.path === 'populations');
  assert.throws(() => populationModelFor(v, 'vit_tiny', ['heds']), /populations: unknown kind 'heds' \(known: heads, neurons, filters, channels\)/);
  v.dispose();
});
