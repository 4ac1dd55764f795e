import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/core/rng.js';
import { SerializationError } from '../../src/core/errors.js';
import { Linear, Sequential } from '../../src/nn/layers.js';
import { memory, noGrad, tensor, tidy } from '../../src/tensor/index.js';
import { GlobalMagnitude } from '../../src/prune/hier-moea/global-magnitude.js';
import { PrunableLayout, ascendingRanks, countOnes } from '../../src/prune/hier-moea/layout.js';
import { loadMaskBits, saveMaskBits } from '../../src/prune/hier-moea/mask-io.js';
import { MAX_LAYER_PRUNE, stratifiedSampling, ThresholdDecoder } from '../../src/prune/hier-moea/phase1.js';
import { BitSpace } from '../../src/prune/hier-moea/phase2.js';
import { magnitudeGenomes } from '../../src/prune/hier-moea/search.js';

/** A model whose weights are known: layer 0 has 12 weights with ties, layer 1 has 6. */
function model(): { m: Sequential; layout: PrunableLayout } {
  const m = new Sequential(new Linear(3, 4), new Linear(4, 2, false));
  const layout = new PrunableLayout(m);
  tidy(() => noGrad(() => {
    layout.params[0].copy_(tensor([0.5, -0.1, 0.3, 0.3, -0.9, 0.05, 0.7, -0.3, 0.2, 0.0, 1.1, -0.6], { shape: [4, 3] }));
    layout.params[1].copy_(tensor([0.01, -2, 0.4, 0.03, -0.02, 0.5, 0.6, 0.9], { shape: [2, 4] }));
  }));
  return { m, layout };
}

test('ascendingRanks breaks ties by index, so "remove the k smallest" removes exactly k', () => {
  assert.deepEqual(Array.from(ascendingRanks([0.3, 0.1, 0.3, 0.0, 0.1])), [3, 1, 4, 0, 2]);
});

test('phase-1 decoding: each layer loses exactly round(f n) of its smallest |w|, at most n - 1', () => {
  const before = memory().tensors;
  const { m, layout } = model();
  const dec = new ThresholdDecoder(layout);
  const g = Float64Array.from([0.5, 0.25]);
  const masks = dec.decode(g);
  // Layer 0 |w| ascending (ties by index): 9 5 1 8 2 3 | 7 0 11 6 4 10 — the three 0.3s are 2, 3, 7: 2 and 3 go.
  assert.deepEqual(Array.from(masks[0]), [1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1]);
  assert.equal(countOnes(masks[0]), 6);
  assert.deepEqual(Array.from(masks[1]), [0, 1, 1, 1, 0, 1, 1, 1]);
  assert.equal(dec.keptFraction(g), layout.kept(masks).fraction);
  assert.equal(dec.keptFraction(g), 12 / 20);
  // A gene of 0.99 on a 12-weight layer would remove 12 (round 11.88): one weight always stays.
  assert.equal(countOnes(dec.decode(Float64Array.from([MAX_LAYER_PRUNE, 0]))[0]), 1);
  m.dispose();
  assert.equal(memory().tensors, before);
});

test('stratified phase-1 sampling: the dense network first, then levels spread over the whole range', () => {
  const pop = stratifiedSampling(5, 0).sample(12, new Rng(1));
  assert.deepEqual(Array.from(pop[0]), [0, 0, 0, 0, 0]);
  pop.forEach((g, k) => { for (const x of g) assert.ok(Math.abs(x - (k / 11) * MAX_LAYER_PRUNE) < 1e-12); });
  const jittered = stratifiedSampling(5).sample(12, new Rng(1));
  for (const g of jittered) for (const x of g) assert.ok(x >= 0 && x <= MAX_LAYER_PRUNE);
});

test('global magnitude keeps exactly round(q N) weights, the largest |w| over all layers', () => {
  const { m, layout } = model();
  const gm = new GlobalMagnitude(layout);
  const masks = gm.masks(0.25); // 5 of 20: |w| 2, 1.1, 0.9 (layer 1), 0.9 (layer 0), 0.7
  assert.equal(layout.kept(masks).kept, 5);
  assert.deepEqual(Array.from(masks[0]), [0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0]);
  assert.deepEqual(Array.from(masks[1]), [0, 1, 0, 0, 0, 0, 0, 1]);
  assert.equal(layout.kept(gm.masks(1)).kept, 20);
  assert.equal(layout.kept(gm.masks(0)).kept, 0);
  m.dispose();
});

test('masks round-trip through the compact file; a file for another model is refused', () => {
  const before = memory().tensors;
  const dir = mkdtempSync(join(tmpdir(), 'hier-moea-masks-'));
  try {
    const { m, layout } = model();
    const rng = new Rng(4);
    const sols = [0.2, 0.5, 0.9].map((q) => layout.toBits(layout.sizes.map((n) => Uint8Array.from({ length: n }, () => (rng.random() < q ? 1 : 0)))));
    saveMaskBits(join(dir, 'm.safetensors'), layout, sols);
    const back = loadMaskBits(join(dir, 'm.safetensors'), layout);
    assert.equal(back.length, 3);
    back.forEach((b, i) => assert.ok(b.equals(sols[i])));
    assert.deepEqual(layout.fromBits(back[1]).map((a) => Array.from(a)), layout.fromBits(sols[1]).map((a) => Array.from(a)));
    const other = new Sequential(new Linear(3, 5));
    assert.throws(() => loadMaskBits(join(dir, 'm.safetensors'), new PrunableLayout(other)), SerializationError);
    other.dispose();
    // The phase-2 space maps bits to exactly the heavy anchor's weights.
    const heavy = layout.fromBits(sols[2]);
    const sp = new BitSpace(layout, heavy);
    assert.equal(sp.nBits, sols[2].count());
    const all = sp.fromMasks(heavy);
    assert.equal(all.count(), sp.nBits);
    assert.deepEqual(sp.toMasks(all).map((a) => Array.from(a)), heavy.map((a) => Array.from(a)));
    const sub = sp.fromMasks(layout.fromBits(sols[0])); // intersection with the heavy anchor
    sp.toMasks(sub).forEach((mk, l) => mk.forEach((v, i) => assert.ok(!v || (heavy[l][i] && layout.fromBits(sols[0])[l][i]))));
    m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(memory().tensors, before);
});

test('global magnitude as phase-1 genomes: decoding them gives the global masks back, weight for weight', () => {
  const before = memory().tensors;
  const { m, layout } = model();
  const gm = new GlobalMagnitude(layout), dec = new ThresholdDecoder(layout);
  const genomes = magnitudeGenomes(layout, layout.magnitudes(), [0.25, 0.5, 0.7]);
  assert.equal(genomes.length, 3);
  [0.25, 0.5, 0.7].forEach((s, k) => {
    const want = gm.masks(1 - s), got = dec.decode(genomes[k]);
    for (let l = 0; l < 2; l++) assert.deepEqual(Array.from(got[l]), Array.from(want[l]), `sparsity ${s}, layer ${l}`);
    assert.ok(Math.abs(dec.keptFraction(genomes[k]) - Math.round((1 - s) * 20) / 20) < 1e-12);
  });
  // 50% of all 20 weights: the 10 largest |w| are 2, 1.1, 0.9 (x2), 0.7, 0.6 (x2), 0.5 (x2), 0.4:
  // layer 0 keeps 1.1, 0.9, 0.7, 0.6, 0.5 (removes 7 of 12), layer 1 keeps 2, 0.9, 0.6, 0.5, 0.4 (removes 3 of 8).
  assert.deepEqual(Array.from(genomes[1]), [1 - 5 / 12, 1 - 5 / 8]);
  assert.deepEqual(magnitudeGenomes(layout, layout.magnitudes(), []), []);
  m.dispose();
  assert.equal(memory().tensors, before);
});
