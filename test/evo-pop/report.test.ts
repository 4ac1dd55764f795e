/**
 * The EVO-POP report chooses its best dynamic on the validation split, never on the test set: on
 * hand-made runs where the test ranking and the validation ranking disagree, bestOnValidation,
 * checks() and the reading notes all name the validation winner and report its test accuracy; runs
 * without validation accuracy give no best at all (no fallback to test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readingNotes } from '../../src/experiment/reproduce-evo-pop.js';
import { bestOnValidation, checks, selectionTable, type Arm, type RunLike } from '../../src/prune/evo-pop/report.js';

const FRACTIONS = [0.35, 0.4, 0.45, 0.5];

/** A run whose removal-by-mass rows have the given test and validation accuracies per fraction (also random/l2 rows, lower). */
function run(seed: number, dynamics: string, test: number[], val?: number[], valLoss = 0.1): RunLike {
  const rows = FRACTIONS.flatMap((fraction, i) => [
    { criterion: 'mass', fraction, accuracy: test[i], valAccuracy: val?.[i], valLoss: val ? valLoss : undefined, params: 1000, kept: [10, 5] },
    { criterion: 'random', fraction, accuracy: test[i] - 0.05, valAccuracy: val ? val[i] - 0.05 : undefined, params: 1000, kept: [10, 5] },
    { criterion: 'l2', fraction, accuracy: test[i] - 0.01, valAccuracy: val ? val[i] - 0.01 : undefined, params: 1000, kept: [10, 5] },
    { criterion: 'activation', fraction, accuracy: test[i] - 0.02, params: 1000, kept: [10, 5] },
  ]);
  return { model: 'mlp', dynamics, fitness: 'gradient', seed, eta: 0.01, denseAccuracy: 0.981, denseParams: 2000, trainSeconds: 1, pruneSeconds: 1, populations: { 1: 20, 2: 10 }, extinct: { 1: 0, 2: 0 }, rows };
}

// A is better on test (mean 98.45 vs 98.15), B on validation (97.95 vs 97.45), in every seed and fraction.
const A: Arm = { label: 'MLP, A', runs: [0, 1].map((s) => run(s, 'a', [0.986, 0.985, 0.984, 0.983], [0.976, 0.975, 0.974, 0.973])) };
const B: Arm = { label: 'MLP, B', runs: [0, 1].map((s) => run(s, 'b', [0.983, 0.982, 0.981, 0.980], [0.981, 0.980, 0.979, 0.978])) };
const C: Arm = { label: 'MLP, C', runs: [0, 1].map((s) => run(s, 'c', [0.970, 0.970, 0.969, 0.968], [0.970, 0.970, 0.969, 0.968])) };

test('bestOnValidation picks the validation winner even where the test set ranks another first', () => {
  for (const arms of [[A, B, C], [B, A, C], [C, B, A]]) {
    const sel = bestOnValidation(arms, FRACTIONS)!;
    assert.equal(sel.best, B, `order ${arms.map((a) => a.label).join(', ')}`);
    const a = sel.scores.find((s) => s.arm === A)!, b = sel.scores.find((s) => s.arm === B)!;
    assert.ok(a.test > b.test && b.val > a.val, 'the rankings disagree');
    assert.ok(Math.abs(b.val - 0.9795) < 1e-12 && Math.abs(b.test - 0.9815) < 1e-12, `B: val ${b.val}, test ${b.test}`);
  }
  const table = selectionTable(bestOnValidation([A, B, C], FRACTIONS)!, FRACTIONS);
  assert.match(table, /\| MLP, B \| 97\.950 \| 0\.1000 \| 98\.15 \| \*\*best\*\* \|/);
  assert.match(table, /\| MLP, A \| 97\.450 \| 0\.1000 \| 98\.45 \|  \|/);
  assert.deepEqual(bestOnValidation([A, B, C], FRACTIONS)!.tiedWith, []);
});

test('a tie on validation accuracy goes to the lower validation loss, never to the test accuracy', () => {
  // E and F: the same validation accuracies (float means differing in the last bits at most), F better on test, E lower validation loss
  const E: Arm = { label: 'MLP, E', runs: [0, 1, 2].map((s) => run(s, 'e', [0.980, 0.980, 0.979, 0.978], [0.9823333333333333, 0.9768333333333333, 0.978, 0.9773333333333334], 0.08)) };
  const F: Arm = { label: 'MLP, F', runs: [0, 1, 2].map((s) => run(s, 'f', [0.985, 0.984, 0.984, 0.983], [0.9773333333333334, 0.978, 0.9768333333333333, 0.9823333333333333], 0.09)) };
  for (const arms of [[E, F], [F, E], [F, C, E]]) {
    const sel = bestOnValidation(arms, FRACTIONS)!;
    assert.equal(sel.best, E, arms.map((a) => a.label).join(', '));
    assert.deepEqual(sel.tiedWith, [F]);
  }
  const text = readingNotes({ main: [F, E], dense: [{ label: 'dense', runs: [run(0, 'none', [0.9, 0.9, 0.9, 0.9], [0.9, 0.9, 0.9, 0.9])] }] }).join('\n');
  assert.match(text, /its test accuracy reported: MLP, E\. It ties on validation accuracy with MLP, F \(the same mean, to 1e-9\); its validation loss is the lower\./);
  // without validation losses, a tie keeps the first arm in the given order
  const strip = (a: Arm): Arm => ({ label: a.label, runs: a.runs.map((r) => ({ ...r, rows: r.rows.map(({ valLoss: _l, ...x }) => x) })) });
  assert.equal(bestOnValidation([strip(F), strip(E)], FRACTIONS)!.best.label, 'MLP, F');
  assert.equal(bestOnValidation([strip(E), strip(F)], FRACTIONS)!.best.label, 'MLP, E');
});

test('checks() judges the targets on the validation winner, with its test accuracy', () => {
  const cs = checks([A, B, C], FRACTIONS);
  const best = cs.filter((c) => c.what.startsWith('best on validation'));
  assert.equal(best.length, 2);
  assert.ok(best.every((c) => c.what.includes('(MLP, B)')), best.map((c) => c.what).join('; '));
  assert.equal(best[0].value, '98.30'); // B's test accuracy at −35%, not A's 98.60
  assert.equal(best[1].value, '98.00');
  const rnd = cs.find((c) => c.what === 'best beats random removal at −50%')!;
  assert.equal(rnd.value, '98.00 vs 93.00');
  assert.ok(cs.filter((c) => c.what.startsWith('dense accuracy')).length === 3);
});

test('without validation accuracy nothing is chosen: no fallback to the test set', () => {
  const noVal: Arm = { label: 'MLP, D', runs: [run(0, 'd', [0.99, 0.99, 0.99, 0.99])] };
  assert.equal(bestOnValidation([A, noVal], FRACTIONS), null);
  assert.equal(bestOnValidation([noVal], FRACTIONS), null);
  // one seed of B lacking validation is enough to withhold the choice
  const partly: Arm = { label: 'MLP, B', runs: [B.runs[0], run(1, 'b', [0.983, 0.982, 0.981, 0.980])] };
  assert.equal(bestOnValidation([A, partly], FRACTIONS), null);
  const cs = checks([A, noVal], FRACTIONS);
  assert.equal(cs.filter((c) => c.what.startsWith('best')).length, 1);
  const c = cs.find((x) => x.what.startsWith('best'))!;
  assert.equal(c.ok, false);
  assert.match(c.value, /no validation accuracy/);
});

test('the reading notes name the validation winner and say how it was chosen', () => {
  const dense: Arm = { label: 'MLP, no dynamics (dense control)', runs: [0, 1].map((s) => run(s, 'none', [0.9, 0.9, 0.9, 0.9], [0.9, 0.9, 0.9, 0.9])) };
  const text = readingNotes({ main: [A, B, C], dense: [dense] }).join('\n');
  assert.match(text, /Best dynamic chosen on validation accuracy .*its test accuracy reported: MLP, B\./);
  assert.match(text, /\| MLP, B: removal by mass \| 98\.30 \| 98\.20 \| 98\.10 \| 98\.00 \|/);
  assert.doesNotMatch(text, /MLP, A: removal by mass/);
  const none = readingNotes({ main: [{ label: 'MLP, D', runs: [run(0, 'd', [0.99, 0.99, 0.99, 0.99])] }], dense: [dense] }).join('\n');
  assert.match(none, /No best dynamic is named/);
});
