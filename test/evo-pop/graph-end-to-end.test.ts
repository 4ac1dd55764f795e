/**
 * `topiary evo` over channel groups, end to end on real MNIST with a tiny budget:
 *  - `--from mnist_trained.onnx` (a CNN trained one epoch in PyTorch, 97.43% there): imported, one
 *    short epoch under the replicator dynamics, 30% of its 44 channel populations removed physically;
 *    the saved smaller model reloads with the reported accuracy and exports to ONNX, which
 *    onnxruntime runs with the same outputs;
 *  - `--model resnet20 --populations channels`: 400 populations in 12 layers, trained from scratch
 *    on 4,000 images, 30% removed physically.
 * The reported population counts are checked against the graphs' groups.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { setupData } from '../../src/experiment/data-setup.js';
import { loadGraphModule } from '../../src/graph/run.js';
import { noGrad, tidy } from '../../src/tensor/index.js';
import { evaluate } from '../../src/train/evaluate.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA ?? '/work/shared/datasets';
const skip = !existsSync(join(dataDir, 'mnist', 'train-images-idx3-ubyte.gz')) && `real MNIST not found under ${dataDir} (set TOPIARY_DATA)`;

interface Summary { denseAccuracy: number; populations: Record<string, number>; extinct: Record<string, number>; rows: { criterion: string; fraction: number; total: number; removed: number; kept: number[]; accuracy: number; params: number }[]; denseParams: number }

function topiary(args: string[]): string {
  return execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TOPIARY_DATA: dataDir, TOPIARY_THREADS: '1' },
  });
}

test('topiary evo --from model.onnx: the imported CNN evolves, 30% of its channel groups leave physically, the result exports', { skip }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'evo-onnx-'));
  try {
    const s = JSON.parse(topiary(['evo', '--from', join(repo, 'test/fixtures/onnx/mnist_trained.onnx'), '--dataset', 'mnist', '--epochs', '1', '--subset', '1000',
      '--batch-size', '64', '--lr', '0.01', '--prune-at', '0.3', '--criteria', 'mass,random', '--threads', '1', '--out', out, '--json'])) as Summary;
    // conv1 (4 filters, BatchNorm), conv2 (8), fc1 (32): the classifier's 10 outputs are no population
    assert.deepEqual(s.populations, { 'channels.conv1': 4, 'channels.conv2': 8, 'channels.fc1': 32 });
    assert.ok(s.denseAccuracy > 0.95, `the imported trained CNN after one short epoch: ${s.denseAccuracy} (PyTorch: 0.9743 before it)`);
    for (const r of s.rows) {
      assert.equal(r.total, 44);
      assert.equal(r.removed, Math.round(0.3 * 44));
      assert.equal(r.kept.reduce((a, b) => a + b, 0), 44 - 13);
      assert.ok(r.params < s.denseParams, `${r.criterion}: ${r.params} of ${s.denseParams} parameters`);
      assert.ok(r.accuracy > 0.2, `${r.criterion}: ${r.accuracy}`);
    }
    // the saved smaller model is a plain graph: it reloads with the reported accuracy
    const dir = join(out, 'pruned_mass_0.3');
    const gm = loadGraphModule(join(dir, 'model.shrunk'));
    const row = s.rows.find((r) => r.criterion === 'mass')!;
    assert.equal(gm.numParameters(), row.params);
    const data = await setupData(validate(TrainConfig, { model: 'onnx', dataset: 'mnist', subset: 1000, epochs: 1, batchSize: 64, lr: 0.01 }), { dataDir });
    assert.equal(evaluate(gm, data.testLoader.epoch(0)).accuracy, row.accuracy);
    // and exports to ONNX, which onnxruntime runs with the same outputs
    topiary(['export', '--from', dir, '--out', join(out, 'small.onnx')]);
    const b = data.testLoader.epoch(0)[Symbol.iterator]().next().value!;
    const x = tidy(() => b.x.slice(0, 0, 16).contiguous());
    const ours = noGrad(() => gm.eval().call(x)).dataSync();
    const sess = await ort.InferenceSession.create(readFileSync(join(out, 'small.onnx')));
    const r = await sess.run({ [sess.inputNames[0]]: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) });
    await sess.release();
    const theirs = r[sess.outputNames[0]].data as Float32Array;
    assert.ok(ours.every((v, i) => Math.abs(v - theirs[i]) <= 1e-4), 'onnxruntime gives the shrunk model\'s outputs');
    x.dispose(); b.x.dispose(); b.y.dispose();
    gm.dispose();
    data.dispose();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('topiary evo --model resnet20 --populations channels: 400 channel populations in 12 layers, 30% removed physically', { skip }, () => {
  const out = mkdtempSync(join(tmpdir(), 'evo-resnet20-'));
  try {
    const s = JSON.parse(topiary(['evo', '--model', 'resnet20', '--dataset', 'mnist', '--populations', 'channels', '--epochs', '1', '--subset', '4000',
      '--batch-size', '32', '--lr', '0.05', '--prune-at', '0.3', '--criteria', 'mass', '--threads', '1', '--out', out, '--json'])) as Summary;
    const counts = Object.values(s.populations);
    assert.equal(counts.length, 12);
    assert.equal(counts.reduce((a, b) => a + b, 0), 400, 'nine conv1 layers (3 x 16 + 3 x 32 + 3 x 64) and the three stages\' streams (16 + 16 + 32)');
    assert.equal(s.populations['channels.stem_0'], 16);
    // a tiny budget (125 steps from scratch): far above chance (10%), far below a trained ResNet-20
    assert.ok(s.denseAccuracy > 0.35, `dense test accuracy ${s.denseAccuracy}`);
    const r = s.rows[0];
    assert.equal(r.removed, 120);
    assert.equal(r.kept.length, 12);
    assert.ok(r.kept.every((k) => k >= 1));
    assert.ok(r.params < 0.75 * s.denseParams, `${r.params} of ${s.denseParams} parameters`);
    assert.ok(r.accuracy > 0.12, `after removing 30% without fine-tuning: ${r.accuracy}`);
    assert.ok(existsSync(join(out, 'pruned_mass_0.3', 'model.shrunk.graph.json')));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
