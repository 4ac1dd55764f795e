/**
 * `topiary search --from model.onnx` (issue 12): a CNN trained in PyTorch (BatchNorm included),
 * exported to ONNX by the fixture script, searched on real MNIST. Its dense test accuracy in topiary
 * is PyTorch's, and a search with 2 worker threads (which run the imported graph, sent as JSON)
 * equals the same search in one thread, solution for solution, on the real data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validate } from '../../src/experiment/config.js';
import { runHierMoea } from '../../src/experiment/reproduce-hier-moea.js';
import { SearchConfig } from '../../src/prune/hier-moea/config.js';
import { memory } from '../../src/tensor/index.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const skip = !existsSync(join(dataDir, 'mnist', 'train-images-idx3-ubyte.gz')) && `real MNIST not found under ${dataDir} (set TOPIARY_DATA)`;
const onnx = join(repo, 'test/fixtures/onnx/mnist_trained.onnx');
const fixture = JSON.parse(readFileSync(join(repo, 'test/fixtures/onnx/mnist_trained.json'), 'utf8')) as { testAccuracy: number };

const tmp = mkdtempSync(join(tmpdir(), 'hier-moea-onnx-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const base = { from: onnx, dataset: 'mnist', pop: 6, phase1Gens: 3, phase2Gens: 2, valSize: 500, bnBatches: 2, bnBatchSize: 64, finetuneEpochs: 0, seed: 2 };

test('a search from an ONNX file: 2 worker threads give the one-thread search exactly, with the model\'s real accuracy', { skip }, async () => {
  const before = memory().tensors;
  const one = await runHierMoea(validate(SearchConfig, base), { out: join(tmp, 'w1'), dataDir });
  const two = await runHierMoea(validate(SearchConfig, { ...base, workers: 2 }), { out: join(tmp, 'w2'), dataDir });
  assert.equal(memory().tensors, before, 'no tensor leaks');
  // The imported network is PyTorch's: its test accuracy on the 10,000 MNIST test images is the fixture's.
  assert.ok(Math.abs(100 * one.denseTestAccuracy! - fixture.testAccuracy) < 0.05, `dense test accuracy ${100 * one.denseTestAccuracy!}% against PyTorch's ${fixture.testAccuracy}%`);
  assert.ok(one.denseValError < 0.06, `dense validation error ${one.denseValError}`);
  assert.ok(one.completed && two.completed);
  assert.equal(one.evaluations, 6 * 5);
  assert.ok(one.solutions.length >= 3, `${one.solutions.length} solutions`);
  assert.ok(one.solutions.some((s) => s.sparsity > 0.5 && s.valError < 0.2), 'a sparse solution that still classifies');
  assert.deepEqual(two.solutions, one.solutions);
  assert.deepEqual(two.reference, one.reference);
  assert.deepEqual(two.hypervolume, one.hypervolume);
  const r = JSON.parse(readFileSync(join(tmp, 'w2', 'result.json'), 'utf8'));
  assert.equal(r.model, 'onnx');
  assert.equal(r.from, onnx);
});

test('search --from model.onnx refuses --model and a missing --dataset, one line each', { skip }, () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(repo, 'bin', 'topiary.js'), 'search', '--from', onnx, '--out', join(tmp, 'bad'), ...args], { encoding: 'utf8' });
  const noData = cli();
  assert.notEqual(noData.status, 0);
  assert.match(noData.stderr, /dataset: --from .*mnist_trained\.onnx is an ONNX file, which names no dataset; give --dataset/);
  const model = cli('--dataset', 'mnist', '--model', 'lenet5');
  assert.notEqual(model.status, 0);
  assert.match(model.stderr, /model: --from .* is an ONNX file and searches the model it holds; leave --model out/);
  assert.ok(!existsSync(join(tmp, 'bad')), 'nothing written');
});
