/**
 * Defaults a user expects: every zoo model on every dataset validates from only --model and
 * --dataset; the values are the recipes' (recipes/*.yaml read back here, not copied); flags and
 * recipe fields win; the filled fields are printed in one line and recorded. Then the issue's
 * command as a user types it (with --subset to keep it short): `topiary prune --method pmp --model
 * lenet_300_100 --dataset mnist --sparsity 0.9 --epochs 3`, without --batch-size or --lr.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { defaultPmpPhase, defaultRecipe, withDefaults } from '../../src/experiment/defaults.js';
import { MODEL_NAMES } from '../../src/models/registry.js';
import { dataRoot, repoRoot } from '../nn/util.js';

const DATASETS = ['mnist', 'fashion_mnist', 'cifar10', 'cifar100'];
const root = mkdtempSync(join(tmpdir(), 'topiary-defaults-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('every model on every dataset validates from --model and --dataset alone', () => {
  for (const model of MODEL_NAMES) {
    for (const dataset of DATASETS) {
      const lines: string[] = [];
      const c = validate(TrainConfig, withDefaults({ model, dataset }, undefined, (l) => lines.push(l)), `${model}/${dataset}`);
      const r = defaultRecipe(model, dataset)!;
      assert.equal(c.epochs, r.epochs, `${model}/${dataset}`);
      assert.equal(c.lr, r.lr);
      assert.equal(c.batchSize, r.batchSize);
      assert.equal(lines.length, 1);
      assert.match(lines[0], new RegExp(`^topiary: ${model} on ${dataset}, defaults from .*--epochs ${r.epochs} --batch-size ${r.batchSize} --optimizer sgd --lr ${r.lr}`));
      assert.deepEqual(c.defaults!.source, r.source);
      assert.ok(c.defaults!.fields.includes('epochs'));
    }
  }
});

test('the defaults are the recipes the project ran (read from recipes/)', () => {
  const yaml = (f: string) => parseYaml(readFileSync(join(repoRoot, 'recipes', f), 'utf8')) as Record<string, unknown>;
  for (const [model, dataset, file] of [['mlp', 'mnist', 'dense-mlp.yaml'], ['lenet_300_100', 'mnist', 'dense-lenet300.yaml'], ['lenet5', 'mnist', 'dense-lenet5.yaml'],
    ['resnet20', 'mnist', 'dense-resnet20.yaml'], ['vgg19', 'cifar10', 'pmp-cifar10-vgg19-98.yaml'], ['vgg_like', 'cifar10', 'pmp-cifar10-vgg-like-97.yaml'],
    ['resnet18', 'cifar10', 'pmp-cifar10-resnet18-729.yaml']] as const) {
    const y = yaml(file);
    const c = validate(TrainConfig, withDefaults({ model, dataset }, undefined, null));
    assert.equal(defaultRecipe(model, dataset)!.source, `recipes/${file}`);
    for (const k of ['epochs', 'batchSize', 'optimizer', 'lr', 'momentum', 'weightDecay', 'schedule', 'labelSmoothing'] as const) {
      if (y[k] !== undefined) assert.equal(c[k], y[k], `${file}: ${k}`);
    }
    const aug = (y.augment ?? {}) as Record<string, unknown>;
    assert.equal(c.augment.cropPadding, aug.cropPadding ?? 0, `${file}: cropPadding`);
    assert.equal(c.augment.flip, aug.flip ?? false, `${file}: flip`);
  }
  // He et al.'s ResNet-56 recipe (the dense: section of the HIER-MOEA CIFAR recipe).
  const dense = yaml('hier-moea-resnet56.yaml').dense as Record<string, unknown>;
  const c = validate(TrainConfig, withDefaults({ model: 'resnet56', dataset: 'cifar10' }, undefined, null));
  for (const k of ['epochs', 'lr', 'weightDecay', 'schedule', 'milestones', 'gamma'] as const) assert.deepEqual(c[k], dense[k], `resnet56: ${k}`);
});

test('flags and recipes win; only what is missing is filled and recorded', () => {
  const lines: string[] = [];
  const raw = { model: 'lenet_300_100', dataset: 'mnist', epochs: 3, lr: 0.1, augment: { rotation: 5 } };
  const c = validate(TrainConfig, withDefaults(raw, undefined, (l) => lines.push(l)));
  assert.equal(c.epochs, 3);
  assert.equal(c.lr, 0.1);
  assert.equal(c.batchSize, 128);
  assert.equal(c.augment.rotation, 5);
  assert.deepEqual(c.defaults!.fields, ['batchSize', 'optimizer', 'weightDecay', 'momentum', 'schedule']);
  assert.equal(lines[0], 'topiary: lenet_300_100 on mnist, defaults from recipes/dense-lenet300.yaml: --batch-size 128 --optimizer sgd ' +
    '--weight-decay 0.0005 --momentum 0.9 --schedule cosine (flags or --recipe override them)');
  // Nothing missing: nothing filled, nothing printed, no record.
  const full = { ...raw, batchSize: 64, optimizer: 'sgd', weightDecay: 0, momentum: 0, schedule: 'constant' };
  const none: string[] = [];
  assert.equal(withDefaults(full, undefined, (l) => none.push(l)), full);
  assert.equal(none.length, 0);
  assert.equal(validate(TrainConfig, full).defaults, undefined);
  // Another optimizer than the recipe's: PyTorch's lr and weight decay for it, no momentum.
  const adamw = validate(TrainConfig, withDefaults({ model: 'mlp', dataset: 'mnist', optimizer: 'adamw' }, undefined, null));
  assert.deepEqual([adamw.lr, adamw.weightDecay, adamw.momentum], [1e-3, 0.01, 0]);
  // Fewer epochs than He et al.'s 160: the milestones keep their place in the run.
  const short = validate(TrainConfig, withDefaults({ model: 'resnet20', dataset: 'cifar10', epochs: 16 }, undefined, null));
  assert.deepEqual(short.milestones, [8, 12]);
  // CIFAR augmentation fills around a given field; a recipe's flip: false stays.
  const noflip = validate(TrainConfig, withDefaults({ model: 'vgg19', dataset: 'cifar10', augment: { flip: false } }, undefined, null));
  assert.deepEqual([noflip.augment.cropPadding, noflip.augment.flip], [4, false]);
  // Unknown model or dataset: passed through, validation names the field.
  assert.throws(() => validate(TrainConfig, withDefaults({ model: 'resnet7', dataset: 'mnist' }, undefined, null)), /model: unknown model/);
  assert.throws(() => validate(TrainConfig, withDefaults({ model: 'mlp', dataset: 'imagenet' }, undefined, null)), /dataset/);
});

test('pmp: the default phase is 40% of the epochs (at least one); a given phase stays', () => {
  assert.deepEqual([1, 2, 3, 5, 10, 20, 200].map(defaultPmpPhase), [1, 1, 1, 2, 4, 8, 80]);
  const prune: Record<string, unknown> = { method: 'pmp', sparsity: 0.9 };
  const c = validate(TrainConfig, withDefaults({ model: 'lenet_300_100', dataset: 'mnist', epochs: 10 }, prune, null));
  assert.equal(prune.phase, 4);
  assert.ok(c.defaults!.fields.includes('prune.phase'));
  const given: Record<string, unknown> = { method: 'pmp', sparsity: 0.9, phase: 7 };
  withDefaults({ model: 'lenet_300_100', dataset: 'mnist', epochs: 10 }, given, null);
  assert.equal(given.phase, 7);
  const gmp: Record<string, unknown> = { method: 'gmp', sparsity: 0.9 };
  withDefaults({ model: 'lenet_300_100', dataset: 'mnist' }, gmp, null);
  assert.equal(gmp.phase, undefined);
});

const present = existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte.gz')) || existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte'));

test('the issue\'s command runs without --batch-size or --lr: one line of defaults, recorded in result.json', { skip: !present && `no MNIST under ${dataRoot}` }, () => {
  const out = join(root, 'pmp');
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/topiary.js'), 'prune', '--method', 'pmp', '--model', 'lenet_300_100', '--dataset', 'mnist',
    '--sparsity', '0.9', '--epochs', '3', '--subset', '2000', '--threads', '1', '--out', out], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: dataRoot }, timeout: 240_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.includes('defaults from'));
  assert.deepEqual(lines, ['topiary: lenet_300_100 on mnist, defaults from recipes/dense-lenet300.yaml: --batch-size 128 --optimizer sgd --lr 0.05 ' +
    '--weight-decay 0.0005 --momentum 0.9 --schedule cosine --phase 1 (flags or --recipe override them)']);
  assert.ok(r.stderr.indexOf('defaults from') < r.stderr.indexOf('epoch 1/3'), 'the defaults line comes first');
  const res = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { config: Record<string, unknown>; pruneOptions: Record<string, unknown>; achievedSparsity: number; testAccuracy: number };
  assert.deepEqual(res.config.defaults, { source: 'recipes/dense-lenet300.yaml', fields: ['batchSize', 'optimizer', 'lr', 'weightDecay', 'momentum', 'schedule', 'prune.phase'] });
  assert.deepEqual([res.config.batchSize, res.config.lr, res.config.momentum, res.config.weightDecay, res.config.schedule, res.config.epochs], [128, 0.05, 0.9, 5e-4, 'cosine', 3]);
  assert.equal(res.pruneOptions.phase, 1);
  assert.ok(Math.abs(res.achievedSparsity - 0.9) < 1e-3, `sparsity ${res.achievedSparsity}`);
  assert.ok(res.testAccuracy > 0.5, `test accuracy ${res.testAccuracy}`);
});
