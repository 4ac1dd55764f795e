/**
 * Structured pruning over a transformer's heads and block MLP neurons (src/prune/heads*.ts): the
 * groups, the masks element by element for magnitude (L1 and L2 of a head's q/k/v rows and
 * out_proj columns) and random, the gate gradients of SNIP and head_importance against float64
 * finite differences, PMP's progressive head schedule, the physically smaller model (outputs equal
 * the masked model's, per-layer head counts differ, loadable without code), and bad options.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { loadGraphModule } from '../../src/graph/run.js';
import { createModel } from '../../src/models/registry.js';
import type { VisionTransformer } from '../../src/models/vit.js';
import { MultiheadAttention } from '../../src/nn/transformer.js';
import { gmpCallback, gmpSchedule } from '../../src/prune/methods/gmp.js';
import { pmpCallback } from '../../src/prune/methods/pmp.js';
import { preflight, validatePruneOptions } from '../../src/prune/options.js';
import { pruneWith } from '../../src/prune/step.js';
import { PruneTarget } from '../../src/prune/target.js';
import { transformerGroups } from '../../src/prune/heads.js';
import { normalizePerLayer, unitGateGradients } from '../../src/prune/heads-importance.js';
import { shrinkUnits, writeShrunkUnits } from '../../src/prune/heads-shrink.js';
import { scoreWith } from '../../src/prune/criteria.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { randint, randn, tensor } from '../../src/tensor/creation.js';
import { crossEntropy } from '../../src/tensor/nn-ops.js';
import { dispose, memory, tidy } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import type { StepContext } from '../../src/train/loop.js';

const shape = [1, 28, 28];
const H = 4, dh = 16, D = 64, inner = 64, FF = 128, BLOCKS = 4;
const root = mkdtempSync(join(tmpdir(), 'topiary-heads-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const vit = (seed = 1) => { manualSeed(seed); return createModel('vit_tiny', { inputShape: shape, numClasses: 10 }) as VisionTransformer; };
const data = (t: Tensor) => Array.from(t.dataSync());
const attn = (i: number) => `blocks.${i}.self_attn`;

/** Hand score of each head: mean |w| (l1) or root mean square (l2) over its q/k/v rows and out_proj columns. */
function headScores(m: VisionTransformer, norm: 'l1' | 'l2'): number[][] {
  return m.blocks.map((b) => {
    const a = b.selfAttn as MultiheadAttention;
    const w = data(a.inProjWeight), o = data(a.outProj.weight); // [3 inner, D], [D, inner]
    return Array.from({ length: H }, (_, h) => {
      const vals: number[] = [];
      for (let part = 0; part < 3; part++) for (let j = 0; j < dh; j++) { const r = part * inner + h * dh + j; vals.push(...w.slice(r * D, (r + 1) * D)); }
      for (let r = 0; r < D; r++) for (let j = 0; j < dh; j++) vals.push(o[r * inner + h * dh + j]);
      return norm === 'l1' ? vals.reduce((s, v) => s + Math.abs(v), 0) / vals.length : Math.sqrt(vals.reduce((s, v) => s + v * v, 0) / vals.length);
    });
  });
}

/** The kept heads per layer by the selection's rule: the `keep` best globally, then each layer's best if it has none. */
function expectedKept(scores: number[][], keep: number): Set<string> {
  const all = scores.flatMap((s, l) => s.map((v, h) => ({ l, h, v }))).sort((a, b) => b.v - a.v);
  const kept = new Set(all.slice(0, keep).map((x) => `${x.l}:${x.h}`));
  scores.forEach((s, l) => {
    if (s.some((_, h) => kept.has(`${l}:${h}`))) return;
    kept.add(`${l}:${s.indexOf(Math.max(...s))}`);
  });
  return kept;
}

/** Every mask entry of every attention layer against the kept head set (q/k/v rows, bias entries, out_proj columns). */
function checkHeadMasks(t: PruneTarget, kept: (l: number, h: number) => boolean): void {
  for (let l = 0; l < BLOCKS; l++) {
    const w = data(t.mask(`${attn(l)}.in_proj_weight`)), b = data(t.mask(`${attn(l)}.in_proj_bias`)), o = data(t.mask(`${attn(l)}.out_proj.weight`));
    for (let r = 0; r < 3 * inner; r++) {
      const k = kept(l, Math.floor((r % inner) / dh)) ? 1 : 0;
      for (let c = 0; c < D; c++) assert.equal(w[r * D + c], k, `${attn(l)}.in_proj_weight[${r}, ${c}]`);
      assert.equal(b[r], k, `${attn(l)}.in_proj_bias[${r}]`);
    }
    for (let r = 0; r < D; r++) for (let c = 0; c < inner; c++) assert.equal(o[r * inner + c], kept(l, Math.floor(c / dh)) ? 1 : 0, `${attn(l)}.out_proj.weight[${r}, ${c}]`);
  }
  assert.ok(!t.masks.masks.has(`${attn(0)}.out_proj.bias`) && !t.masks.masks.has('head.weight'), 'only the heads\' tensors are masked');
}

test('heads and neurons as groups: 4 heads of q/k/v rows + out_proj columns per layer, 128 neurons per block, one family each', () => {
  const m = vit();
  const u = transformerGroups(m, 'heads,neurons');
  assert.equal(u.groups.length, BLOCKS * (H + FF));
  assert.deepEqual(u.weights.slice(0, 4), [`${attn(0)}.in_proj_weight`, `${attn(0)}.out_proj.weight`, 'blocks.0.linear1.weight', 'blocks.0.linear2.weight']);
  const h1 = u.groups[1]; // block 0, head 1
  assert.equal(h1.family, attn(0));
  assert.deepEqual(h1.rows.filter((r) => r.axis === 0).map((r) => r.start), [0, 1, 2].flatMap((p) => [...Array(dh).keys()].map((j) => p * inner + dh + j)));
  assert.deepEqual(h1.rows.filter((r) => r.axis === 1).map((r) => [r.param, r.start]), [...Array(dh).keys()].map((j) => [`${attn(0)}.out_proj.weight`, dh + j]));
  assert.deepEqual(h1.entries.map((e) => [e.start, e.length]), [[16, 16], [80, 16], [144, 16]]);
  const n5 = u.groups[H + 5]; // block 0, neuron 5
  assert.equal(n5.family, 'blocks.0.linear1');
  assert.deepEqual(n5.rows.map((r) => [r.param, r.axis, r.start]), [['blocks.0.linear1.weight', 0, 5], ['blocks.0.linear2.weight', 1, 5]]);
  m.dispose();
});

for (const norm of ['l1', 'l2'] as const) {
  test(`magnitude over heads (${norm} of q/k/v rows + out_proj columns): half the heads go, masks element by element, exactly 50%`, () => {
    const m = vit(2);
    const before = memory().tensors;
    const expect = expectedKept(headScores(m, norm), 8);
    const t = new PruneTarget(m, { granularity: 'structured', unit: 'heads', inputShape: shape, groupNorm: norm });
    const r = pruneWith('magnitude', { model: m, target: t }, { sparsity: 0.5, scope: 'global' });
    assert.equal(r.achieved, 0.5);
    assert.equal(r.total, BLOCKS * 4 * inner * D);
    checkHeadMasks(t, (l, h) => expect.has(`${l}:${h}`));
    // The pruned weights are zero, the kept ones untouched.
    const a0 = m.blocks[0].selfAttn as MultiheadAttention;
    const zeroRows = tidy(() => data(a0.inProjWeight.abs().sum(1)));
    for (let h = 0; h < H; h++) assert.equal(zeroRows[h * dh] === 0, !expect.has(`0:${h}`));
    t.dispose();
    assert.equal(memory().tensors, before);
    m.dispose();
  });
}

test('magnitude over heads, layer scope: every layer keeps 2 of its 4 heads, the 2 best', () => {
  const m = vit(3);
  const s = headScores(m, 'l1');
  const t = new PruneTarget(m, { granularity: 'structured', unit: 'heads', inputShape: shape });
  pruneWith('magnitude', { model: m, target: t }, { sparsity: 0.5, scope: 'layer' });
  checkHeadMasks(t, (l, h) => [...s[l]].sort((a, b) => b - a).indexOf(s[l][h]) < 2);
  t.dispose();
  m.dispose();
});

test('random over heads: whole heads, 12 of 16 removed at 75%, every layer keeps one; neurons: whole rows and columns', () => {
  const m = vit(4);
  const t = new PruneTarget(m, { granularity: 'structured', unit: 'heads', inputShape: shape });
  manualSeed(7);
  const r = pruneWith('random', { model: m, target: t }, { sparsity: 0.75, scope: 'global' });
  const alive = (l: number, h: number) => data(t.mask(`${attn(l)}.in_proj_bias`))[h * dh] === 1;
  const kept = Array.from({ length: BLOCKS }, (_, l) => Array.from({ length: H }, (_, h) => alive(l, h)));
  for (const k of kept) assert.ok(k.some(Boolean), 'each layer keeps a head');
  checkHeadMasks(t, (l, h) => kept[l][h]);
  assert.equal(kept.flat().filter(Boolean).length, Math.round((1 - r.achieved) * 16));
  assert.ok(r.achieved >= 0.6875 && r.achieved <= 0.75, `achieved ${r.achieved}`);
  t.dispose();
  const tn = new PruneTarget(m, { granularity: 'structured', unit: 'neurons', inputShape: shape });
  manualSeed(8);
  assert.equal(pruneWith('random', { model: m, target: tn }, { sparsity: 0.25, scope: 'layer' }).achieved, 0.25);
  for (let l = 0; l < BLOCKS; l++) {
    const w1 = data(tn.mask(`blocks.${l}.linear1.weight`)), b1 = data(tn.mask(`blocks.${l}.linear1.bias`)), w2 = data(tn.mask(`blocks.${l}.linear2.weight`));
    let gone = 0;
    for (let i = 0; i < FF; i++) {
      const k = b1[i];
      gone += 1 - k;
      for (let c = 0; c < D; c++) { assert.equal(w1[i * D + c], k); assert.equal(w2[c * FF + i], k); }
    }
    assert.equal(gone, 32, `block ${l}: 32 of 128 neurons removed`);
  }
  tn.dispose();
  m.dispose();
});

/** The model's parameters in float64 (in place), for finite differences. */
function toFloat64(m: VisionTransformer): void {
  for (const [n, p] of m.namedParameters()) m.setParameter(n, noGrad(() => p.detach().to('float64')));
}

test('gate gradients (SNIP and head_importance) equal float64 finite differences of the loss in a head\'s output scale', () => {
  const m = vit(5);
  toFloat64(m);
  m.eval();
  const t = new PruneTarget(m, { granularity: 'structured', unit: 'heads,neurons', inputShape: shape });
  manualSeed(11);
  const x = randn([6, ...shape]).to('float64'), y = randint(0, 10, [6]);
  const per = unitGateGradients(m, t, x, y, { perExample: true }), batch = unitGateGradients(m, t, x, y, { perExample: false });
  // Scaling head h's out_proj columns by (1 + e) is its gate at 1 + e; a neuron's linear2 column likewise.
  const lossesWith = (param: string, cols: number[], width: number, e: number): number[] => tidy(() => noGrad(() => {
    const w = m.namedParameters().find(([n]) => n === param)![1];
    const saved = w.clone();
    const scale = Array.from({ length: width }, (_, c) => (cols.includes(c) ? 1 + e : 1));
    w.mul_(tensor(scale, { dtype: 'float64', shape: [1, width] }));
    const l = data(crossEntropy(m.call(x), y, { reduction: 'none' }));
    w.copy_(saved);
    return l;
  }));
  const e = 1e-6;
  for (const [param, family, unit, cols, width] of [
    [`${attn(1)}.out_proj.weight`, attn(1), 2, [...Array(dh).keys()].map((j) => 2 * dh + j), inner],
    [`${attn(3)}.out_proj.weight`, attn(3), 0, [...Array(dh).keys()], inner],
    ['blocks.2.linear2.weight', 'blocks.2.linear1', 17, [17], FF],
  ] as const) {
    const up = lossesWith(param, [...cols], width, e), down = lossesWith(param, [...cols], width, -e);
    const d = up.map((u, i) => (u - down[i]) / (2 * e)); // dL(x)/dxi per example
    const perHand = d.reduce((s, v) => s + Math.abs(v), 0), batchHand = Math.abs(d.reduce((s, v) => s + v, 0) / d.length);
    const got = per.get(family)![unit], gotB = batch.get(family)![unit];
    assert.ok(Math.abs(got - perHand) <= 1e-6 * Math.max(1, perHand), `${family}[${unit}] sum |dL(x)/dxi|: ${got} vs ${perHand}`);
    assert.ok(Math.abs(gotB - batchHand) <= 1e-6 * Math.max(1, batchHand), `${family}[${unit}] |dL/dxi|: ${gotB} vs ${batchHand}`);
  }
  // The model is left as it was: no gate remains.
  for (const b of m.blocks) assert.equal((b.selfAttn as MultiheadAttention).headGate, null);
  dispose([x, y]);
  t.dispose();
  m.dispose();
});

test('head_importance: mean |dL(x)/dxi| over chunks, per-layer L2-normalized; the lowest heads go', () => {
  const m = vit(6);
  const t = new PruneTarget(m, { granularity: 'structured', unit: 'heads', inputShape: shape });
  manualSeed(12);
  const X = randn([12, ...shape]), Y = randint(0, 10, [12]);
  const batch = (n: number) => ({ x: X.narrow(0, 0, n).clone(), y: Y.narrow(0, 0, n).clone() });
  // By hand: the gradients of the three chunks of 4, summed, over 12, normalized per layer.
  const parts = [0, 4, 8].map((s) => tidy(() => unitGateGradients(m.eval() as VisionTransformer, t, X.narrow(0, s, 4), Y.narrow(0, s, 4), { perExample: true })));
  m.train();
  const hand = normalizePerLayer(new Map([...parts[0]].map(([f, v]) => [f, v.map((a, j) => (a + parts[1].get(f)![j] + parts[2].get(f)![j]) / 12)])));
  const scores = scoreWith('head_importance', { model: m, target: t, batch }, { samples: 12, chunk: 4 });
  for (let l = 0; l < BLOCKS; l++) {
    const s = data(scores.get(`${attn(l)}.in_proj_weight`)!);
    for (let h = 0; h < H; h++) assert.ok(Math.abs(s[(h * dh) * D] - hand.get(attn(l))![h]) < 1e-6, `layer ${l} head ${h}`);
    assert.ok(Math.abs(hand.get(attn(l))!.reduce((a, v) => a + v * v, 0) - 1) < 1e-9);
  }
  dispose([...scores.values()]);
  const flat = [...hand].flatMap(([, v], l) => v.map((x, h) => ({ l, h, x }))).sort((a, b) => b.x - a.x);
  const keep = new Set(flat.slice(0, 8).map((k) => `${k.l}:${k.h}`));
  const r = pruneWith('head_importance', { model: m, target: t, batch }, { sparsity: 0.5, scope: 'global', hparams: { samples: 12, chunk: 4 } });
  assert.equal(r.achieved, 0.5);
  checkHeadMasks(t, (l, h) => keep.has(`${l}:${h}`) || ![0, 1, 2, 3].some((k) => keep.has(`${l}:${k}`)) && hand.get(attn(l))![h] === Math.max(...hand.get(attn(l))!));
  dispose([X, Y]);
  t.dispose();
  m.dispose();
});

test('pmp over heads: a progressive schedule removes 3, 6, then 9 of 16 heads; masks only shrink', () => {
  const m = vit(7);
  const t = new PruneTarget(m, { granularity: 'structured', unit: 'heads', inputShape: shape });
  const cb = pmpCallback(t, { final: 0.5625, phase: 3, scope: 'global' });
  let prev: number[] | null = null;
  for (let e = 0; e < 4; e++) {
    cb.onEpochStart!({ epoch: e, model: m } as unknown as StepContext);
    const alive = Array.from({ length: BLOCKS }, (_, l) => data(t.mask(`${attn(l)}.in_proj_bias`)).filter((_, i) => i < inner && i % dh === 0)).flat();
    const removed = alive.filter((a) => a === 0).length;
    assert.equal(removed, [3, 6, 9, 9][e], `epoch ${e}`);
    if (prev) prev.forEach((p, i) => assert.ok(alive[i] <= p, 'a removed head stays removed'));
    prev = alive;
    checkHeadMasks(t, (l, h) => alive[l * H + h] === 1);
  }
  t.dispose();
  m.dispose();
});

test('gmp over heads: the cubic schedule every 2 steps removes 0, 6, 8, 8 of 16 heads (s = 0, 0.392, 0.496, 0.5)', () => {
  const m = vit(9);
  const t = new PruneTarget(m, { granularity: 'structured', unit: 'heads', inputShape: shape });
  const hp = gmpSchedule({ initial: 0, final: 0.5, startEpoch: 0, endEpoch: 1, frequency: 2 }, 6);
  const cb = gmpCallback(t, hp, 'global');
  const removed: number[] = [];
  for (let step = 0; step < 6; step++) {
    cb.beforeForward!({ step, epoch: 0, model: m } as unknown as StepContext);
    const alive = Array.from({ length: BLOCKS }, (_, l) => data(t.mask(`${attn(l)}.in_proj_bias`)).filter((_, i) => i < inner && i % dh === 0)).flat();
    if (step % 2 === 0 || step === 5) removed.push(alive.filter((a) => a === 0).length);
    checkHeadMasks(t, (l, h) => alive[l * H + h] === 1);
  }
  assert.deepEqual(removed, [0, 6, 8, 8]);
  t.dispose();
  m.dispose();
});

test('the physically smaller ViT: removed heads and neurons leave, per-layer counts differ, outputs equal the masked model within 1e-5, it loads without code', () => {
  const m = vit(8);
  const t = new PruneTarget(m, { granularity: 'structured', unit: 'heads,neurons', inputShape: shape });
  pruneWith('magnitude', { model: m, target: t }, { sparsity: 0.6, scope: 'global' });
  const { model: small, kept } = shrinkUnits(m, t);
  const heads = Array.from({ length: BLOCKS }, (_, l) => data(t.mask(`${attn(l)}.in_proj_bias`)).filter((v, i) => i < inner && i % dh === 0 && v === 1).length);
  const mlp = Array.from({ length: BLOCKS }, (_, l) => data(t.mask(`blocks.${l}.linear1.bias`)).filter((v) => v === 1).length);
  assert.deepEqual(small.config.heads, heads);
  assert.deepEqual(small.config.mlp, mlp);
  assert.deepEqual(kept.get(attn(0))!.length, heads[0]);
  assert.ok(new Set([...heads, ...mlp]).size > 2, `counts differ per layer: heads ${heads}, mlp ${mlp}`);
  assert.equal((small.blocks[0].selfAttn as MultiheadAttention).inProjWeight.shape[0], 3 * dh * heads[0]);
  m.eval(); small.eval();
  const [a, b] = tidy(() => noGrad(() => { const x = randn([5, ...shape]); return [data(m.call(x)), data(small.call(x))]; }));
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-5, `output ${i}: ${v} vs ${b[i]}`));
  small.dispose();
  const s = writeShrunkUnits(m, t, shape, root);
  assert.ok(s.maxAbsDiff <= 1e-5 && s.params.shrunk < s.params.masked && s.macs.shrunk < s.macs.masked, JSON.stringify(s));
  assert.deepEqual(s.heads, heads);
  assert.ok(existsSync(join(root, 'model.shrunk.graph.json')));
  const gm = loadGraphModule(join(root, 'model.shrunk'));
  gm.eval();
  assert.equal(gm.numParameters(), s.params.shrunk);
  const [c, d] = tidy(() => noGrad(() => { const x = randn([3, ...shape]); return [data(m.call(x)), data(gm.call(x))]; }));
  c.forEach((v, i) => assert.ok(Math.abs(v - d[i]) <= 1e-5, `loaded output ${i}`));
  gm.dispose();
  t.dispose();
  m.dispose();
});

test('bad options name the field: --unit heads unstructured, on a model without attention, an unknown unit, neurons on a Sequential', () => {
  const train = { model: 'vit_tiny', dataset: 'mnist', epochs: 2, seed: 0, init: 'default', device: 'cpu', batchSize: 64 };
  const issue = (f: () => unknown, path: string, re: RegExp) => assert.throws(f, (e: Error) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.ok(e.issues.some((i) => i.path === path), JSON.stringify(e.issues));
    assert.match(e.message, re);
    return true;
  });
  issue(() => validatePruneOptions({ method: 'magnitude', sparsity: 0.5, from: 'x', unit: 'heads' }, train), 'unit', /unit: 'heads' removes whole units: needs --granularity structured/);
  issue(() => validatePruneOptions({ method: 'random', sparsity: 0.5, granularity: 'structured', unit: 'attention' }, train), 'unit', /unit: must be one of channels, heads, neurons, heads,neurons/);
  const lenet = { ...train, model: 'lenet5' };
  const o = validatePruneOptions({ method: 'random', sparsity: 0.5, granularity: 'structured', unit: 'heads' }, lenet);
  issue(() => preflight(lenet, o), 'unit', /unit: the model has no attention heads \(--unit heads needs a transformer such as vit_tiny\)/);
  issue(() => preflight(lenet, { ...o, unit: 'neurons' }), 'unit', /no transformer blocks/);
  preflight(train, validatePruneOptions({ method: 'random', sparsity: 0.5, granularity: 'structured', unit: 'heads,neurons' }, train));
  const m = vit();
  issue(() => new PruneTarget(m, { unit: 'heads' }), 'unit', /needs --granularity structured/);
  m.dispose();
});
