import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { crowdingDistance, dominates, nonDominatedSort } from '../../src/evo/sorting.js';
import { rankAndCrowdingSurvival } from '../../src/evo/survival.js';
import { binaryTournament } from '../../src/evo/selection.js';
import type { Population } from '../../src/evo/types.js';

// A(1,5) B(2,3) C(4,1) D(3,4) E(5,5) F(2,6) G(6,2): by hand, front 0 = {A, B, C};
// D is dominated by B, F by A, G by C, and D, F, G are mutually incomparable: front 1;
// E is dominated by D: front 2.
const pts = [[1, 5], [2, 3], [4, 1], [3, 4], [5, 5], [2, 6], [6, 2]];

test('nonDominatedSort: hand-made fronts and ranks', () => {
  const { fronts, rank } = nonDominatedSort(pts);
  assert.deepEqual(fronts, [[0, 1, 2], [3, 5, 6], [4]]);
  assert.deepEqual(Array.from(rank), [0, 0, 0, 1, 2, 1, 1]);
  const partial = nonDominatedSort(pts, 3);
  assert.deepEqual(partial.fronts, [[0, 1, 2]]);
  assert.deepEqual(Array.from(partial.rank), [0, 0, 0, -1, -1, -1, -1]);
});

test('nonDominatedSort: duplicates share a front; agrees with the definition on random sets', () => {
  assert.deepEqual(nonDominatedSort([[1, 1], [1, 1], [2, 2]]).fronts, [[0, 1], [2]]);
  const rng = new Rng(5);
  for (let t = 0; t < 20; t++) {
    const m = 2 + rng.int(3);
    const p = Array.from({ length: 60 }, () => Array.from({ length: m }, () => rng.int(6)));
    const { rank } = nonDominatedSort(p);
    // rank(i) = 0 if nothing dominates i, else 1 + max rank of its dominators.
    for (let i = 0; i < p.length; i++) {
      const doms = p.map((_, j) => j).filter((j) => dominates(p[j], p[i]));
      assert.equal(rank[i], doms.length === 0 ? 0 : 1 + Math.max(...doms.map((j) => rank[j])));
    }
  }
});

test('crowdingDistance: hand-computed 2-D and 3-D fronts', () => {
  // f1 range 10, f2 range 10: P2 = (5-0)/10 + (10-3)/10 = 1.2, P3 = (10-2)/10 + (6-0)/10 = 1.4.
  const f2 = [[0, 10], [2, 6], [5, 3], [10, 0]];
  const d2 = crowdingDistance(f2, [0, 1, 2, 3]);
  assert.equal(d2[0], Infinity);
  assert.equal(d2[3], Infinity);
  assert.ok(Math.abs(d2[1] - 1.2) < 1e-12 && Math.abs(d2[2] - 1.4) < 1e-12);
  // f1: Q2 = 3/4, Q3 = 3/4; f2: Q2 = 3/4, Q3 = 2/4; f3 (range 3): Q2 = 2/3, Q3 = 2/3.
  const f3 = [[0, 4, 0], [1, 2, 2], [3, 1, 1], [4, 0, 3]];
  const d3 = crowdingDistance(f3, [0, 1, 2, 3]);
  assert.deepEqual([d3[0], d3[3]], [Infinity, Infinity]);
  assert.ok(Math.abs(d3[1] - (0.75 + 0.75 + 2 / 3)) < 1e-12);
  assert.ok(Math.abs(d3[2] - (0.75 + 0.5 + 2 / 3)) < 1e-12);
  // Indices into a larger set; fronts of one or two points are all boundary.
  assert.deepEqual(Array.from(crowdingDistance(pts, [3, 5])), [Infinity, Infinity]);
  const sub = crowdingDistance(pts, [0, 1, 2]); // A, B, C: B = (4-1)/3 + (5-1)/4 = 2
  assert.deepEqual(Array.from(sub), [Infinity, 2, Infinity]);
});

test('crowdingDistance: copies of a point get 0 and the first copy is measured among distinct points', () => {
  // Distinct points (0,10) (2,6) (5,3) (10,0) as above, with (0,10) twice and (5,3) three times.
  const f = [[0, 10], [2, 6], [0, 10], [5, 3], [10, 0], [5, 3], [5, 3]];
  const d = crowdingDistance(f, [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual([d[0], d[2], d[4], d[5], d[6]], [Infinity, 0, Infinity, 0, 0]);
  assert.ok(Math.abs(d[1] - 1.2) < 1e-12 && Math.abs(d[3] - 1.4) < 1e-12);
  // Two copies of one point: one boundary point, one copy.
  assert.deepEqual(Array.from(crowdingDistance([[1, 1], [1, 1]], [1, 0])), [Infinity, 0]);
});

test('rankAndCrowdingSurvival: whole fronts first, last front cut by crowding', () => {
  const pop: Population = pts.map((o) => ({ genome: new Float64Array(0), objectives: o, rank: -1, crowding: -1 }));
  const kept = rankAndCrowdingSurvival().survive(pop, 5);
  // Front 1 is F(2,6), D(3,4), G(6,2): D is interior, so F and G survive.
  assert.deepEqual(kept.map((i) => i.objectives), [[1, 5], [2, 3], [4, 1], [2, 6], [6, 2]]);
  assert.deepEqual(kept.map((i) => i.rank), [0, 0, 0, 1, 1]);
  assert.deepEqual(kept.map((i) => i.crowding), [Infinity, 2, Infinity, Infinity, Infinity]);
  assert.equal(rankAndCrowdingSurvival().survive(pop, 7).length, 7);
});

test('binaryTournament: lower rank wins, then larger crowding, else a fair coin', () => {
  const mk = (rank: number, crowding: number) => ({ genome: new Float64Array(0), objectives: [0], rank, crowding });
  const rng = new Rng(6);
  const sel = binaryTournament();
  assert.deepEqual(Array.from(sel.select([mk(1, 9), mk(0, 1)], 20, rng)), Array(20).fill(1));
  assert.deepEqual(Array.from(sel.select([mk(0, 1), mk(0, 2)], 20, rng)), Array(20).fill(1));
  const tie = sel.select([mk(0, 1), mk(0, 1)], 4000, rng);
  const ones = tie.reduce((s, v) => s + v, 0);
  assert.ok(Math.abs(ones - 2000) < 5 * Math.sqrt(1000), `${ones}`);
});
