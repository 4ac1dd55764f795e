/** SNIP and GraSP scores against PyTorch (fixtures from scripts/make-prune-fixtures.py). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { manualSeed } from '../../src/core/runtime.js';
import { graspScores, snipScores } from '../../src/prune/saliency.js';
import { pruneTo } from '../../src/prune/step.js';
import { PruneTarget } from '../../src/prune/target.js';
import { dispose, memory, tidy } from '../../src/tensor/index.js';
import { buildNet, fromRec, relErr, type Rec } from './helpers.js';

interface Case {
  name: string; layers: (string | number | boolean)[][]; inputShape: number[]; temperature: number;
  state: Record<string, Rec>; x: Rec; y: Rec;
  snip: Record<string, Rec>; grasp: Record<string, Rec>; snipKeep50: Record<string, Rec>; graspKeep50: Record<string, Rec>;
}
const fx = JSON.parse(readFileSync(new URL('../fixtures/prune-saliency.json', import.meta.url), 'utf8')) as { cases: Case[] };

function setup(c: Case) {
  manualSeed(0);
  const net = buildNet(c.layers);
  const sd = Object.fromEntries(Object.entries(c.state).map(([k, r]) => [k, fromRec(r)]));
  net.loadStateDict(sd);
  dispose(sd);
  return { net, x: fromRec(c.x), y: fromRec(c.y) };
}

for (const c of fx.cases) {
  test(`snip scores match PyTorch (${c.name})`, () => {
    const before = memory().tensors;
    const { net, x, y } = setup(c);
    const names = Object.keys(c.snip);
    const s = snipScores(net, names, { x, y });
    let total = 0;
    for (const n of names) {
      const e = relErr(s.get(n)!, c.snip[n].data);
      assert.ok(e < 1e-5, `${n}: relative error ${e}`);
      total += tidy(() => s.get(n)!.sum().item());
    }
    assert.ok(Math.abs(total - 1) < 1e-5, `normalized scores sum to ${total}`);
    dispose([...s.values(), x, y]);
    net.dispose();
    assert.equal(memory().tensors, before, 'no tensor leaks');
  });

  test(`grasp scores (-w * Hg, T = ${c.temperature}) match PyTorch (${c.name})`, () => {
    const before = memory().tensors;
    const { net, x, y } = setup(c);
    const buffers = net.namedBuffers().map(([n, b]) => [n, b.dataSync()] as const);
    const names = Object.keys(c.grasp);
    const s = graspScores(net, names, { x, y }, c.temperature);
    for (const n of names) {
      const e = relErr(s.get(n)!, c.grasp[n].data);
      assert.ok(e < 1e-5, `${n}: relative error ${e}`);
    }
    // Scoring ran in training mode but left BatchNorm's running statistics as they were.
    for (const [n, b] of buffers) assert.deepEqual(net.namedBuffers().find(([m]) => m === n)![1].dataSync(), b, `buffer ${n} restored`);
    dispose([...s.values(), x, y]);
    net.dispose();
    assert.equal(memory().tensors, before, 'no tensor leaks');
  });

  test(`50% keep masks from snip and grasp scores equal PyTorch's exact top-k (${c.name})`, () => {
    const { net, x, y } = setup(c);
    const names = Object.keys(c.snip);
    for (const [kind, want] of [['snip', c.snipKeep50], ['grasp', c.graspKeep50]] as const) {
      const target = new PruneTarget(net);
      assert.deepEqual(target.weights, names);
      const raw = kind === 'snip' ? snipScores(net, names, { x, y }) : graspScores(net, names, { x, y }, c.temperature);
      const imp = kind === 'snip' ? raw : tidy(() => new Map([...raw].map(([n, t]) => [n, t.neg()])));
      const rec = pruneTo(target, imp, { sparsity: 0.5, scope: 'global' });
      assert.equal(rec.kept, Math.round(0.5 * rec.total));
      let diff = 0;
      for (const n of names) {
        const got = target.mask(n).dataSync();
        want[n].data.forEach((v, i) => { if (v !== got[i]) diff++; });
      }
      assert.equal(diff, 0, `${kind}: ${diff} mask entries differ from PyTorch's`);
      dispose([...raw.values(), ...imp.values()]);
      target.dispose();
      const sd = Object.fromEntries(Object.entries(c.state).map(([k, r]) => [k, fromRec(r)]));
      net.loadStateDict(sd);
      dispose(sd);
    }
    dispose([x, y]);
    net.dispose();
  });
}
