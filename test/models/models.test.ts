/**
 * The model zoo: parameter counts and FLOPs (multiply-accumulates for one input) against the
 * published values, module paths the pruning code relies on, and a forward (and backward) pass of
 * every model on its input shape: MNIST nets on [1, 28, 28], CIFAR nets on a batch of 2 [3, 32, 32].
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RegistryError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel, getModel, modelStats, MODEL_NAMES } from '../../src/models/index.js';
import { Conv2d, Linear } from '../../src/nn/index.js';
import { noGrad, randn, tidy, zeros } from '../../src/tensor/index.js';
import { noLeaks } from '../nn/util.js';

const MNIST = [1, 28, 28], CIFAR = [3, 32, 32];

/** Parameter counts (weights, biases, BatchNorm affine) and MACs for one input, 10 classes. */
const KNOWN: Record<string, { shape: number[]; params: number; macs: number; linear: number; conv: number }> = {
  mlp: { shape: MNIST, params: 535_818, macs: 535_040, linear: 3, conv: 0 }, // 784-512-256-10
  lenet_300_100: { shape: MNIST, params: 266_610, macs: 266_200, linear: 3, conv: 0 }, // LeCun et al. 1998
  lenet5: { shape: MNIST, params: 431_080, macs: 2_293_000, linear: 2, conv: 2 }, // Caffe LeNet: 20-50-500-10
  vgg_like: { shape: CIFAR, params: 14_991_946, macs: 313_463_808, linear: 2, conv: 13 }, // VGG-16 convs + fc 512 (SNIP: "15.0M")
  vgg19: { shape: CIFAR, params: 20_040_522, macs: 398_136_320, linear: 1, conv: 16 }, // GraSP: 20.04M, 0.40G
  resnet18: { shape: CIFAR, params: 11_173_962, macs: 555_422_720, linear: 1, conv: 20 }, // CIFAR ResNet-18: 11.2M, 0.56G
  resnet20: { shape: CIFAR, params: 269_722, macs: 40_551_040, linear: 1, conv: 19 }, // He et al.: 0.27M, 40.6M
  resnet32: { shape: CIFAR, params: 464_154, macs: 68_862_592, linear: 1, conv: 31 }, // 0.46M
  resnet56: { shape: CIFAR, params: 853_018, macs: 125_485_696, linear: 1, conv: 55 }, // 0.85M, 125.5M
  resnet110: { shape: CIFAR, params: 1_727_962, macs: 252_887_680, linear: 1, conv: 109 }, // 1.7M, 253M
  vit_tiny: { shape: MNIST, params: 139_018, macs: 2_427_008, linear: 13, conv: 1 }, // hand count in test/models/vit.test.ts
};

test('the registry holds exactly the models of the issue; unknown names list the known ones', () => {
  assert.deepEqual([...MODEL_NAMES].sort(), Object.keys(KNOWN).sort());
  assert.throws(() => getModel('resnet19'), (e: Error) => e instanceof RegistryError && /unknown model 'resnet19' \(known: mlp, lenet_300_100, lenet5/.test(e.message));
  assert.throws(() => createModel('lenet5', { inputShape: MNIST, numClasses: 10, init: 'bogus' }), /unknown init 'bogus'/);
});

for (const [name, k] of Object.entries(KNOWN)) {
  test(`${name}: ${k.params} parameters, ${(k.macs / 1e6).toFixed(1)} M MACs, forward on [${k.shape}]`, async () => {
    await noLeaks(name, () => {
      manualSeed(0);
      const m = createModel(name, { inputShape: k.shape, numClasses: 10 });
      assert.equal(m.numParameters(), k.params);
      const s = modelStats(m, k.shape);
      assert.equal(s.params, k.params);
      // Zero-initialized BatchNorm biases are not nonzero (a random weight may rarely draw an exact 0 too).
      const zeroInit = countZeroInit(m);
      assert.ok(s.nonzeroParams <= s.params - zeroInit && s.nonzeroParams >= s.params - zeroInit - 3, `nonzero ${s.nonzeroParams}, params ${s.params}, zero-init ${zeroInit}`);
      assert.equal(s.flops, k.macs);
      assert.ok(s.nonzeroFlops <= s.flops && s.nonzeroFlops > 0.9999 * s.flops, 'a dense model computes (nearly) all its MACs');
      assert.equal(s.layers.filter((l) => l.kind === 'linear').length, k.linear);
      assert.equal(s.layers.filter((l) => l.kind === 'conv').length, k.conv);
      assert.equal(s.layers.reduce((a, l) => a + l.macs, 0), s.flops);
      // One forward (train mode, batch 2) and backward: every parameter gets a gradient.
      tidy(() => {
        const y = m.call(randn([2, ...k.shape]));
        assert.deepEqual(y.shape, [2, 10]);
        assert.ok(y.isfinite().all().item());
        y.square().sum().backward();
        for (const [pn, p] of m.namedParameters()) assert.ok(p.grad !== null, `${name}: ${pn} has no gradient`);
      });
      m.dispose();
    });
  });
}

/** BatchNorm and LayerNorm biases start at zero, as do attention's biases (PyTorch); every other parameter is drawn at random. */
function countZeroInit(m: ReturnType<typeof createModel>): number {
  const zero = (n: string) => (n.endsWith('.bias') && !isLayerBias(m, n)) || n.endsWith('in_proj_bias') || n.endsWith('out_proj.bias');
  return m.namedParameters().filter(([n]) => zero(n)).reduce((a, [, p]) => a + p.numel, 0);
}
function isLayerBias(m: ReturnType<typeof createModel>, name: string): boolean {
  const owner = m.getModule(name.slice(0, name.lastIndexOf('.')));
  return owner instanceof Linear || owner instanceof Conv2d;
}

test('models take the dataset\'s input shape and channel count', async () => {
  await noLeaks('input shapes', () => {
    const cases: [string, number[], number, number][] = [['resnet20', MNIST, 10, 269_434], ['lenet5', [3, 32, 32], 100, 702_170], ['mlp', [3, 32, 32], 100, 1_730_404]];
    for (const [name, shape, classes, params] of cases) {
      const m = createModel(name, { inputShape: shape, numClasses: classes });
      assert.equal(m.numParameters(), params, `${name} on [${shape}] with ${classes} classes`);
      m.eval();
      tidy(() => assert.deepEqual(m.call(zeros([2, ...shape])).shape, [2, classes]));
      m.dispose();
    }
    const w = createModel('mlp', { inputShape: MNIST, numClasses: 10, widths: [100] });
    assert.deepEqual(w.namedParameters().map(([n, p]) => `${n} [${p.shape}]`), ['1.weight [100,784]', '1.bias [100]', '3.weight [10,100]', '3.bias [10]']);
    w.dispose();
  });
});

test('module paths: CIFAR ResNets use option-A shortcuts (no shortcut weights), ResNet-18 uses 1x1 projections', () => {
  const r20 = createModel('resnet20', { inputShape: CIFAR, numClasses: 10 });
  const names = r20.namedParameters().map(([n]) => n);
  assert.equal(names[0], 'stem.0.weight');
  assert.ok(names.includes('layers.8.conv2.weight') && names.includes('layers.0.bn1.weight') && names.includes('head.2.weight'));
  assert.ok(!names.some((n) => n.includes('shortcut')));
  assert.deepEqual(r20.stateDict()['layers.3.conv1.weight'].shape, [32, 16, 3, 3], 'first block of stage 2 widens 16 -> 32');
  r20.dispose();
  const r18 = createModel('resnet18', { inputShape: CIFAR, numClasses: 10 });
  const sc = r18.namedParameters().filter(([n]) => n.includes('shortcut.0.weight')).map(([n, p]) => `${n} [${p.shape}]`);
  assert.deepEqual(sc, ['layers.2.shortcut.0.weight [128,64,1,1]', 'layers.4.shortcut.0.weight [256,128,1,1]', 'layers.6.shortcut.0.weight [512,256,1,1]']);
  r18.dispose();
  const l5 = createModel('lenet5', { inputShape: MNIST, numClasses: 10 });
  assert.deepEqual(l5.namedParameters().map(([n, p]) => `${n} [${p.shape}]`),
    ['0.weight [20,1,5,5]', '0.bias [20]', '2.weight [50,20,5,5]', '2.bias [50]', '5.weight [500,800]', '5.bias [500]', '7.weight [10,500]', '7.bias [10]']);
  l5.dispose();
});

test('modelStats counts nonzero weights and scales each layer\'s MACs by its density', () => {
  const m = createModel('lenet_300_100', { inputShape: MNIST, numClasses: 10 });
  const w = m.stateDict()['1.weight']; // [300, 784]
  noGrad(() => tidy(() => { w.narrow(0, 0, 150).zero_(); })); // half of the first layer's weights
  const s = modelStats(m, MNIST);
  assert.equal(s.nonzeroParams, 266_610 - 150 * 784);
  assert.equal(s.layers[0].nonzero, 150 * 784);
  assert.equal(s.nonzeroFlops, 266_200 - 150 * 784);
  assert.equal(s.flops, 266_200);
  assert.equal(m.training, true, 'modelStats restores the training mode');
  m.dispose();
});

test('createModel init option re-initializes conv/linear weights and zeroes their biases', () => {
  manualSeed(1);
  const m = createModel('lenet5', { inputShape: MNIST, numClasses: 10, init: 'kaiming_normal' });
  tidy(() => {
    assert.ok(m.stateDict()['5.bias'].abs().sum().item() === 0);
    const w = m.stateDict()['5.weight']; // fan_in 800: std sqrt(2/800) = 0.05
    const std = w.std().item();
    assert.ok(Math.abs(std / 0.05 - 1) < 0.02, `std ${std}`);
  });
  m.dispose();
});
