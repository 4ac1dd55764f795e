/**
 * ONNX import (issue 12): files exported by PyTorch 1.13's own torch.onnx.export
 * (scripts/make-onnx-fixtures.py: an MLP with LayerNorm and GELU, a CNN with BatchNorm, a ResNet
 * block with a projection shortcut, a depthwise-separable net, a transformer encoder layer, an MNIST CNN,
 * a net with ConvTranspose) import
 * into GraphModules whose outputs equal PyTorch's and onnxruntime's, whose gradients equal
 * PyTorch's, whose train mode is PyTorch's (batch statistics, running statistics updated); they
 * train, prune structurally, shrink and export to an ONNX file onnxruntime runs; topiary's own
 * exports of zoo models import back exactly; bad files are refused with one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/index.js';
import { SGD } from '../../src/optim/optimizer.js';
import { noGrad, randn, tensor, tidy, dispose, type Tensor } from '../../src/tensor/index.js';
import { mseLoss } from '../../src/tensor/nn-ops.js';
import { encodeOnnx } from '../../src/graph/onnx-export.js';
import { importOnnx, OnnxImportError } from '../../src/graph/onnx-import.js';
import { ModelProtoSchema, NodeProtoSchema, StringStringEntryProtoSchema, TensorProto_DataLocation } from '../../src/graph/proto/onnx_pb.js';
import { shrink } from '../../src/graph/shrink.js';
import { PruneTarget } from '../../src/prune/target.js';
import { magnitude } from '../../src/prune/criteria.js';
import { pruneTo } from '../../src/prune/step.js';
import type { Module } from '../../src/nn/index.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'onnx');
const NAMES = ['mlp', 'cnn_bn', 'resblock', 'depthwise', 'transformer', 'mnist_cnn', 'upconv'];
interface Fixture {
  name: string; opset: number; inputShape: number[];
  input: { shape: number[]; data: number[] }; output: { shape: number[]; data: number[] }; trainOutput: { shape: number[]; data: number[] };
  runningAfterTrainStep: Record<string, number[]>; lossWeight: number[]; grads: Record<string, number[]>;
}
const fixture = (n: string) => JSON.parse(readFileSync(join(DIR, `${n}.json`), 'utf8')) as Fixture;
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const input = (f: Fixture) => tensor(Float32Array.from(f.input.data), { shape: f.input.shape });

async function ortRun(bytes: Uint8Array, x: Tensor): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes);
  try {
    const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) });
    return r[s.outputNames[0]].data as Float32Array;
  } finally { await s.release(); }
}

for (const name of NAMES) {
  test(`${name}: imported outputs equal PyTorch's and onnxruntime's (<= 1e-5), at two batch sizes`, async (t) => {
    const f = fixture(name);
    const gm = importOnnx(join(DIR, `${name}.onnx`)).eval();
    const x = input(f);
    const y = noGrad(() => gm.call(x));
    assert.deepEqual(y.shape, f.output.shape);
    const dTorch = maxDiff(y.dataSync(), f.output.data);
    const bytes = readFileSync(join(DIR, `${name}.onnx`));
    const dOrt = maxDiff(y.dataSync(), await ortRun(bytes, x));
    // The batch stays symbolic: one example alone gives its row of the batch of 3.
    const x1 = x.slice(0, 0, 1);
    const y1 = noGrad(() => gm.call(x1));
    const dRow = maxDiff(y1.dataSync(), y.slice(0, 0, 1).dataSync());
    t.diagnostic(`PyTorch ${dTorch.toExponential(2)}, onnxruntime ${dOrt.toExponential(2)}, batch 1 vs 3 ${dRow.toExponential(2)}`);
    assert.ok(dTorch <= 1e-5, `vs PyTorch ${dTorch}`);
    assert.ok(dOrt <= 1e-5, `vs onnxruntime ${dOrt}`);
    assert.ok(dRow <= 1e-5, `batch 1 vs 3 ${dRow}`);
    dispose([x, y, x1, y1]);
    gm.dispose();
  });

  test(`${name}: parameters keep PyTorch's names and gradients (relative 1e-3); train mode matches PyTorch's`, () => {
    const f = fixture(name);
    const gm = importOnnx(join(DIR, `${name}.onnx`));
    const params = new Map(gm.namedParameters());
    for (const k of Object.keys(f.grads)) assert.ok(params.has(k), `no parameter '${k}' (have ${[...params.keys()].join(', ')})`);
    gm.eval();
    const x = input(f);
    const w = tensor(Float32Array.from(f.lossWeight), { shape: f.output.shape });
    gm.call(x).mul(w).sum().backward();
    for (const [k, g] of Object.entries(f.grads)) {
      const got = params.get(k)!.grad!.dataSync();
      const scale = Math.max(...g.map(Math.abs), 1e-6);
      const d = maxDiff(got, g);
      assert.ok(d <= 1e-3 * scale + 1e-6, `${k}: gradient max diff ${d} (scale ${scale})`);
    }
    gm.train();
    const yt = noGrad(() => gm.call(x));
    assert.ok(maxDiff(yt.dataSync(), f.trainOutput.data) <= 1e-4, `train-mode output differs by ${maxDiff(yt.dataSync(), f.trainOutput.data)}`);
    const bufs = new Map(gm.namedBuffers());
    for (const [k, v] of Object.entries(f.runningAfterTrainStep)) {
      assert.ok(maxDiff(bufs.get(k)!.dataSync(), v) <= 1e-5, `${k} after one train step`);
      const nb = k.replace(/running_(mean|var)$/, 'num_batches_tracked');
      assert.equal(Number(bufs.get(nb)!.item()), 1, nb);
    }
    dispose([x, w, yt]);
    gm.dispose();
  });
}

test('an imported CNN trains: five SGD steps lower the loss', () => {
  manualSeed(1);
  const gm = importOnnx(join(DIR, 'cnn_bn.onnx'));
  const x = randn([8, 3, 16, 16]), target = randn([8, 10]);
  const opt = new SGD(gm.parameters(), { lr: 0.05 });
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
  assert.ok(losses[5] < 0.8 * losses[0], `losses ${losses.map((l) => l.toFixed(4)).join(' ')}`);
  dispose([x, target]);
  gm.dispose();
});

const count = (m: Module) => m.namedParameters().reduce((s, [, p]) => s + p.numel, 0);
for (const [name, shape] of [['resblock', [3, 16, 16]], ['cnn_bn', [3, 16, 16]], ['depthwise', [3, 16, 16]]] as const) {
  test(`${name}: import -> structured prune 50% -> shrink -> export -> onnxruntime equals the shrunk and the masked model`, async (t) => {
    manualSeed(2);
    const gm = importOnnx(join(DIR, `${name}.onnx`)).eval();
    const target = new PruneTarget(gm, { granularity: 'structured', inputShape: [...shape] });
    assert.ok(target.groups.length > 0, 'channel groups found');
    const scores = magnitude.score({ model: gm, target }, {});
    pruneTo(target, scores, { sparsity: 0.5, scope: 'layer', groupReduce: 'first' });
    dispose([...scores.values()]);
    target.apply();
    const small = shrink(gm, target.masks, { inputShape: [...shape] }).eval();
    assert.ok(count(small) < 0.75 * count(gm), `${count(small)} of ${count(gm)} parameters`);
    const x = randn([3, ...shape]);
    const masked = noGrad(() => gm.call(x)).dataSync(), shrunk = noGrad(() => small.call(x)).dataSync();
    const dShrink = maxDiff(masked, shrunk);
    const dOrt = maxDiff(shrunk, await ortRun(encodeOnnx(small, { inputShape: [...shape] }), x));
    t.diagnostic(`${count(small)} of ${count(gm)} parameters; shrunk vs masked ${dShrink.toExponential(2)}, onnxruntime vs shrunk ${dOrt.toExponential(2)}`);
    assert.ok(dShrink <= 1e-5 && dOrt <= 1e-5, `${dShrink} ${dOrt}`);
    x.dispose(); small.dispose(); target.dispose(); gm.dispose();
  });
}

test('unstructured 50% magnitude on an imported transformer: the exported file runs the masked weights', async () => {
  const gm = importOnnx(join(DIR, 'transformer.onnx')).eval();
  const target = new PruneTarget(gm, {});
  const scores = magnitude.score({ model: gm, target }, {});
  pruneTo(target, scores, { sparsity: 0.5, scope: 'global' });
  dispose([...scores.values()]);
  target.apply();
  const x = randn([3, 6, 16]); // not the trace's batch (5): the exported reshapes keep the batch dynamic
  const want = noGrad(() => gm.call(x)).dataSync();
  const got = await ortRun(encodeOnnx(gm, { inputShape: [6, 16] }), x);
  assert.ok(maxDiff(want, got) <= 1e-5, `${maxDiff(want, got)}`);
  x.dispose(); target.dispose(); gm.dispose();
});

test('ConvTranspose (strided, output_padding, grouped) imports as a conv on a zero-inserted input and exports to a file onnxruntime runs', async () => {
  const gm = importOnnx(join(DIR, 'upconv.onnx')).eval();
  assert.ok(gm.graph.find('conv2d').length === 3, 'three convolutions');
  const x = randn([3, 3, 12, 10]);
  const want = noGrad(() => gm.call(x)).dataSync();
  const got = await ortRun(encodeOnnx(gm, { inputShape: [3, 12, 10] }), x);
  assert.ok(maxDiff(want, got) <= 1e-5, `${maxDiff(want, got)}`);
  x.dispose(); gm.dispose();
});

for (const [name, shape] of [['lenet5', [1, 28, 28]], ['resnet20', [3, 32, 32]], ['vgg_like', [3, 32, 32]], ['vit_tiny', [1, 28, 28]]] as const) {
  test(`${name}: topiary's own ONNX export imports back to the same outputs`, () => {
    manualSeed(4);
    const m = createModel(name, { inputShape: [...shape], numClasses: 10 }).eval();
    const gm = importOnnx(encodeOnnx(m, { inputShape: [...shape] })).eval();
    const x = randn([2, ...shape]);
    const d = maxDiff(noGrad(() => m.call(x)).dataSync(), noGrad(() => gm.call(x)).dataSync());
    assert.ok(d <= 1e-5, `${d}`);
    const names = new Set(gm.namedParameters().map(([n]) => n));
    for (const [n] of m.namedParameters()) assert.ok(names.has(n), `parameter ${n} kept its name`);
    x.dispose(); gm.dispose(); m.dispose();
  });
}

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
test('zoo-sized networks exported by PyTorch in this run (ResNet-18 CIFAR, VGG-11 BN, MobileNet-style, tiny ViT; width 8): outputs equal PyTorch\'s; the ResNet-18 prunes, shrinks and exports', { skip: !hasTorch && '/usr/bin/python3 has no torch' }, async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'onnx-zoo-'));
  try {
    const r = spawnSync('/usr/bin/python3', [join(import.meta.dirname, '..', '..', 'scripts', 'make-onnx-fixtures.py'), '--zoo', tmp, '8'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const name of ['resnet18', 'vgg11_bn', 'mobilenet', 'vit_tiny']) {
      const f = JSON.parse(readFileSync(join(tmp, `${name}.json`), 'utf8')) as Fixture & { params: number };
      const gm = importOnnx(join(tmp, `${name}.onnx`)).eval();
      assert.equal(count(gm), f.params, `${name}: parameter count`);
      const x = input(f);
      const d = maxDiff(noGrad(() => gm.call(x)).dataSync(), f.output.data);
      t.diagnostic(`${name}: ${f.params} parameters, max abs diff vs PyTorch ${d.toExponential(2)}`);
      assert.ok(d <= 1e-5, `${name}: ${d}`);
      if (name === 'resnet18') {
        const target = new PruneTarget(gm, { granularity: 'structured', inputShape: [3, 32, 32] });
        const scores = magnitude.score({ model: gm, target }, {});
        pruneTo(target, scores, { sparsity: 0.5, scope: 'layer', groupReduce: 'first' });
        dispose([...scores.values()]);
        target.apply();
        const small = shrink(gm, target.masks, { inputShape: [3, 32, 32] }).eval();
        const want = noGrad(() => gm.call(x)).dataSync();
        const dOrt = maxDiff(want, await ortRun(encodeOnnx(small, { inputShape: [3, 32, 32] }), x));
        t.diagnostic(`resnet18 shrunk: ${count(small)} of ${count(gm)} parameters, onnxruntime vs masked ${dOrt.toExponential(2)}`);
        assert.ok(count(small) < 0.5 * count(gm) && dOrt <= 1e-5, `${count(small)} ${dOrt}`);
        small.dispose(); target.dispose();
      }
      x.dispose(); gm.dispose();
    }
  } finally { rmSync(tmp, { recursive: true, force: true }); }
});

// ---- bad input ---------------------------------------------------------------------------------
const refuses = (f: () => unknown, re: RegExp) => assert.throws(f, (e: Error) => {
  assert.ok(e instanceof OnnxImportError, `${e.name}: ${e.message}`);
  assert.match(e.message, re);
  assert.ok(!e.message.includes('\n'), 'one line');
  return true;
});
const mlpModel = () => fromBinary(ModelProtoSchema, readFileSync(join(DIR, 'mlp.onnx')));

test('bad files: empty, a folder, truncated, not ONNX, unknown opset, unsupported op, missing initializer, cycle, huge dims', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'onnx-bad-'));
  try {
    writeFileSync(join(tmp, 'empty.onnx'), new Uint8Array(0));
    refuses(() => importOnnx(join(tmp, 'empty.onnx')), /empty \(0 bytes\)/);
    refuses(() => importOnnx(tmp), /is a folder/);
    refuses(() => importOnnx(join(tmp, 'nope.onnx')), /does not exist/);
    const bytes = readFileSync(join(DIR, 'cnn_bn.onnx'));
    refuses(() => importOnnx(bytes.subarray(0, Math.floor(bytes.length / 2))), /not a readable ONNX model|holds no graph|reads|bytes/);
    refuses(() => importOnnx(new TextEncoder().encode('{"not": "onnx"}')), /ONNX import/);

    const m1 = mlpModel(); m1.opsetImport[0].version = 99n;
    refuses(() => importOnnx(toBinary(ModelProtoSchema, m1)), /opset 99; topiary imports opsets 11 to 21/);

    const m2 = mlpModel(); m2.graph!.node[2].opType = 'FancyNorm';
    refuses(() => importOnnx(toBinary(ModelProtoSchema, m2)), /op 'FancyNorm' \(node '\/norm\/LayerNormalization'\) is not supported at opset 17; supported: .*Conv/);

    const m3 = mlpModel(); m3.graph!.initializer = m3.graph!.initializer.filter((t) => t.name !== 'fc2.weight');
    refuses(() => importOnnx(toBinary(ModelProtoSchema, m3)), /node '\/fc2\/Gemm' \(Gemm\) reads 'fc2.weight', which no node, initializer or input makes/);

    const m4 = mlpModel(); // the first node reads the last node's output: a cycle
    m4.graph!.node[0].input = ['/Tanh_output_0'];
    m4.graph!.node.push(create(NodeProtoSchema, { opType: 'Relu', name: 'loop', input: ['/Tanh_output_0'], output: ['unused'] }));
    refuses(() => importOnnx(toBinary(ModelProtoSchema, m4)), /cycle/);

    const m5 = mlpModel(); m5.graph!.initializer[0].dims = [1_000_000n, 1_000_000n];
    refuses(() => importOnnx(toBinary(ModelProtoSchema, m5)), /declares 1000000000000 elements/);

    const m6 = mlpModel(); m6.graph!.initializer[0].rawData = m6.graph!.initializer[0].rawData.subarray(0, 100);
    refuses(() => importOnnx(toBinary(ModelProtoSchema, m6)), /holds 100 bytes, its dims \[32,64\] need 8192/);

    refuses(() => importOnnx(join(DIR, 'cnn_bn.onnx'), { inputShape: [3, 8, 8, 1] }), /rank 4/);
    refuses(() => importOnnx(join(DIR, 'cnn_bn.onnx'), { inputShape: [1, 16, 16] }), /inputShape gives \[1,16,16\]/);
  } finally { rmSync(tmp, { recursive: true, force: true }); }
});

test('corrupted files (random bytes changed, cut short): each imports or is one OnnxImportError line, never another error', () => {
  let seed = 12345, ok = 0, refused = 0;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
  for (const name of ['cnn_bn', 'transformer', 'upconv']) {
    const base = readFileSync(join(DIR, `${name}.onnx`));
    for (let i = 0; i < 40; i++) {
      const b = Uint8Array.from(base);
      for (let j = 0, k = 1 + Math.floor(rnd() * 8); j < k; j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      const file = rnd() < 0.2 ? b.subarray(0, Math.floor(rnd() * b.length)) : b;
      try { importOnnx(file).dispose(); ok++; } catch (e) {
        assert.ok(e instanceof OnnxImportError, `${name} mutant ${i}: ${(e as Error).name}: ${(e as Error).message}`);
        assert.ok(!(e as Error).message.includes('\n'));
        refused++;
      }
    }
  }
  assert.equal(ok + refused, 120);
  assert.ok(refused > 20, `${refused} refused`);
});

test('external data: loaded from the side file; refused outside the folder, through a link, or from bytes', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'onnx-ext-'));
  try {
    const dir = join(tmp, 'model');
    mkdirSync(dir);
    const m = mlpModel();
    const w = m.graph!.initializer.find((t) => t.name === 'fc1.weight')!;
    const raw = w.rawData;
    const withLocation = (loc: string) => {
      const c = fromBinary(ModelProtoSchema, toBinary(ModelProtoSchema, m));
      const t = c.graph!.initializer.find((x) => x.name === 'fc1.weight')!;
      t.rawData = new Uint8Array(0);
      t.dataLocation = TensorProto_DataLocation.EXTERNAL;
      t.externalData = [['location', loc], ['offset', '16'], ['length', String(raw.length)]].map(([key, value]) => create(StringStringEntryProtoSchema, { key, value }));
      return toBinary(ModelProtoSchema, c);
    };
    const side = new Uint8Array(16 + raw.length);
    side.set(raw, 16);
    writeFileSync(join(dir, 'weights.bin'), side);
    writeFileSync(join(dir, 'ext.onnx'), withLocation('weights.bin'));
    const f = fixture('mlp');
    const gm = importOnnx(join(dir, 'ext.onnx')).eval();
    const x = input(f);
    assert.ok(maxDiff(noGrad(() => gm.call(x)).dataSync(), f.output.data) <= 1e-5);
    gm.dispose(); x.dispose();

    writeFileSync(join(tmp, 'outside.bin'), side);
    writeFileSync(join(dir, 'up.onnx'), withLocation('../outside.bin'));
    refuses(() => importOnnx(join(dir, 'up.onnx')), /outside the model's folder/);
    writeFileSync(join(dir, 'abs.onnx'), withLocation(join(tmp, 'outside.bin')));
    refuses(() => importOnnx(join(dir, 'abs.onnx')), /outside the model's folder/);
    symlinkSync(join(tmp, 'outside.bin'), join(dir, 'link.bin'));
    writeFileSync(join(dir, 'link.onnx'), withLocation('link.bin'));
    refuses(() => importOnnx(join(dir, 'link.onnx')), /resolves outside the model's folder/);
    writeFileSync(join(dir, 'missing.onnx'), withLocation('gone.bin'));
    refuses(() => importOnnx(join(dir, 'missing.onnx')), /external data file 'gone.bin' is not beside/);
    refuses(() => importOnnx(withLocation('weights.bin')), /keeps its data in an external file \('weights.bin'\); import the model from its path/);
  } finally { rmSync(tmp, { recursive: true, force: true }); }
});
