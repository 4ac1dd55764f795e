/**
 * Every script in examples/ runs, on an MNIST subset, and prints what it should: the examples never
 * rot. The custom criterion is also used from the CLI by name (topiary --plugin), with the same
 * masks as the API gives for the same seed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { prune } from '../../src/api/index.js';
import { createModel } from '../../src/models/registry.js';
import { validatePruneOptions } from '../../src/prune/options.js';
import { loadSafetensors } from '../../src/tensor/safetensors.js';
import { tidy } from '../../src/tensor/index.js';
import { DATA, NO_MNIST } from '../prune/helpers.js';

const root = join(import.meta.dirname, '..', '..');
const env = { ...process.env, TOPIARY_DATA: DATA };
const run = (file: string) => execFileSync(process.execPath, ['--import', 'tsx', join('examples', file)], { cwd: root, env, encoding: 'utf8' });
const num = (s: string, re: RegExp) => { const m = s.match(re); assert.ok(m, `${re} in: ${s}`); return Number(m[1]); };

test('examples/: six scripts, each a complete program under 40 lines', () => {
  const files = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.ts'));
  assert.deepEqual(files.sort(), ['custom-criterion.ts', 'evo-pop-mlp.ts', 'hier-moea-latency.ts', 'magnitude-finetune.ts', 'onnx-prune.ts', 'pmp-zoo.ts']);
  for (const f of files) assert.ok(readFileSync(join(root, 'examples', f), 'utf8').trimEnd().split('\n').length < 40, f);
});

test('onnx-prune: imported, 90% sparse, fine-tuned, exported; onnxruntime computes what topiary does', { skip: NO_MNIST }, () => {
  const out = run('onnx-prune.ts');
  assert.equal(num(out, /imported, ([\d.]+)% sparse/), 90);
  assert.ok(num(out, /test accuracy ([\d.]+)%/) > 80, out);
  assert.ok(num(out, /onnxruntime\| ([\d.e+-]+)/) < 1e-4, out);
});

test('pmp-zoo: 90% sparse, still accurate', { skip: NO_MNIST }, () => {
  const out = run('pmp-zoo.ts');
  assert.equal(num(out, /sparsity ([\d.]+)%/), 90);
  assert.ok(num(out, /test accuracy ([\d.]+)%/) > 80, out);
});

test('magnitude-finetune: exactly 5% kept; fine-tuning recovers what pruning lost', { skip: NO_MNIST }, () => {
  const out = run('magnitude-finetune.ts');
  assert.equal(num(out, /kept (\d+) of 266200/), Math.round(0.05 * 266200));
  const pruned = num(out, /pruned ([\d.]+)%/), tuned = num(out, /fine-tuned ([\d.]+)%/), dense = num(out, /dense ([\d.]+)%/);
  assert.ok(dense > 80 && tuned > pruned && tuned > dense - 3, out);
});

test('evo-pop-mlp: 40% of 192 neurons removed, a smaller model that still classifies', { skip: NO_MNIST }, () => {
  const out = run('evo-pop-mlp.ts');
  assert.equal(num(out, /removed (\d+) of 192/), Math.round(0.4 * 192));
  assert.ok(num(out, /-> (\d+), test/) < num(out, /parameters (\d+) ->/), out);
  assert.ok(num(out, /% -> ([\d.]+)%/) > 50, out);
});

test('hier-moea-latency: a Pareto set trading validation error for measured latency', { skip: NO_MNIST }, () => {
  const out = run('hier-moea-latency.ts');
  assert.ok(num(out, /(\d+) Pareto solutions/) >= 2, out);
  assert.ok(num(out, /most accurate error ([\d.]+)%/) < num(out, /fastest error ([\d.]+)%/), out);
});

test('custom-criterion: from the API, and from the CLI by name through --plugin, the same masks', { skip: NO_MNIST }, async () => {
  const out = run('custom-criterion.ts');
  assert.match(out, /row_relative: kept 26620 of 266200 \(1\.weight [\d.]+%, 3\.weight [\d.]+%, 5\.weight [\d.]+%\)/);
  const dir = mkdtempSync(join(tmpdir(), 'topiary-api-plugin-'));
  const cli = spawnSync(process.execPath, ['bin/topiary.js', '--plugin', 'examples/custom-criterion.ts', 'prune', '--method', 'one_shot', '--criterion', 'row_relative',
    '--sparsity', '0.9', '--model', 'lenet_300_100', '--dataset', 'mnist', '--epochs', '1', '--batch-size', '64', '--lr', '0.05', '--subset', '1000',
    '--threads', '1', '--no-finetune', '--out', dir, '--json'], { cwd: root, env, encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  const r = JSON.parse(cli.stdout) as { keptWeights: number; record: { criterion: string } };
  assert.equal(r.keptWeights, 26620);
  assert.equal(r.record.criterion, 'row_relative');
  // The API on the CLI's model (seed 0, then the model): the same masks, element by element.
  await import('../../examples/custom-criterion.js');
  manualSeed(0);
  const model = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 });
  const { target } = prune(model, 'row_relative', { sparsity: 0.9 });
  const { tensors } = loadSafetensors(join(dir, 'masks.safetensors'));
  for (const n of target.weights) assert.equal(tidy(() => (target.mask(n).eq(tensors[n].to('bool')).all().item() ? 1 : 0)), 1, n);
  Object.values(tensors).forEach((t) => t.dispose());
  target.dispose();
  model.dispose();
  // Its hyperparameters are validated by its own schema, naming the field; an unknown name lists the known ones.
  const train = { model: 'lenet_300_100', dataset: 'mnist', epochs: 1, seed: 0, init: 'default', device: 'cpu', batchSize: 64 };
  assert.throws(() => validatePruneOptions({ method: 'one_shot', sparsity: 0.5, criterion: 'row_relative', criterionOptions: { eps: -1 } }, train),
    (e: Error) => e instanceof ConfigError && /criterionOptions\.eps/.test(e.message));
  assert.throws(() => validatePruneOptions({ method: 'one_shot', sparsity: 0.5, criterion: 'nope' }, train), /unknown criterion 'nope' \(known: magnitude, random, snip, grasp, .*row_relative/);
});

test('a plugin that cannot be loaded: one line naming it, exit 2, nothing run', () => {
  const r = spawnSync(process.execPath, ['bin/topiary.js', '--plugin', 'examples/no-such-plugin.ts', 'prune', '--method', 'pmp'], { cwd: root, env, encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^topiary: plugin: examples\/no-such-plugin\.ts: cannot load/);
  assert.equal(r.stdout, '');
});
