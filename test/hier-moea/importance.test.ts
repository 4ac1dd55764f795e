import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { BitSet } from '../../src/evo/bitset.js';
import { Linear, Sequential } from '../../src/nn/layers.js';
import { memory } from '../../src/tensor/index.js';
import { bitProbabilities, importanceSampling, normalizedImportance, samplingProbabilities, targetDensities } from '../../src/prune/hier-moea/importance.js';
import { PrunableLayout } from '../../src/prune/hier-moea/layout.js';
import { BitSpace } from '../../src/prune/hier-moea/phase2.js';

const evenS = (m: number) => Float64Array.from({ length: m }, (_, i) => (i + 0.5) / m);
const meanOf = (a: ArrayLike<number>) => Array.from(a).reduce((x, y) => x + y, 0) / a.length;

test('bitProbabilities: the expected density is the target, and probability grows with importance', () => {
  for (const m of [7, 100, 1000]) {
    const sm = Float64Array.from(new Rng(m).permutation(m), (r) => (r + 0.5) / m);
    for (const T of [0.02, 0.05, 0.3]) {
      for (const d of [0.01, 0.2, 0.5, 0.9]) {
        const p = bitProbabilities(sm, d, T);
        assert.ok(Math.abs(meanOf(p) - d) < 1e-9, `m ${m} T ${T} density ${d}: mean ${meanOf(p)}`);
        for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) if (sm[i] < sm[j]) assert.ok(p[i] <= p[j]);
      }
    }
  }
  assert.deepEqual(Array.from(bitProbabilities(evenS(5), 1, 0.05)), [1, 1, 1, 1, 1]);
  assert.deepEqual(Array.from(bitProbabilities(evenS(5), 0, 0.05)), [0, 0, 0, 0, 0]);
  // A low temperature approaches keeping the top d*m by importance.
  const sharp = bitProbabilities(evenS(100), 0.3, 0.0005);
  for (let i = 0; i < 100; i++) assert.ok(i >= 70 ? sharp[i] > 0.99 : sharp[i] < 0.01, `bit ${i}: ${sharp[i]}`);
});

function space(): { layout: PrunableLayout; sp: BitSpace; raw: Float64Array[]; model: Sequential } {
  const model = new Sequential(new Linear(30, 20), new Linear(20, 10)); // weights 600 and 200
  const layout = new PrunableLayout(model);
  // Heavy anchor: 400 of the first layer, 150 of the second.
  const rng = new Rng(3);
  const heavy = layout.sizes.map((n, l) => {
    const m = new Uint8Array(n);
    const keep = l === 0 ? 400 : 150;
    for (const i of rng.permutation(n).subarray(0, keep)) m[i] = 1;
    return m;
  });
  const raw = layout.sizes.map((n) => Float64Array.from({ length: n }, () => rng.random()));
  return { layout, sp: new BitSpace(layout, heavy), raw, model };
}

test('normalizedImportance: ranks within each layer, spread evenly over (0, 1), in the order of the raw scores', () => {
  const before = memory().tensors;
  const { sp, raw, model } = space();
  const s = normalizedImportance(sp, raw);
  sp.alive.forEach((idx, l) => {
    const m = idx.length;
    const sl = Array.from(s.subarray(sp.starts[l], sp.starts[l] + m));
    assert.deepEqual([...sl].sort((a, b) => a - b), Array.from(evenS(m)));
    for (let a = 0; a < m; a++) for (let b = 0; b < m; b += 7) {
      if (raw[l][idx[a]] < raw[l][idx[b]]) assert.ok(sl[a] < sl[b]);
    }
  });
  model.dispose();
  assert.equal(memory().tensors, before);
});

test('importance-aware sampling: anchors first, then the expected density of every layer is its target', () => {
  const { sp, raw, model } = space();
  const s = normalizedImportance(sp, raw);
  // Light anchor: 100 of layer 0's bits (d = 0.25), 120 of layer 1's (d = 0.8).
  const light = new BitSet(sp.nBits);
  for (let j = 0; j < 100; j++) light.set(j);
  for (let j = 0; j < 120; j++) light.set(sp.starts[1] + j);
  const o = { space: sp, s, light, temperature: 0.05, sparsest: 0.05 };
  const n = 10;
  // Overall densities log-uniform from 1 (excluded) down to 0.05, each layer at d_l^t for one t.
  const rels: number[] = [];
  for (let k = 2; k < n; k++) {
    const rho = targetDensities(o, k, n);
    const rel = (rho[0] * 400 + rho[1] * 150) / 550;
    rels.push(rel);
    assert.ok(Math.abs(Math.log(rel) - ((k - 1) / (n - 2)) * Math.log(0.05)) < 1e-6, `k ${k}: overall density ${rel}`);
    const t = Math.log(rho[1]) / Math.log(0.8); // the same t in both layers (layer 0 floored at one weight)
    assert.ok(Math.abs(rho[0] - Math.max(1 / 400, 0.25 ** t)) < 1e-9, `k ${k}: layers off the geometric path`);
    const p = samplingProbabilities(o, k, n);
    assert.ok(Math.abs(meanOf(p.subarray(0, 400)) - rho[0]) < 1e-9);
    assert.ok(Math.abs(meanOf(p.subarray(400)) - rho[1]) < 1e-9);
  }
  // The light anchor's overall density (220 / 550) lies on the path: somewhere in between.
  assert.ok(rels[0] > 220 / 550 && rels[rels.length - 1] < 220 / 550);

  // Empirically: over many draws, each individual's count per layer averages its expected density,
  // and important bits are set more often than unimportant ones.
  const sampling = importanceSampling(o);
  const rng = new Rng(11);
  const reps = 300;
  const counts = Array.from({ length: n }, () => [0, 0]);
  let top = 0, bottom = 0;
  for (let r = 0; r < reps; r++) {
    const pop = sampling.sample(n, rng);
    assert.equal(pop[0].count(), sp.nBits, 'individual 0 is the heavy anchor');
    assert.ok(pop[1].equals(light), 'individual 1 is the light anchor');
    for (let k = 2; k < n; k++) {
      const per = sp.countPerLayer(pop[k]);
      counts[k][0] += per[0]; counts[k][1] += per[1];
    }
    const g = pop[4]; // overall density ~0.26: about the light anchor's
    for (let j = 0; j < 400; j++) { if (g.get(j)) { if (s[j] > 0.5) top++; else bottom++; } }
  }
  for (let k = 2; k < n; k++) {
    const p = samplingProbabilities(o, k, n);
    for (const [l, a, b] of [[0, 0, 400], [1, 400, 550]]) {
      const pl = p.subarray(a, b);
      const expected = pl.reduce((x, y) => x + y, 0);
      const variance = pl.reduce((x, y) => x + y * (1 - y), 0);
      const got = counts[k][l] / reps;
      assert.ok(Math.abs(got - expected) <= 4 * Math.sqrt(variance / reps) + 1e-9, `k ${k} layer ${l}: ${got} vs ${expected}`);
    }
  }
  assert.ok(top > 20 * Math.max(1, bottom), `important bits dominate: ${top} vs ${bottom}`);
  model.dispose();
});
