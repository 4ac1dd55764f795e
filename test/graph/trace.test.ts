/**
 * The tracer: node lists, names and shapes of traced zoo models checked by hand, a user-defined
 * residual module, and the refusals (an op without a graph form, data-dependent control flow),
 * each naming the op and the module path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createModel } from '../../src/models/index.js';
import { Conv2d, BatchNorm2d, Linear, Module, ReLU, Sequential, Flatten } from '../../src/nn/index.js';
import { zeros, type Tensor } from '../../src/tensor/index.js';
import { trace, TraceError } from '../../src/graph/trace.js';
import { graphFromJSON } from '../../src/graph/ir.js';
import { tensor } from '../../src/tensor/index.js';

test('LeNet-5: eight nodes, parameters by dot path, symbolic batch', () => {
  const m = createModel('lenet5', { inputShape: [1, 28, 28], numClasses: 10 });
  const g = trace(m, { inputShape: [1, 28, 28] });
  assert.deepEqual(g.nodes.map((n) => n.op), ['conv2d', 'maxPool2d', 'conv2d', 'maxPool2d', 'flatten', 'linear', 'relu', 'linear']);
  assert.deepEqual(g.inputs[0].shape, ['N', 1, 28, 28]);
  assert.deepEqual(g.nodes.map((n) => n.outputs[0].shape), [
    ['N', 20, 24, 24], ['N', 20, 12, 12], ['N', 50, 8, 8], ['N', 50, 4, 4], ['N', 800], ['N', 500], ['N', 500], ['N', 10]]);
  assert.deepEqual(g.nodes[0].inputs.map((v) => v?.name), ['input', '0.weight', '0.bias']);
  assert.deepEqual(g.nodes[0].attrs, { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 });
  assert.equal(g.nodes[5].module, '5');
  assert.deepEqual(g.nodes[4].attrs, { startDim: 1, endDim: 3 });
  assert.deepEqual(g.state.map((v) => v.name), ['0.weight', '0.bias', '2.weight', '2.bias', '5.weight', '5.bias', '7.weight', '7.bias']);
  assert.equal(g.outputs[0], g.nodes[7].outputs[0]);
  assert.equal(m.training, true, 'the training flag is restored');
});

test('ResNet-20: option-A shortcut is slice, slice, pad; residual add reads the block input', () => {
  const m = createModel('resnet20', { inputShape: [3, 32, 32], numClasses: 10 });
  const g = trace(m, { inputShape: [3, 32, 32] });
  assert.equal(g.find('conv2d').length, 19);
  assert.equal(g.find('batchNorm').length, 19);
  assert.equal(g.find('add').length, 9);
  const bn = g.find('batchNorm')[0];
  assert.deepEqual(bn.inputs.slice(1).map((v) => v?.name), ['stem.1.weight', 'stem.1.bias', 'stem.1.running_mean', 'stem.1.running_var']);
  // Block 3 (first of stage 2) downsamples: its shortcut is x[:, :, ::2, ::2] padded with 8 + 8 zero channels.
  const pads = g.find('pad');
  assert.equal(pads.length, 2);
  assert.equal(pads[0].module, 'layers.3');
  assert.deepEqual(pads[0].attrs, { pads: [0, 0, 0, 0, 8, 8], value: 0 });
  const [s1] = pads[0].inputs.map((v) => v!.producer!);
  assert.equal(s1.op, 'slice');
  assert.deepEqual(s1.attrs, { dim: 3, start: 0, end: 32, step: 2 });
  assert.deepEqual(pads[0].outputs[0].shape, ['N', 32, 16, 16]);
  const add = pads[0].outputs[0].users[0];
  assert.equal(add.op, 'add');
  assert.equal(add.inputs[0]!.producer!.op, 'batchNorm');
  assert.equal(add.inputs[0]!.producer!.module, 'layers.3.bn2');
  // num_batches_tracked is state but no node reads it.
  assert.ok(g.state.some((v) => v.name === 'stem.1.num_batches_tracked'));
  assert.ok(!g.usedState().some((v) => v.name.endsWith('num_batches_tracked')));
});

class Residual extends Module {
  conv: Conv2d; bn: BatchNorm2d; head: Sequential;
  constructor() {
    super();
    this.conv = this.registerModule('conv', new Conv2d(4, 4, 3, { padding: 1 }));
    this.bn = this.registerModule('bn', new BatchNorm2d(4));
    this.head = this.registerModule('head', new Sequential(new Flatten(), new Linear(4 * 5 * 5, 3), new ReLU()));
  }
  forward(x: Tensor): Tensor {
    const y = this.bn.call(this.conv.call(x)).relu();
    return this.head.call(y.add(x).mul(0.5));
  }
}

test('a user-defined residual module traces without special code', () => {
  const g = trace(new Residual(), { inputShape: [4, 5, 5] });
  assert.deepEqual(g.nodes.map((n) => `${n.op}@${n.module}`), [
    'conv2d@conv', 'batchNorm@bn', 'relu@', 'add@', 'mul@', 'flatten@head.0', 'linear@head.1', 'relu@head.2']);
  assert.equal(g.nodes[3].inputs[1], g.inputs[0]);
  assert.deepEqual(g.nodes[4].attrs, { scalar: 0.5 });
  assert.equal(g.nodes[4].inputs.length, 1);
});

class Topk extends Module {
  inner = this.registerModule('inner', new Sequential(new Linear(4, 4), new (class Picky extends Module {
    forward(x: Tensor): Tensor { return x.topk(2).values; }
  })()));
  forward(x: Tensor): Tensor { return this.inner.call(x); }
}
class Branchy extends Module {
  fc = this.registerModule('fc', new Linear(4, 4));
  forward(x: Tensor): Tensor {
    const y = this.fc.call(x);
    return y.sum().item() > 0 ? y.relu() : y.neg();
  }
}

test('refusals name the op and the module path', () => {
  assert.throws(() => trace(new Topk(), { inputShape: [4] }), (e: unknown) => e instanceof TraceError && /op 'topk' at module 'inner\.1'/.test(e.message));
  assert.throws(() => trace(new Branchy(), { inputShape: [4] }), (e: unknown) => e instanceof TraceError && /item\(\) at the root module \(Branchy\) reads a value computed from the input/.test(e.message));
  // The prototype is restored after a failed trace: methods run untraced again.
  const t = zeros([2]);
  assert.equal(t.sum().item(), 0);
});

test('constants made in forward are captured; the graph reads back from JSON', () => {
  class Offset extends Module {
    fc = this.registerModule('fc', new Linear(3, 2));
    forward(x: Tensor): Tensor { return this.fc.call(x).add(tensor([1, 2])); }
  }
  const g = trace(new Offset(), { inputShape: [3] });
  const c = g.values.find((v) => v.kind === 'constant')!;
  assert.deepEqual(c.data!.dataSync(), [1, 2]);
  const back = graphFromJSON(JSON.parse(JSON.stringify(g.toJSON())), (d, s, dt) => tensor(d, { shape: s, dtype: dt }));
  assert.equal(back.toString(), g.toString());
  assert.deepEqual(back.values.find((v) => v.kind === 'constant')!.data!.dataSync(), [1, 2]);
  g.dispose(); back.dispose();
});
