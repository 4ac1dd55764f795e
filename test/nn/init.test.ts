/**
 * Initializers. Exact values: after manualSeed(s), topiary's Linear and Conv2d constructors and the
 * named initializers draw the same numbers as PyTorch 1.13 does after torch.manual_seed(s) (same
 * libtorch generator, same draw order: weight, then bias), from test/fixtures/nn-init.json.
 * Statistics: on large tensors, the standard deviations and bounds of Kaiming and Xavier.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed } from '../../src/core/runtime.js';
import { Conv2d, Linear, init } from '../../src/nn/index.js';
import { empty, tidy, type Tensor } from '../../src/tensor/index.js';
import { assertTensorClose, fixture, noLeaks, type Rec } from './util.js';

interface InitCase { name: string; kind: string; seed: number; args?: number[]; init?: string; shape?: number[]; weight: Rec; bias?: Rec }
const fx = fixture<{ init: InitCase[] }>('nn-init.json');

const byName: Record<string, (w: Tensor) => Tensor> = {
  'kaiming_normal fan_in': (w) => init.kaimingNormal_(w, 'fan_in', 'relu'),
  'kaiming_normal fan_out': (w) => init.kaimingNormal_(w, 'fan_out', 'relu'),
  'kaiming_uniform fan_in': (w) => init.kaimingUniform_(w, 'fan_in', 'relu'),
  xavier_uniform: (w) => init.xavierUniform_(w),
  xavier_normal: (w) => init.xavierNormal_(w),
};

for (const c of fx.init) {
  test(`same values as PyTorch for the same seed: ${c.name}`, async () => {
    await noLeaks(c.name, () => {
      manualSeed(c.seed);
      if (c.kind === 'linear' || c.kind === 'conv2d') {
        const [a, b, k] = c.args!;
        const m = c.kind === 'linear' ? new Linear(a, b) : new Conv2d(a, b, k);
        assertTensorClose(m.weight, c.weight, `${c.name}: weight`, [1e-6, 1e-7]);
        assertTensorClose(m.bias, c.bias!, `${c.name}: bias`, [1e-6, 1e-7]);
        m.dispose();
      } else {
        tidy(() => assertTensorClose(byName[c.init!](empty(c.shape!)), c.weight, c.name, [1e-6, 1e-7]));
      }
    });
  });
}

test('a different seed gives different Linear weights; the same seed, the same ones', () => {
  const draw = (s: number) => { manualSeed(s); const m = new Linear(8, 4); const v = m.weight.dataSync(); m.dispose(); return v; };
  assert.deepEqual(draw(5), draw(5));
  assert.notDeepEqual(draw(5), draw(6));
});

function moments(t: Tensor): { mean: number; std: number; maxAbs: number } {
  const v = t.dataSync();
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
  return { mean, std, maxAbs: Math.max(...v.map(Math.abs)) };
}

test('init statistics: Kaiming normal std is gain/sqrt(fan) for fan_in and fan_out', () => {
  manualSeed(11);
  tidy(() => {
    // [out 64, in 32, 3, 3]: fan_in 288, fan_out 576
    const a = moments(init.kaimingNormal_(empty([64, 32, 3, 3]), 'fan_in', 'relu'));
    assert.ok(Math.abs(a.std / Math.sqrt(2 / 288) - 1) < 0.03, `fan_in std ${a.std}, expected ${Math.sqrt(2 / 288)}`);
    assert.ok(Math.abs(a.mean) < 0.003);
    const b = moments(init.kaimingNormal_(empty([64, 32, 3, 3]), 'fan_out', 'relu'));
    assert.ok(Math.abs(b.std / Math.sqrt(2 / 576) - 1) < 0.03, `fan_out std ${b.std}, expected ${Math.sqrt(2 / 576)}`);
  });
});

test('init statistics: uniform initializers stay inside their bound and nearly reach it', () => {
  manualSeed(12);
  tidy(() => {
    const w = empty([300, 200]); // fan_in 200, fan_out 300
    const xb = Math.sqrt(6 / 500);
    const x = moments(init.xavierUniform_(w));
    assert.ok(x.maxAbs <= xb && x.maxAbs > 0.99 * xb, `xavier uniform max |w| ${x.maxAbs}, bound ${xb}`);
    assert.ok(Math.abs(x.std / (xb / Math.sqrt(3)) - 1) < 0.02);
    const kb = Math.sqrt(3) * Math.SQRT2 / Math.sqrt(200);
    const k = moments(init.kaimingUniform_(w, 'fan_in', 'relu'));
    assert.ok(k.maxAbs <= kb && k.maxAbs > 0.99 * kb, `kaiming uniform max |w| ${k.maxAbs}, bound ${kb}`);
    const xn = moments(init.xavierNormal_(w));
    assert.ok(Math.abs(xn.std / Math.sqrt(2 / 500) - 1) < 0.02, `xavier normal std ${xn.std}`);
    // PyTorch's default for Linear: kaiming_uniform(a = sqrt 5) = U(+-1/sqrt(fan_in)) on the weight and the bias.
    const lin = new Linear(200, 300);
    const d = moments(lin.weight), db = moments(lin.bias!);
    assert.ok(d.maxAbs <= 1 / Math.sqrt(200) && d.maxAbs > 0.99 / Math.sqrt(200), `default bound ${d.maxAbs}`);
    assert.ok(db.maxAbs <= 1 / Math.sqrt(200));
    lin.dispose();
  });
});

test('initWeight zeroes the bias for the non-default schemes, and rejects unknown names', () => {
  const lin = new Linear(10, 5);
  init.initWeight('kaiming_normal', lin.weight, lin.bias);
  assert.deepEqual(tidy(() => lin.bias!.dataSync()), [0, 0, 0, 0, 0]);
  assert.throws(() => init.initWeight('bogus' as init.InitName, lin.weight, lin.bias), /unknown init 'bogus' \(known: default, kaiming_normal/);
  assert.throws(() => init.fans(lin.bias!), /need a weight of 2 or more dims/);
  lin.dispose();
});
