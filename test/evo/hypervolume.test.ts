import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ArgumentError } from '../../src/core/errors.js';
import { hypervolume, hypervolume2d } from '../../src/evo/hypervolume.js';
import { kneeDistances, kneePoint } from '../../src/evo/knee.js';
import { zdt1, zdt2 } from '../../src/evo/zdt.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('hypervolume 2-D: staircase by hand; dominated and out-of-reference points ignored', () => {
  // Strips: (4-1)(4-3) + (4-2)(3-2) + (4-3)(2-1) = 3 + 2 + 1.
  close(hypervolume2d([[1, 3], [2, 2], [3, 1]], [4, 4]), 6);
  close(hypervolume([[3, 1], [2.5, 2.5], [1, 3], [5, 0], [2, 2], [4, 0], [2, 2]], [4, 4]), 6);
  close(hypervolume([[0, 0]], [1, 1]), 1);
  assert.equal(hypervolume([], [1, 1]), 0);
  assert.equal(hypervolume([[1, 1]], [1, 1]), 0);
  assert.throws(() => hypervolume([[1, 2, 3]], [4, 4]), ArgumentError);
});

test('hypervolume 3-D: inclusion-exclusion by hand', () => {
  // Three boxes of 6; pairwise unions' corners (2,3,3), (3,2,3), (3,3,2) give overlaps of 2;
  // the triple overlap (3,3,3) is 1: 18 - 6 + 1 = 13.
  const p = [[1, 2, 3], [2, 3, 1], [3, 1, 2]];
  close(hypervolume(p, [4, 4, 4]), 13);
  close(hypervolume([...p, [3, 3, 3], [1, 2, 3]], [4, 4, 4]), 13);
  close(hypervolume([[0, 0, 0, 0]], [1, 2, 3, 4]), 24);
  close(hypervolume([[1, 1, 1], [0, 2, 2]], [3, 3, 3]), 8 + 3 - 2);
});

// Integer points on a grid: the volume is the number of unit cells whose lower corner
// some point weakly dominates, counted directly.
function cellCount(pts: number[][], ref: number[]): number {
  const d = ref.length;
  let count = 0;
  const c = new Array(d).fill(0);
  const visit = (k: number): void => {
    if (k === d) { if (pts.some((p) => p.every((v, j) => v <= c[j]))) count++; return; }
    for (let v = 0; v < ref[k]; v++) { c[k] = v; visit(k + 1); }
  };
  visit(0);
  return count;
}

test('hypervolume 3-D and 4-D: agrees with cell counting on random integer sets', () => {
  const rng = new Rng(30);
  for (const d of [2, 3, 4]) {
    for (let t = 0; t < 15; t++) {
      const ref = Array(d).fill(6);
      const pts = Array.from({ length: 3 + rng.int(12) }, () => Array.from({ length: d }, () => rng.int(7)));
      close(hypervolume(pts, ref), cellCount(pts, ref), 1e-9);
    }
  }
});

test('hypervolume: a dense sample of the ZDT fronts approaches 2/3 and 1/3', () => {
  for (const p of [zdt1(), zdt2()]) {
    const hv = hypervolume(p.paretoFront(2001), [1, 1]);
    assert.ok(hv < p.optimalHypervolume && p.optimalHypervolume - hv < 1e-3, `${p.name}: ${hv}`);
  }
});

test('kneePoint: farthest from the extreme line, on the ideal side, scale-free', () => {
  // Normalized front already in [0, 1]^2; the line is x + y = 1, distance (1 - x - y)/sqrt 2.
  const front = [[0, 1], [0.2, 0.2], [0.5, 0.1], [1, 0]];
  const d = kneeDistances(front);
  close(d[1], 0.6 / Math.SQRT2);
  close(d[2], 0.4 / Math.SQRT2);
  close(d[0], 0);
  close(d[3], 0);
  assert.equal(kneePoint(front), 1);
  assert.equal(kneePoint(front.map(([a, b]) => [10 + 3 * a, 100 * b])), 1);
  // Concave: no point on the ideal side, so the best-f1 extreme.
  assert.equal(kneePoint([[1, 0], [0.5, 0.9], [0, 1]]), 2);
  assert.equal(kneePoint([[2, 3]]), 0);
  assert.throws(() => kneePoint([[1, 2, 3]]), ArgumentError);
  assert.throws(() => kneePoint([]), ArgumentError);
});
