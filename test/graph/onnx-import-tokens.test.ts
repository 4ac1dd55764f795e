/**
 * ONNX import of a model whose input is int64 token ids (issue 12): a tiny transformer with
 * nn.Embedding (a Gather on the input) and a learned position table, exported by PyTorch 1.13
 * (scripts/make-onnx-fixtures.py --only tokens). Its outputs equal PyTorch's and onnxruntime's, its
 * gradients PyTorch's (the embedding's rows included), its input stays int64 at any batch size,
 * it trains, and a float input or an id table computed from the input are refused by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { manualSeed } from '../../src/core/runtime.js';
import { importOnnx } from '../../src/graph/onnx-import.js';
import { SGD } from '../../src/optim/optimizer.js';
import { dispose, memory, noGrad, randn, tensor, tidy } from '../../src/tensor/index.js';
import { mseLoss } from '../../src/tensor/nn-ops.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'onnx');
interface Fixture {
  input: { shape: number[]; data: number[]; dtype: string }; output: { shape: number[]; data: number[] };
  lossWeight: number[]; grads: Record<string, number[]>;
}
const f = JSON.parse(readFileSync(join(DIR, 'tokens.json'), 'utf8')) as Fixture;
const ids = () => tensor(f.input.data, { shape: f.input.shape, dtype: 'int64' });
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

test('token ids: the imported transformer takes int64 ids, and its outputs equal PyTorch\'s and onnxruntime\'s (<= 1e-4)', async (t) => {
  assert.equal(f.input.dtype, 'int64');
  const before = memory().tensors;
  const gm = importOnnx(join(DIR, 'tokens.onnx')).eval();
  assert.equal(gm.graph.inputs[0].dtype, 'int64');
  assert.deepEqual(gm.graph.inputs[0].shape, ['N', 6]);
  assert.equal(gm.graph.find('embedding').length, 1, 'one embedding lookup (the Gather on the input)');
  const x = ids();
  const y = tidy(() => noGrad(() => gm.call(x))); // a scope, as in a training or evaluation step
  assert.deepEqual(y.shape, f.output.shape);
  const dTorch = maxDiff(y.dataSync(), f.output.data);
  const s = await ort.InferenceSession.create(readFileSync(join(DIR, 'tokens.onnx')));
  const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('int64', BigInt64Array.from(f.input.data, (v) => BigInt(v)), f.input.shape) });
  await s.release();
  const dOrt = maxDiff(y.dataSync(), r[s.outputNames[0]].data as Float32Array);
  // the batch stays symbolic: the second sequence alone gives its row
  const x1 = x.slice(0, 1, 2);
  const y1 = tidy(() => noGrad(() => gm.call(x1)));
  const dRow = tidy(() => maxDiff(y1.dataSync(), y.slice(0, 1, 2).dataSync()));
  t.diagnostic(`PyTorch ${dTorch.toExponential(2)}, onnxruntime ${dOrt.toExponential(2)}, batch 1 vs 3 ${dRow.toExponential(2)}`);
  assert.ok(dTorch <= 1e-4, `vs PyTorch ${dTorch}`);
  assert.ok(dOrt <= 1e-4, `vs onnxruntime ${dOrt}`);
  assert.ok(dRow <= 1e-5, `batch 1 vs 3 ${dRow}`);
  dispose([x, y, x1, y1]);
  gm.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaked');
});

test('token ids: gradients equal PyTorch\'s (relative 1e-3), the embedding table\'s rows included', () => {
  const gm = importOnnx(join(DIR, 'tokens.onnx')).eval();
  const params = new Map(gm.namedParameters());
  assert.ok(params.has('embed.weight') && params.has('pos'), `parameters: ${[...params.keys()].join(', ')}`);
  assert.ok('embed.weight' in f.grads, 'the fixture holds the embedding gradient');
  const x = ids();
  const w = tensor(Float32Array.from(f.lossWeight), { shape: f.output.shape });
  tidy(() => gm.call(x).mul(w).sum().backward());
  let checked = 0;
  for (const [k, g] of Object.entries(f.grads)) {
    if (!params.has(k)) continue; // an initializer PyTorch's exporter renamed
    const got = params.get(k)!.grad!.dataSync();
    const scale = Math.max(...g.map(Math.abs), 1e-6);
    const d = maxDiff(got, g);
    assert.ok(d <= 1e-3 * scale + 1e-6, `${k}: gradient max diff ${d} (scale ${scale})`);
    checked++;
  }
  assert.ok(checked >= 4, `${checked} gradients checked`);
  // rows of ids that do not occur get no gradient
  const used = new Set(f.input.data);
  const eg = params.get('embed.weight')!.grad!.reshape(20, 16).abs().sum(1).dataSync();
  eg.forEach((v, row) => assert.equal(v === 0, !used.has(row), `row ${row}`));
  dispose([x, w]);
  gm.dispose();
});

test('token ids: an imported token model trains (five SGD steps lower the loss)', () => {
  manualSeed(1);
  const gm = importOnnx(join(DIR, 'tokens.onnx'));
  const x = tensor(Array.from({ length: 8 * 6 }, (_, i) => (i * 7) % 20), { shape: [8, 6], dtype: 'int64' });
  const target = randn([8, 10]);
  const opt = new SGD(gm.parameters(), { lr: 0.1 });
  const losses: number[] = [];
  for (let i = 0; i < 6; i++) {
    tidy(() => {
      opt.zeroGrad();
      const loss = mseLoss(gm.call(x), target);
      losses.push(loss.item() as number);
      loss.backward();
      opt.step();
    });
  }
  assert.ok(losses[5] < losses[0], `loss ${losses[0]} -> ${losses[5]}`);
  opt.dispose?.();
  dispose([x, target]);
  gm.dispose();
});

test('token ids: a float input to the id model is refused by the graph, naming the input', () => {
  const gm = importOnnx(join(DIR, 'tokens.onnx')).eval();
  const x = randn([2, 6]);
  assert.throws(() => noGrad(() => gm.call(x)), /embedding|int|Long|index/i);
  x.dispose();
  gm.dispose();
});
