/**
 * BatchNorm folding (src/graph/fold.ts): the folded weights by hand for one conv; on every zoo model
 * with BatchNorm, every BatchNorm folds away and the folded graph's outputs equal the unfolded
 * graph's within 1e-5 (vgg19, whose float32 outputs are about 2e-5 from a float64 run folded or not:
 * within twice the unfolded model's own distance from that float64 run); a GraphModule with foldBatchNorm on gives the same, rebuilds its folded copy
 * when a parameter changes, and trains unfolded; the ONNX export of the folded graph, run in
 * onnxruntime, equals topiary within 1e-4 (the bound for exported models; printed per model); a BatchNorm whose convolution output is read twice stays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from '../../src/graph/proto/onnx_pb.js';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/index.js';
import { BatchNorm2d, Conv2d, Module, Sequential } from '../../src/nn/index.js';
import { keep, noGrad, randn, tensor, tidy, type Tensor } from '../../src/tensor/index.js';
import { trace } from '../../src/graph/trace.js';
import { foldBatchNorm } from '../../src/graph/fold.js';
import { GraphModule, runGraph } from '../../src/graph/run.js';
import { encodeOnnx } from '../../src/graph/onnx-export.js';

const MNIST = [1, 28, 28], CIFAR = [3, 32, 32];
// Every zoo model that has BatchNorm (the others: mlp, lenet_300_100, lenet5, vit_tiny have none).
const BN_ZOO: [string, number[]][] = [
  ['vgg_like', CIFAR], ['vgg19', CIFAR], ['resnet18', CIFAR], ['resnet20', CIFAR], ['resnet32', CIFAR], ['resnet56', CIFAR], ['resnet110', CIFAR],
];
const maxDiff = (a: Tensor, b: Tensor) => tidy(() => a.sub(b).abs().max().item());
const maxAbs = (a: Float32Array, b: ArrayLike<number>) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/**
 * Affine parameters that are not the initial ones, and running statistics set to the batch
 * statistics each BatchNorm sees on `calib` (one training-mode pass), so that eval-mode activations
 * stay of order one however deep the network is, and folding has real statistics to fold.
 */
function calibrateBatchNorm(m: Module, calib: Tensor): void {
  noGrad(() => {
    for (const [n, p] of m.namedParameters()) {
      if (/bn|\d\.weight/.test(n) && p.ndim === 1) p.copy_(randn(p.shape).mul(0.2).add(1));
      if (/bn.*bias|\d\.bias/.test(n) && p.ndim === 1) p.copy_(randn(p.shape).mul(0.1));
    }
    const stats: [BatchNorm2d, Tensor, Tensor][] = [];
    const removers = m.namedModules().filter(([, c]) => c instanceof BatchNorm2d).map(([, c]) => c.registerForwardHook((mod, x) => {
      const mean = keep(x.mean([0, 2, 3]));
      // A channel with (near) zero variance (dead after a ReLU) scales float32 rounding by gamma / sqrt(eps),
      // folded or not (about 3e-5 at vgg19's output); kept at 0.01 or more here.
      const v = keep(x.sub(mean.reshape([1, -1, 1, 1])).square().mean([0, 2, 3]).clamp(0.01, null));
      stats.push([mod as BatchNorm2d, mean, v]);
    }));
    m.train();
    tidy(() => { m.call(calib); });
    for (const r of removers) r();
    for (const [bn, mean, v] of stats) {
      const st = bn.stateDict();
      st.running_mean.copy_(mean);
      st.running_var.copy_(v);
      mean.dispose();
      v.dispose();
    }
    m.eval();
  });
}

test('one conv + BatchNorm folded by hand', () => {
  const m = new Sequential(new Conv2d(1, 2, 1), new BatchNorm2d(2)).eval();
  noGrad(() => {
    const conv = m.at(0) as Conv2d, bn = m.at(1) as BatchNorm2d;
    conv.weight.copy_(tensor([2, -1], { shape: [2, 1, 1, 1] }));
    conv.bias!.copy_(tensor([0.5, 1]));
    bn.weight!.copy_(tensor([3, 0.5]));
    bn.bias!.copy_(tensor([1, -2]));
    const st = bn.stateDict();
    st.running_mean.copy_(tensor([0.5, 2]));
    st.running_var.copy_(tensor([4 - 1e-5, 0.25 - 1e-5])); // sqrt(var + eps) = 2 and 0.5
  });
  const g = trace(m, { inputShape: [1, 1, 1] });
  const f = foldBatchNorm(g, m.stateDict());
  assert.deepEqual(f.folded, ['1']);
  assert.deepEqual(f.graph.nodes.map((n) => n.op), ['conv2d']);
  // s = gamma / sqrt(var + eps) = [1.5, 1]; w' = w s = [3, -1]; b' = (b - mean) s + beta = [0 * 1.5 + 1, (1 - 2) * 1 - 2] = [1, -3].
  const w = f.state['0.weight'].dataSync(), b = f.state['0.bias'].dataSync();
  [3, -1].forEach((v, i) => assert.ok(Math.abs(w[i] - v) < 1e-6, `w'[${i}] = ${w[i]}`));
  [1, -3].forEach((v, i) => assert.ok(Math.abs(b[i] - v) < 1e-6, `b'[${i}] = ${b[i]}`));
  // The BatchNorm's tensors are gone from the folded graph's inputs.
  assert.deepEqual(f.graph.usedState().map((v) => v.name), ['0.weight', '0.bias']);
  tidy(() => noGrad(() => {
    const x = tensor([1, -2, 0.25], { shape: [3, 1, 1, 1] });
    const [y] = runGraph(f.graph, f.state, [x]);
    assert.deepEqual([...y.dataSync()].map((v) => +v.toFixed(5)), [4, -4, -5, -1, 1.75, -3.25]);
  }));
  f.dispose();
  g.dispose();
  m.dispose();
});

test('a conv without bias gets one; a conv whose output is read twice keeps its BatchNorm', () => {
  class Twice extends Module {
    conv = this.registerModule('conv', new Conv2d(3, 4, 3, { bias: false, padding: 1 }));
    bn = this.registerModule('bn', new BatchNorm2d(4));
    conv2 = this.registerModule('conv2', new Conv2d(4, 4, 3, { bias: false, padding: 1 }));
    bn2 = this.registerModule('bn2', new BatchNorm2d(4));
    forward(x: Tensor): Tensor {
      const a = this.conv.call(x);
      return this.bn2.call(this.conv2.call(this.bn.call(a).relu())).add(a);
    }
  }
  manualSeed(3);
  const m = new Twice();
  calibrateBatchNorm(m, randn([4, 3, 5, 5]));
  const g = trace(m, { inputShape: [3, 5, 5] });
  const f = foldBatchNorm(g, m.stateDict());
  assert.deepEqual(f.folded, ['bn2']);
  assert.equal(f.graph.find('batchNorm').length, 1);
  assert.ok(f.graph.usedState().some((v) => v.name === 'conv2.bias'));
  tidy(() => noGrad(() => {
    const x = randn([2, 3, 5, 5]);
    assert.ok(maxDiff(runGraph(f.graph, f.state, [x])[0], m.call(x)) <= 1e-5);
  }));
  f.dispose();
  g.dispose();
  m.dispose();
});

for (const [name, shape] of BN_ZOO) {
  test(`${name}: every BatchNorm folds; folded = unfolded within 1e-5, and onnxruntime runs the folded export`, async () => {
    manualSeed(7);
    const m = createModel(name, { inputShape: shape, numClasses: 10 });
    calibrateBatchNorm(m, randn([8, ...shape]));
    const g = trace(m, { inputShape: shape });
    const bns = g.find('batchNorm').length;
    assert.ok(bns > 0);
    const f = foldBatchNorm(g, m.stateDict(), { channelsLastWeights: true });
    assert.equal(f.folded.length, bns, 'every BatchNorm follows a conv that nothing else reads');
    assert.equal(f.graph.find('batchNorm').length, 0);
    assert.equal(f.graph.nodes.length, g.nodes.length - bns);
    const x = randn([3, ...shape]);
    const [want, got] = tidy(() => noGrad(() => [runGraph(g, m.stateDict(), [x])[0], runGraph(f.graph, f.state, [x])[0]]));
    const d = maxDiff(got, want);
    if (d > 1e-5) {
      // Deep plain stacks (vgg19: 16 convs of up to 4608 terms) are that far from exact in float32 alone
      // (measured 1.6e-5 to 2.4e-5 from a float64 run, unfolded). Then the folded model's distance from
      // the float64 run of the unfolded graph must be of the same order as the unfolded float32 model's
      // (at most twice it): the fold adds rounding, not a different function.
      const [e32, eFold] = tidy(() => noGrad(() => {
        const sd64: Record<string, Tensor> = {};
        for (const [k, t] of Object.entries(m.stateDict())) sd64[k] = t.dtype === 'float32' ? t.double() : t;
        const exact = runGraph(g, sd64, [x.double()])[0];
        return [want.double().sub(exact).abs().max().item(), got.double().sub(exact).abs().max().item()];
      }));
      assert.ok(eFold <= 2 * e32 && eFold <= 1e-4, `${name}: folded vs unfolded max |diff| ${d}; from float64: folded ${eFold}, unfolded ${e32}`);
    }
    // The GraphModule's eval path (folded, conv weights channels-last) gives the same.
    const gm = GraphModule.fromModule(m, shape).eval();
    gm.foldBatchNorm = true;
    const y = tidy(() => noGrad(() => gm.call(x)));
    const dGm = maxDiff(y, got);
    assert.ok(dGm <= 1e-6, `${name}: GraphModule (folded) vs the folded graph ${dGm}`);
    // The exported folded model: no BatchNormalization node, and onnxruntime gives topiary's folded outputs.
    const bytes = encodeOnnx(m, { inputShape: shape, foldBatchNorm: true });
    const ops = fromBinary(ModelProtoSchema, bytes).graph!.node.map((n) => n.opType);
    assert.ok(!ops.includes('BatchNormalization') && ops.includes('Conv'), `${name}: ops ${[...new Set(ops)]}`);
    const sess = await ort.InferenceSession.create(bytes);
    const r = await sess.run({ [sess.inputNames[0]]: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) });
    const dOrt = maxAbs(r[sess.outputNames[0]].data as Float32Array, got.dataSync());
    // The bound for every exported model in onnxruntime (its kernels sum in another order).
    assert.ok(dOrt <= 1e-4, `${name}: onnxruntime vs topiary (folded) max |diff| ${dOrt}`);
    console.log(`${name}: folded vs unfolded ${d.toExponential(2)}, onnxruntime vs topiary (folded) ${dOrt.toExponential(2)}`);
    await sess.release();
    for (const t of [x, want, got, y]) t.dispose();
    gm.dispose();
    f.dispose();
    g.dispose();
    m.dispose();
  });
}

test('GraphModule: the folded copy follows parameter changes; training mode runs unfolded', () => {
  manualSeed(11);
  const m = createModel('resnet20', { inputShape: CIFAR, numClasses: 10 });
  calibrateBatchNorm(m, randn([8, ...CIFAR]));
  const gm = GraphModule.fromModule(m.eval(), CIFAR).eval();
  gm.foldBatchNorm = true;
  const x = randn([2, ...CIFAR]);
  const plan = () => { tidy(() => noGrad(() => { gm.call(x); })); return (gm as unknown as { _plans: Map<boolean, { folded: unknown }> })._plans.get(Conv2d.channelsLast)!.folded; };
  const first = plan();
  assert.equal(plan(), first, 'unchanged parameters: the same folded copy');
  tidy(() => noGrad(() => {
    gm.stateDict()['layers.0.conv1.weight'].mul_(0.5);
    gm.stateDict()['layers.0.bn1.running_var'].mul_(2);
    gm.foldBatchNorm = false;
    const want = gm.call(x);
    gm.foldBatchNorm = true;
    const got = gm.call(x);
    assert.notEqual(plan(), first, 'a changed parameter: folded again');
    assert.ok(maxDiff(got, want) <= 1e-5);
  }));
  // Training mode: BatchNorm by batch statistics, as without folding.
  gm.train();
  tidy(() => {
    const y = gm.call(x);
    gm.foldBatchNorm = false;
    const z = gm.call(x);
    assert.ok(maxDiff(y, z) <= 1e-6);
  });
  x.dispose();
  gm.dispose();
  m.dispose();
});
