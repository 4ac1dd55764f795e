/**
 * `topiary export`: a run folder holding a masked model and its shrunk model exports the smaller
 * (and says so), --pick dense takes the masked one, both give the masked model's outputs in
 * onnxruntime; a model file exports by its metadata; a missing output folder writes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/index.js';
import { noGrad, ones, randn, saveSafetensors, tidy, type Tensor } from '../../src/tensor/index.js';
import { writeShrunk } from '../../src/prune/shrink-run.js';
import { exportRun } from '../../src/cli/export.js';
import { buildMlp } from '../../src/models/mlp.js';
import { describe, savePruned } from '../../src/prune/evo-pop/physical.js';
import { mkdirSync } from 'node:fs';
import { repoRoot } from '../nn/util.js';

const MNIST = [1, 28, 28];

async function ortOut(file: string, x: Tensor): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(readFileSync(file));
  const r = await s.run({ input: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) });
  await s.release();
  return r.output.data as Float32Array;
}
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

test('a structured run folder: the shrunk model is exported, or the masked one with --pick dense', async () => {
  manualSeed(6);
  const dir = mkdtempSync(join(tmpdir(), 'topiary-export-'));
  try {
    const m = createModel('lenet5', { inputShape: MNIST, numClasses: 10 });
    // Remove 12 of conv1's 20 filters (weights and biases), as a structured prune leaves them.
    const mask = ones([20, 1, 5, 5]);
    noGrad(() => {
      for (let i = 0; i < 20; i += 2) mask.narrow(0, i, 1).zero_();
      mask.narrow(0, 1, 1).zero_(); mask.narrow(0, 3, 1).zero_();
      const p = Object.fromEntries(m.namedParameters());
      p['0.weight'].mul_(mask);
      p['0.bias'].mul_(mask.flatten(1).sum(1).gt(0).float());
    });
    const config = { model: 'lenet5', dataset: 'mnist' };
    saveSafetensors(join(dir, 'model.safetensors'), m.stateDict(), { model: 'lenet5', dataset: 'mnist', config: JSON.stringify(config) });
    saveSafetensors(join(dir, 'masks.safetensors'), { '0.weight': mask }, { method: 'magnitude' });
    writeFileSync(join(dir, 'result.json'), JSON.stringify({ kind: 'prune_magnitude', config }));
    writeShrunk(m, { '0.weight': mask }, MNIST, dir);

    const small = exportRun({ from: dir, out: join(dir, 'small.onnx') });
    assert.equal(small.picked, 'shrunk');
    assert.equal(small.params, 431_080 - 12 * 26 - 12 * 25 * 50);
    assert.deepEqual(small.others, [{ kind: 'masked', params: 431_080 }]);
    const dense = exportRun({ from: dir, out: join(dir, 'dense.onnx'), pick: 'dense' });
    assert.equal(dense.picked, 'masked');
    m.eval();
    const x = randn([3, ...MNIST]);
    const want = tidy(() => noGrad(() => m.call(x)).dataSync());
    assert.ok(maxDiff(await ortOut(join(dir, 'small.onnx'), x), want) <= 1e-4);
    assert.ok(maxDiff(await ortOut(join(dir, 'dense.onnx'), x), want) <= 1e-4);
    assert.ok(readFileSync(join(dir, 'small.onnx')).byteLength < readFileSync(join(dir, 'dense.onnx')).byteLength);

    // The command line: one line naming what was exported; a missing folder is refused and writes nothing.
    const bin = join(repoRoot, 'bin', 'topiary.js');
    const outLine = execFileSync(bin, ['export', '--from', dir, '--format', 'onnx', '--out', join(dir, 'cli.onnx')], { encoding: 'utf8' });
    assert.match(outLine, /^exported the shrunk lenet5 \(415,768 parameters, .*model\.shrunk\.safetensors\) \(the run also holds: masked, 431,080 parameters\) to .*cli\.onnx: ONNX opset 17, input \[N, 1, 28, 28\]/);
    const before = readdirSync(dir).sort();
    let err = '';
    try { execFileSync(bin, ['export', '--from', dir, '--out', join(dir, 'no', 'm.onnx')], { encoding: 'utf8', stdio: 'pipe' }); } catch (e) { err = String((e as { stderr: string }).stderr); }
    assert.match(err, /^topiary: output folder '.*no' does not exist/);
    assert.deepEqual(readdirSync(dir).sort(), before);
    // A model file exports by its own metadata.
    const f = exportRun({ from: join(dir, 'model.safetensors'), out: join(dir, 'file.onnx') });
    assert.equal(f.model, 'lenet5');
    assert.ok(existsSync(join(dir, 'file.onnx')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an EVO-POP physically pruned folder exports its small Sequential; the run below it gives the input shape', async () => {
  manualSeed(8);
  const run = mkdtempSync(join(tmpdir(), 'topiary-export-evo-'));
  try {
    writeFileSync(join(run, 'result.json'), JSON.stringify({ kind: 'evo', config: { model: 'mlp', dataset: 'mnist' } }));
    const seq = buildMlp(784, [64, 32], 10);
    const dir = join(run, 'pruned', 'magnitude-0.5');
    mkdirSync(dir, { recursive: true });
    savePruned(dir, seq, { format: 'topiary-sequential/1', model: 'mlp', widths: [64, 32], kept: [64, 32], layers: seq.children().map(describe) });
    const r = exportRun({ from: dir, out: join(run, 'evo.onnx') });
    assert.equal(r.picked, 'physically pruned');
    assert.equal(r.params, 784 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10);
    assert.deepEqual(r.inputShape, MNIST);
    seq.eval();
    const x = randn([2, ...MNIST]);
    const want = tidy(() => noGrad(() => seq.call(x)).dataSync());
    assert.ok(maxDiff(await ortOut(join(run, 'evo.onnx'), x), want) <= 1e-4);
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});
