/**
 * ONNX export checked by a real runtime (onnxruntime-node): every zoo model's outputs in
 * onnxruntime equal topiary's (max abs difference <= 1e-4) at two batch sizes (the batch is
 * dynamic); the file's structure (opset, symbolic batch, initializer names = parameter names);
 * masked and GraphModule models; a trained MNIST model's test accuracy is the same in both; bad
 * input (missing folder, op without ONNX mapping, untraceable model) writes nothing and keeps a
 * good file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { fromBinary } from '@bufbuild/protobuf';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/index.js';
import { AdaptiveAvgPool2d, BatchNorm, Conv2d, Flatten, Linear, Module, Sequential } from '../../src/nn/index.js';
import { noGrad, randn, tidy, type Tensor } from '../../src/tensor/index.js';
import { MaskSet } from '../../src/prune/masks.js';
import { SGD } from '../../src/optim/optimizer.js';
import { loadDataset } from '../../src/data/dataset.js';
import { DataLoader } from '../../src/data/loader.js';
import { crossEntropy } from '../../src/tensor/nn-ops.js';
import { encodeOnnx, exportOnnx, OnnxExportError } from '../../src/graph/onnx-export.js';
import { ModelProtoSchema, type ValueInfoProto } from '../../src/graph/proto/onnx_pb.js';
import { GraphModule } from '../../src/graph/run.js';
import { TraceError } from '../../src/graph/trace.js';
import { shrink } from '../../src/graph/shrink.js';
import { PruneTarget } from '../../src/prune/target.js';
import { random } from '../../src/prune/criteria.js';
import { pruneTo } from '../../src/prune/step.js';
import { dispose } from '../../src/tensor/index.js';
import { dataRoot } from '../nn/util.js';

const MNIST = [1, 28, 28], CIFAR = [3, 32, 32];
const ZOO: [string, number[]][] = [
  ['mlp', MNIST], ['lenet_300_100', MNIST], ['lenet5', MNIST], ['vgg_like', CIFAR], ['vgg19', CIFAR], ['resnet18', CIFAR],
  ['resnet20', CIFAR], ['resnet32', CIFAR], ['resnet56', CIFAR], ['resnet110', CIFAR], ['vit_tiny', MNIST],
];

/**
 * BatchNorm running statistics from one training-mode pass (momentum 1) over random inputs, and
 * affine weights away from 1 and 0: activations stay O(1) through 110 layers, as in a trained
 * model, so an absolute tolerance means something.
 */
function calibrate(m: Module, shape: number[]): void {
  const bns = m.modules().filter((x): x is BatchNorm => x instanceof BatchNorm);
  noGrad(() => {
    for (const bn of bns) {
      (bn as { momentum: number }).momentum = 1;
      bn.weight?.copy_(randn(bn.weight.shape).mul(0.2).add(1));
      bn.bias?.copy_(randn(bn.bias.shape).mul(0.1));
    }
    m.train();
    tidy(() => { m.call(randn([8, ...shape])); });
    for (const bn of bns) (bn as { momentum: number }).momentum = 0.1;
  });
  m.eval();
}

async function compare(m: Module, bytes: Uint8Array, shape: number[], batches = [1, 3]): Promise<number> {
  const sess = await ort.InferenceSession.create(bytes);
  let worst = 0;
  for (const b of batches) {
    const x = randn([b, ...shape]);
    const want = tidy(() => noGrad(() => m.call(x)).dataSync());
    const r = await sess.run({ input: new ort.Tensor('float32', x.toTypedArray() as Float32Array, [b, ...shape]) });
    assert.deepEqual(r.output.dims, [b, want.length / b]);
    const got = r.output.data as Float32Array;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - got[i]));
    x.dispose();
  }
  await sess.release();
  return worst;
}

for (const [name, shape] of ZOO) {
  test(`${name}: onnxruntime's outputs equal topiary's (max abs diff <= 1e-4), batch 1 and 3`, async (t) => {
    manualSeed(3);
    const m = createModel(name, { inputShape: shape, numClasses: 10 });
    calibrate(m, shape);
    const bytes = encodeOnnx(m, { inputShape: shape, opset: 17 });
    const diff = await compare(m, bytes, shape);
    assert.ok(diff <= 1e-4, `max abs diff ${diff}`);
    t.diagnostic(`max abs diff ${diff.toExponential(2)}`);
    m.dispose();
  });
}

test('the file: opset 17, batch dimension N, initializers named as the parameters and buffers, eval BatchNorm', () => {
  const m = createModel('resnet20', { inputShape: CIFAR, numClasses: 10 });
  const p = fromBinary(ModelProtoSchema, encodeOnnx(m, { inputShape: CIFAR }));
  assert.equal(p.opsetImport[0].version, 17n);
  assert.equal(p.irVersion, 8n);
  const dims = (v: ValueInfoProto) => (v.type!.value.value as { shape: { dim: { value: { value: unknown } }[] } }).shape.dim.map((d) => d.value.value);
  assert.deepEqual(dims(p.graph!.input[0]), ['N', 3n, 32n, 32n]);
  assert.deepEqual(dims(p.graph!.output[0]), ['N', 10n]);
  const used = new Set(m.namedParameters().map(([n]) => n));
  for (const [n] of m.namedBuffers()) if (!n.endsWith('num_batches_tracked')) used.add(n);
  const names = new Set(p.graph!.initializer.map((t) => t.name));
  for (const n of used) assert.ok(names.has(n), `initializer ${n}`);
  const ops = p.graph!.node.map((n) => n.opType);
  assert.equal(ops.filter((o) => o === 'BatchNormalization').length, 19);
  assert.equal(ops.filter((o) => o === 'Conv').length, 19);
  assert.equal(ops.filter((o) => o === 'Pad').length, 2);
  assert.ok(!ops.includes('Dropout'));
});

test('masked and GraphModule models export and run the same', async () => {
  manualSeed(4);
  const m = createModel('lenet5', { inputShape: MNIST, numClasses: 10 });
  const masks = new MaskSet(m);
  // Keep the largest 10% of each weight by magnitude.
  noGrad(() => {
    for (const [n, p] of m.namedParameters()) {
      if (p.ndim < 2) continue;
      const a = p.abs().flatten();
      const k = Math.ceil(a.numel * 0.9);
      const thr = a.kthvalue(k).values.item();
      masks.set(n, p.abs().gt(thr));
    }
  });
  masks.applyToWeights();
  m.eval();
  const bytes = encodeOnnx(m, { inputShape: MNIST });
  assert.ok((await compare(m, bytes, MNIST)) <= 1e-4);
  const p = fromBinary(ModelProtoSchema, bytes);
  const w = p.graph!.initializer.find((t) => t.name === '5.weight')!;
  const vals = new Float32Array(w.rawData.slice().buffer);
  const zeros = vals.filter((v) => v === 0).length / vals.length;
  assert.ok(zeros >= 0.89 && zeros <= 0.91, `zeros ${zeros}`);
  const gm = GraphModule.fromModule(m, MNIST).eval();
  assert.ok((await compare(gm, encodeOnnx(gm, { inputShape: MNIST }), MNIST)) <= 1e-4);
});

for (const [name, shape] of [['resnet20', CIFAR], ['resnet18', [3, 16, 16]], ['vgg_like', CIFAR]] as const) {
  test(`shrunk ${name} (half its channel groups removed): onnxruntime gives the masked model's outputs`, async (t) => {
    manualSeed(7);
    const m = createModel(name, { inputShape: [...shape], numClasses: 10 });
    calibrate(m, [...shape]);
    const target = new PruneTarget(m, { granularity: 'structured', inputShape: [...shape] });
    const scores = random.score({ model: m, target }, {});
    pruneTo(target, scores, { sparsity: 0.5, scope: 'layer', groupReduce: 'first' });
    dispose([...scores.values()]);
    target.apply();
    m.eval();
    const small = shrink(m, target.masks, { inputShape: [...shape] }).eval();
    const count = (x: Module) => x.namedParameters().reduce((s, [, p]) => s + p.numel, 0);
    assert.ok(count(small) < 0.6 * count(m), `${count(small)} of ${count(m)} parameters`);
    const diff = await compare(m, encodeOnnx(small, { inputShape: [...shape] }), [...shape]);
    t.diagnostic(`${count(small)} of ${count(m)} parameters, max abs diff ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-4, `max abs diff ${diff}`);
    small.dispose(); target.dispose(); m.dispose();
  });
}

test('a trained MNIST model: test accuracy in onnxruntime equals topiary\'s', { skip: !existsSync(join(dataRoot, 'mnist')) && 'no MNIST' }, async (t) => {
  manualSeed(5);
  const opts = { dataDir: dataRoot, download: false } as const;
  const trainSet = await loadDataset('mnist', { ...opts, split: 'train', subset: 20000 });
  const testSet = await loadDataset('mnist', { ...opts, split: 'test' });
  const m = createModel('lenet_300_100', { inputShape: MNIST, numClasses: 10 });
  const opt = new SGD(m.namedParameters(), { lr: 0.1, momentum: 0.9 });
  const loader = new DataLoader(trainSet, { batchSize: 64, shuffle: true, seed: 1 });
  let steps = 0;
  for (const b of loader.epoch(0)) {
    tidy(() => {
      opt.zeroGrad();
      crossEntropy(m.call(b.x), b.y).backward();
      opt.step();
    });
    b.x.dispose(); b.y.dispose();
    if (++steps === 300) break;
  }
  m.eval();
  const sess = await ort.InferenceSession.create(encodeOnnx(m, { inputShape: MNIST }));
  let ours = 0, theirs = 0, n = 0;
  for (const b of new DataLoader(testSet, { batchSize: 1000 }).epoch(0)) {
    const labels = b.y.dataSync();
    const mine = tidy(() => noGrad(() => m.call(b.x).argmax(1).dataSync()));
    const r = await sess.run({ input: new ort.Tensor('float32', b.x.toTypedArray() as Float32Array, b.x.shape) });
    const logits = r.output.data as Float32Array;
    for (let i = 0; i < labels.length; i++) {
      let best = 0;
      for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
      if (best === labels[i]) theirs++;
      if (mine[i] === labels[i]) ours++;
    }
    n += labels.length;
    b.x.dispose(); b.y.dispose();
  }
  await sess.release();
  assert.equal(n, 10000);
  const a = (100 * ours) / n, b = (100 * theirs) / n;
  assert.ok(a > 88, `trained: ${a}%`);
  t.diagnostic(`test accuracy: topiary ${a}%, onnxruntime ${b}%`);
  assert.ok(Math.abs(a - b) <= 0.01, `topiary ${a}%, onnxruntime ${b}%`);
  trainSet.dispose(); testSet.dispose();
});

test('bad input: a missing folder, an op without an ONNX mapping, an untraceable model: nothing written, a good file kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'topiary-onnx-'));
  try {
    const m = createModel('lenet_300_100', { inputShape: MNIST, numClasses: 10 });
    assert.throws(() => exportOnnx(m, { inputShape: MNIST, out: join(dir, 'nope', 'm.onnx') }), /output folder '.*nope' does not exist/);
    assert.deepEqual(readdirSync(dir), []);
    const good = join(dir, 'm.onnx');
    const r = exportOnnx(m, { inputShape: MNIST, out: good });
    assert.equal(r.bytes, readFileSync(good).byteLength);
    const before = readFileSync(good);
    // AdaptiveAvgPool2d(3) over 4x4 has no ONNX form (windows of unequal size).
    const odd = new Sequential(new Conv2d(1, 2, 3), new AdaptiveAvgPool2d(3), new Flatten(), new Linear(18, 2));
    assert.throws(() => exportOnnx(odd, { inputShape: [1, 6, 6], out: good }),
      (e: unknown) => e instanceof OnnxExportError && /op 'adaptiveAvgPool2d' at module '1' has no ONNX mapping/.test(e.message));
    class Peek extends Module {
      fc = this.registerModule('fc', new Linear(784, 10));
      forward(x: Tensor): Tensor { return x.flatten(1).max().item() > 0 ? this.fc.call(x.flatten(1)) : x; }
    }
    assert.throws(() => exportOnnx(new Peek(), { inputShape: MNIST, out: good }), TraceError);
    assert.throws(() => exportOnnx(m, { inputShape: MNIST, out: good, opset: 9 }), /opset 9 is not supported/);
    assert.deepEqual(readFileSync(good), before);
    assert.deepEqual(readdirSync(dir), ['m.onnx']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
