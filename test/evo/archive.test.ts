import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ParetoArchive } from '../../src/evo/archive.js';

const g = (...v: number[]) => Float64Array.from(v);

test('the archive keeps exactly the non-dominated points seen, one per objective vector, sorted by the last objective', () => {
  const a = new ParetoArchive<Float64Array>();
  assert.equal(a.add(g(1), [0.5, 0.5]), true);
  assert.equal(a.add(g(2), [0.6, 0.6]), false, 'dominated');
  assert.equal(a.add(g(3), [0.5, 0.5]), false, 'equal objectives: the first stays');
  assert.equal(a.add(g(4), [0.2, 0.9]), true);
  assert.equal(a.add(g(5), [0.9, 0.1]), true);
  assert.equal(a.add(g(6), [0.4, 0.4]), true, 'dominates (0.5, 0.5), which leaves');
  assert.deepEqual(a.entries().map((e) => [e.genome[0], ...e.objectives]), [[5, 0.9, 0.1], [6, 0.4, 0.4], [4, 0.2, 0.9]]);
  assert.equal(a.size, 3);
});

test('the archive copies genomes and survives a save and restore exactly', () => {
  const a = new ParetoArchive<Float64Array>();
  const x = g(0.25, 1 / 3);
  a.add(x, [0.1, Infinity]);
  x[0] = 9;
  assert.equal(a.entries()[0].genome[0], 0.25);
  const b = ParetoArchive.restore<Float64Array>(JSON.parse(JSON.stringify(a.state())));
  assert.deepEqual(b.entries().map((e) => [Array.from(e.genome), e.objectives]), [[[0.25, 1 / 3], [0.1, Infinity]]]);
  assert.throws(() => ParetoArchive.restore({ format: 'nope' } as never), /not an archive state/);
});
