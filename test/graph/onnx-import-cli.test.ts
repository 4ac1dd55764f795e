/**
 * `topiary prune --from model.onnx --dataset mnist`: a CNN exported by PyTorch
 * (test/fixtures/onnx/mnist_cnn.onnx) is imported, pruned structurally while fine-tuning, shrunk, and
 * `topiary export` writes both the shrunk and the masked model back to ONNX; onnxruntime's outputs
 * equal topiary's. A file that does not fit the dataset, or --model beside an ONNX --from, is one
 * line and writes nothing. A CNN trained in PyTorch keeps its MNIST test accuracy in topiary and prunes
 * to 90% with PMP; `topiary search --from model.onnx` is refused (not supported yet).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { importOnnx } from '../../src/graph/onnx-import.js';
import { loadGraphModule } from '../../src/graph/run.js';
import { loadSafetensors, noGrad, randn, dispose, type Tensor } from '../../src/tensor/index.js';
import { loadDataset } from '../../src/data/dataset.js';
import { DataLoader } from '../../src/data/loader.js';
import { dataRoot, repoRoot } from '../nn/util.js';

const bin = join(repoRoot, 'bin', 'topiary.js');
const fixture = join(repoRoot, 'test', 'fixtures', 'onnx', 'mnist_cnn.onnx');
const env = { ...process.env, TOPIARY_DATA: dataRoot };

async function ortOut(file: string, x: Tensor): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(readFileSync(file));
  const r = await s.run({ input: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) });
  await s.release();
  return r.output.data as Float32Array;
}
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

test('prune --from model.onnx (structured, one short epoch), then export: onnxruntime runs the shrunk and the masked model', { skip: !existsSync(join(dataRoot, 'mnist')) && 'no MNIST' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'topiary-onnx-cli-'));
  try {
    const out = join(dir, 'run');
    const line = execFileSync(process.execPath, [bin, 'prune', '--method', 'magnitude', '--from', fixture, '--dataset', 'mnist', '--sparsity', '0.5',
      '--granularity', 'structured', '--epochs', '1', '--subset', '256', '--out', out], { encoding: 'utf8', env, stdio: 'pipe' });
    assert.match(line, /magnitude onnx on mnist: sparsity/);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    assert.equal(result.config.model, 'onnx');
    assert.equal(result.pruneOptions.from, fixture);
    // The run's weights are the imported model's, by PyTorch's names.
    const { tensors } = loadSafetensors(join(out, 'model.safetensors'));
    assert.deepEqual(Object.keys(tensors).filter((k) => k.endsWith('weight')).sort(), ['bn1.weight', 'conv1.weight', 'conv2.weight', 'fc1.weight', 'fc2.weight']);
    dispose(Object.values(tensors));

    const small = execFileSync(process.execPath, [bin, 'export', '--from', out, '--out', join(dir, 'small.onnx')], { encoding: 'utf8', env, stdio: 'pipe' });
    assert.match(small, /exported the shrunk onnx/);
    const dense = execFileSync(process.execPath, [bin, 'export', '--from', out, '--out', join(dir, 'dense.onnx'), '--pick', 'dense'], { encoding: 'utf8', env, stdio: 'pipe' });
    assert.match(dense, /exported the masked onnx/);

    const x = randn([4, 1, 28, 28]);
    const shrunk = loadGraphModule(join(out, 'model.shrunk')).eval();
    const masked = importOnnx(fixture).eval();
    const st = loadSafetensors(join(out, 'model.safetensors')).tensors;
    masked.loadStateDict(st);
    dispose(Object.values(st));
    const yS = noGrad(() => shrunk.call(x)).dataSync(), yM = noGrad(() => masked.call(x)).dataSync();
    const dS = maxDiff(yS, await ortOut(join(dir, 'small.onnx'), x)), dM = maxDiff(yM, await ortOut(join(dir, 'dense.onnx'), x));
    const count = (m: { namedParameters(): [string, Tensor][] }) => m.namedParameters().reduce((s, [, p]) => s + p.numel, 0);
    t.diagnostic(`shrunk ${count(shrunk)} of ${count(masked)} parameters; onnxruntime vs topiary: shrunk ${dS.toExponential(2)}, masked ${dM.toExponential(2)}, shrunk vs masked ${maxDiff(yS, yM).toExponential(2)}`);
    assert.ok(count(shrunk) < count(masked));
    assert.ok(dS <= 1e-5 && dM <= 1e-5 && maxDiff(yS, yM) <= 1e-4, `${dS} ${dM} ${maxDiff(yS, yM)}`);
    x.dispose(); shrunk.dispose(); masked.dispose();
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a CNN trained one epoch in PyTorch: its MNIST test accuracy in topiary equals PyTorch\'s (<= 0.05 points); PMP prunes it to 90% in 2 epochs and exports it', { skip: !existsSync(join(dataRoot, 'mnist')) && 'no MNIST' }, async (t) => {
  const trained = join(repoRoot, 'test', 'fixtures', 'onnx', 'mnist_trained.onnx');
  const want = JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', 'onnx', 'mnist_trained.json'), 'utf8')) as { testAccuracy: number; predictions: number[] };
  const gm = importOnnx(trained).eval();
  const testSet = await loadDataset('mnist', { dataDir: dataRoot, download: false, split: 'test' });
  let correct = 0, agree = 0, n = 0;
  for (const b of new DataLoader(testSet, { batchSize: 1000 }).epoch(0)) {
    const labels = b.y.dataSync(), pred = noGrad(() => gm.call(b.x).argmax(1)).dataSync();
    for (let i = 0; i < labels.length; i++) { if (pred[i] === labels[i]) correct++; if (pred[i] === want.predictions[n + i]) agree++; }
    n += labels.length;
    b.x.dispose(); b.y.dispose();
  }
  testSet.dispose(); gm.dispose();
  const acc = (100 * correct) / n;
  t.diagnostic(`test accuracy: topiary ${acc.toFixed(2)}%, PyTorch ${want.testAccuracy.toFixed(2)}%; ${n - agree} of ${n} predictions differ`);
  assert.equal(n, 10000);
  assert.ok(Math.abs(acc - want.testAccuracy) <= 0.05, `topiary ${acc}%, PyTorch ${want.testAccuracy}%`);

  const dir = mkdtempSync(join(tmpdir(), 'topiary-onnx-pmp-'));
  try {
    const out = join(dir, 'run');
    execFileSync(process.execPath, [bin, 'prune', '--method', 'pmp', '--from', trained, '--dataset', 'mnist', '--sparsity', '0.9',
      '--epochs', '2', '--subset', '10000', '--out', out], { encoding: 'utf8', env, stdio: 'pipe' });
    const r = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    t.diagnostic(`pmp 90%: sparsity ${(100 * r.achievedSparsity).toFixed(2)}%, test accuracy ${(100 * r.testAccuracy).toFixed(2)}%`);
    assert.ok(Math.abs(r.achievedSparsity - 0.9) < 0.005, `sparsity ${r.achievedSparsity}`);
    assert.ok(r.testAccuracy > 0.85, `test accuracy ${r.testAccuracy}`);
    execFileSync(process.execPath, [bin, 'export', '--from', out, '--out', join(dir, 'pmp.onnx')], { encoding: 'utf8', env, stdio: 'pipe' });
    const m = importOnnx(trained).eval();
    const st = loadSafetensors(join(out, 'model.safetensors')).tensors;
    m.loadStateDict(st);
    dispose(Object.values(st));
    const x = randn([4, 1, 28, 28]);
    const d = maxDiff(noGrad(() => m.call(x)).dataSync(), await ortOut(join(dir, 'pmp.onnx'), x));
    assert.ok(d <= 1e-5, `${d}`);
    x.dispose(); m.dispose();
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('prune --from model.onnx (and evo --from) refuses a file that does not fit the dataset, and --model beside it, writing nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'topiary-onnx-cli-'));
  try {
    const run = (args: string[]) => {
      try {
        execFileSync(process.execPath, [bin, 'prune', '--method', 'magnitude', '--dataset', 'mnist', '--sparsity', '0.5', '--out', join(dir, 'r'), ...args], { encoding: 'utf8', env, stdio: 'pipe' });
      } catch (e) {
        return { code: (e as { status: number }).status, err: String((e as { stderr: string }).stderr) };
      }
      return { code: 0, err: '' };
    };
    const a = run(['--from', join(repoRoot, 'test', 'fixtures', 'onnx', 'cnn_bn.onnx')]);
    assert.notEqual(a.code, 0);
    assert.match(a.err, /input 'input' has shape \[N, 3, 16, 16\], the dataset 'mnist' has examples of shape \[1,28,28\]/);
    const b = run(['--from', fixture, '--model', 'lenet5']);
    assert.notEqual(b.code, 0);
    assert.match(b.err, /leave --model out/);
    const c = run(['--from', join(dir, 'missing.onnx')]);
    assert.notEqual(c.code, 0);
    assert.match(c.err, /missing.onnx does not exist/);
    // evo --from: the same checks, before any data is read
    for (const [args, why] of [
      [['--from', fixture, '--model', 'lenet5'], /model: --from .* leave --model out/],
      [['--from', join(repoRoot, 'test', 'fixtures', 'onnx', 'cnn_bn.onnx'), '--dataset', 'mnist'], /the dataset 'mnist' has examples of shape \[1,28,28\]/],
      [['--from', join(dir, 'model.safetensors')], /from: evo starts from an ONNX file/],
      [['--from', fixture, '--populations', 'neurons'], /populations: .*its populations are its channel groups/],
    ] as const) {
      let d = { code: 0, err: '' };
      try {
        execFileSync(process.execPath, [bin, 'evo', ...args, '--out', join(dir, 'r')], { encoding: 'utf8', env, stdio: 'pipe' });
      } catch (e) { d = { code: (e as { status: number }).status, err: String((e as { stderr: string }).stderr) }; }
      assert.notEqual(d.code, 0, args.join(' '));
      assert.match(d.err, why, args.join(' '));
      assert.equal(d.err.trim().split('\n').length, 2, `one line and the --verbose hint: ${d.err}`);
    }
    assert.ok(!existsSync(join(dir, 'r')), 'nothing written');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
