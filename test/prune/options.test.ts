/** Prune options: bad values rejected before any work, with the field named; recipes and flags merge. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pruneConfigFrom } from '../../src/cli/prune.js';
import { ConfigError } from '../../src/core/errors.js';
import { criterionNames, getCriterion, scoreWith, userCriterion } from '../../src/prune/criteria.js';
import { METHOD_NAMES } from '../../src/prune/methods/index.js';
import { preflight, validatePruneOptions } from '../../src/prune/options.js';
import { pruneTo } from '../../src/prune/step.js';
import { PruneTarget } from '../../src/prune/target.js';
import { createModel } from '../../src/models/registry.js';
import { dispose, memory } from '../../src/tensor/index.js';

const train = { model: 'lenet_300_100', dataset: 'mnist', epochs: 10, seed: 0, init: 'default', device: 'cpu', batchSize: 128 };

function rejects(raw: Record<string, unknown>, path: string, pattern: RegExp, t = train) {
  assert.throws(() => validatePruneOptions(raw, t), (e: Error) => {
    assert.ok(e instanceof ConfigError, `ConfigError, got ${e}`);
    assert.ok(e.issues.some((i) => i.path === path), `an issue at '${path}': ${JSON.stringify(e.issues)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('sparsity outside [0, 1) is rejected naming the field', () => {
  rejects({ method: 'pmp', sparsity: 1 }, 'sparsity', /sparsity: must be below 1/);
  rejects({ method: 'pmp', sparsity: 1.5 }, 'sparsity', /sparsity/);
  rejects({ method: 'pmp', sparsity: -0.1 }, 'sparsity', /sparsity: must be at least 0/);
  rejects({ method: 'pmp' }, 'sparsity', /sparsity/);
  assert.equal(validatePruneOptions({ method: 'pmp', sparsity: 0 }, train).sparsity, 0);
});

test('a schedule that ends before it starts, or past the training, is rejected', () => {
  rejects({ method: 'gmp', sparsity: 0.9, startEpoch: 5, endEpoch: 3 }, 'endEpoch', /must end after it starts/);
  rejects({ method: 'gmp', sparsity: 0.9, startEpoch: 5, endEpoch: 5 }, 'endEpoch', /endEpoch 5 <= startEpoch 5/);
  rejects({ method: 'gmp', sparsity: 0.9, endEpoch: 11 }, 'endEpoch', /at most epochs \(10\)/);
  rejects({ method: 'pmp', sparsity: 0.9, phase: 11 }, 'phase', /at most epochs/);
  const g = validatePruneOptions({ method: 'gmp', sparsity: 0.9 }, train);
  assert.equal(g.startEpoch, 0);
  assert.equal(g.frequency, 100);
});

test('a method that needs a trained model, given none, and the reverse', () => {
  rejects({ method: 'magnitude', sparsity: 0.9 }, 'from', /prunes a trained model: give one with --from/);
  rejects({ method: 'snip', sparsity: 0.9, from: 'runs/x' }, 'from', /starts from initialization/);
  rejects({ method: 'lth', sparsity: 0.9, from: 'runs/x' }, 'from', /starts from initialization/);
  assert.equal(validatePruneOptions({ method: 'magnitude', sparsity: 0.9, from: 'runs/x' }, train).finetune, true);
});

test('unknown methods and options of another method are named', () => {
  rejects({ method: 'obd', sparsity: 0.5 }, 'method', /unknown method 'obd' \(known: pmp, gmp, magnitude, random, lth, snip, grasp, one_shot\)/);
  rejects({ method: 'snip', sparsity: 0.5, phase: 3 }, 'phase', /not an option of method 'snip'/);
  rejects({ method: 'pmp', sparsity: 0.5, scope: 'network' }, 'scope', /scope/);
  assert.deepEqual(METHOD_NAMES, ['pmp', 'gmp', 'magnitude', 'random', 'lth', 'snip', 'grasp', 'one_shot']);
});

test('a model with nothing prunable is rejected before any work', () => {
  const o = validatePruneOptions({ method: 'pmp', sparsity: 0.5, prunable: '^nothing$' }, train);
  assert.throws(() => preflight(train, o), (e: Error) => e instanceof ConfigError && e.issues[0].path === 'prunable' && /nothing prunable/.test(e.message));
  preflight(train, validatePruneOptions({ method: 'pmp', sparsity: 0.5, prunable: '^1\\.weight$' }, train));
});

test('recipe prune: mapping merged under flags, training fields validated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'topiary-prune-'));
  const recipe = join(dir, 'r.yaml');
  writeFileSync(recipe, 'model: lenet_300_100\ndataset: mnist\nepochs: 20\nbatchSize: 128\nlr: 0.1\nprune:\n  method: pmp\n  sparsity: 0.789\n  phase: 6\n');
  const { train: t, prune } = pruneConfigFrom({ recipe, sparsity: 0.9, epochs: 8 });
  assert.equal(t.epochs, 8);
  assert.equal(prune.sparsity, 0.9);
  assert.equal(prune.phase, 6);
  assert.throws(() => pruneConfigFrom({ recipe, phase: 30 }), (e: Error) => e instanceof ConfigError && /phase: must be at most epochs \(20\)/.test(e.message));
  assert.throws(() => pruneConfigFrom({ recipe, lr: -1 }), (e: Error) => e instanceof ConfigError && /lr/.test(e.message));
});

test('criteria registry: built-ins, and a user-supplied score used through the same selection', () => {
  assert.deepEqual(criterionNames().slice(0, 4), ['magnitude', 'random', 'snip', 'grasp']);
  assert.throws(() => getCriterion('taylor'), /unknown criterion 'taylor' \(known: magnitude, random, snip, grasp/);
  const before = memory().tensors;
  const model = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 });
  // Keep the weights with the most negative values: a score no built-in gives.
  userCriterion('most_negative', (w) => w.neg());
  const t = new PruneTarget(model);
  const w0 = new Map(t.weights.map((n) => [n, t.param(n).dataSync()]));
  const s = scoreWith('most_negative', { model, target: t });
  pruneTo(t, s, { sparsity: 0.5, scope: 'layer' });
  for (const n of t.weights) {
    const w = w0.get(n)!;
    const m = t.mask(n).dataSync();
    const maxKept = w.reduce((a, v, i) => (m[i] ? Math.max(a, v) : a), -Infinity), minPruned = w.reduce((a, v, i) => (m[i] ? a : Math.min(a, v)), Infinity);
    assert.ok(maxKept < minPruned, `${n}: the lowest weights kept (${maxKept} < ${minPruned})`);
  }
  assert.throws(() => userCriterion('most_negative', (w) => w), /already registered/);
  dispose([...s.values()]);
  t.dispose();
  model.dispose();
  assert.equal(memory().tensors, before);
});

test('the command line: a bad option exits with code 2 and one line naming the field, before any work', async () => {
  const { spawnSync } = await import('node:child_process');
  const bin = new URL('../../bin/topiary.js', import.meta.url).pathname;
  const r = spawnSync(process.execPath, [bin, 'prune', '--method', 'gmp', '--model', 'lenet_300_100', '--dataset', 'mnist', '--sparsity', '0.9',
    '--epochs', '10', '--batch-size', '64', '--lr', '0.1', '--start-epoch', '6', '--end-epoch', '4', '--out', join(tmpdir(), 'never-written')], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^topiary: invalid prune options: endEpoch: the schedule must end after it starts: endEpoch 4 <= startEpoch 6\n/);
});
