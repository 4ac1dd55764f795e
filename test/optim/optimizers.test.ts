/**
 * SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW against PyTorch 1.13: the same
 * initial parameters and the same gradient each step (test/fixtures/nn-optim.json); the parameters
 * after every step must match. Also: state save/load resumes a run exactly; bad options are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Adam, AdamW, SGD, type Optimizer } from '../../src/optim/index.js';
import { dispose, keep, memory, tidy, type Tensor } from '../../src/tensor/index.js';
import { assertTensorClose, fixture, fromRec, noLeaks, type Rec } from '../nn/util.js';

interface OptCase { name: string; kind: 'sgd' | 'adam' | 'adamw'; opts: Record<string, any>; after: Rec[][] }
const fx = fixture<{ optim: { params: Rec[]; grads: Rec[][]; cases: OptCase[] } }>('nn-optim.json').optim;

function make(c: OptCase, ps: Tensor[]): Optimizer {
  const o = c.opts;
  const named: [string, Tensor][] = ps.map((p, i) => [`p${i}`, p]);
  if (c.kind === 'sgd') return new SGD(named, { lr: o.lr, momentum: o.momentum, dampening: o.dampening, nesterov: o.nesterov, weightDecay: o.weightDecay });
  const ao = { lr: o.lr, betas: o.betas as [number, number] | undefined, eps: o.eps, weightDecay: o.weightDecay };
  return c.kind === 'adam' ? new Adam(named, ao) : new AdamW(named, ao);
}

/** Fresh copies of the fixture's parameters, as kept leaves (as a Module holds them). */
const freshParams = () => fx.params.map((r) => keep(fromRec(r, true)));
function setGrads(ps: Tensor[], step: number): void {
  ps.forEach((p, i) => tidy(() => { p.grad = fromRec(fx.grads[step][i]); }));
}

for (const c of fx.cases) {
  test(`optimizer: ${c.name}, ${c.after.length} steps`, async () => {
    await noLeaks(c.name, () => {
      const ps = freshParams();
      const opt = make(c, ps);
      c.after.forEach((want, s) => {
        setGrads(ps, s);
        opt.step();
        ps.forEach((p, i) => assertTensorClose(p, want[i], `${c.name}: p${i} after step ${s + 1}`, [2e-6, 1e-7]));
      });
      assert.equal(opt.stepCount, c.after.length);
      opt.dispose();
      dispose(ps);
    });
  });

  test(`optimizer state save/load resumes exactly: ${c.name}`, async () => {
    await noLeaks(`${c.name} resume`, () => {
      const ps = freshParams();
      const a = make(c, ps);
      for (let s = 0; s < 2; s++) { setGrads(ps, s); a.step(); }
      const sd = a.stateDict();
      const keys = Object.keys(sd.tensors).sort();
      if (c.kind === 'sgd') assert.deepEqual(keys, c.opts.momentum ? ['p0.momentum_buffer', 'p1.momentum_buffer'] : []);
      else assert.deepEqual(keys, ['p0.exp_avg', 'p0.exp_avg_sq', 'p1.exp_avg', 'p1.exp_avg_sq']);
      // A new optimizer over the same parameters, loaded from the saved state (copies of it).
      const saved = { tensors: Object.fromEntries(Object.entries(sd.tensors).map(([k, t]) => [k, keep(t.clone())])), meta: { ...sd.meta } };
      a.dispose();
      const b = make(c, ps);
      b.loadStateDict(saved);
      dispose(saved.tensors);
      for (let s = 2; s < c.after.length; s++) { setGrads(ps, s); b.step(); }
      ps.forEach((p, i) => assertTensorClose(p, c.after[c.after.length - 1][i], `${c.name}: p${i} after resuming`, [2e-6, 1e-7]));
      b.dispose();
      dispose(ps);
    });
  });
}

test('parameters without a gradient are skipped (no state is made for them)', () => {
  const ps = freshParams();
  const opt = new SGD([['a', ps[0]], ['b', ps[1]]], { lr: 0.1, momentum: 0.9 });
  const before = tidy(() => ps[1].dataSync());
  tidy(() => { ps[0].grad = fromRec(fx.grads[0][0]); });
  opt.step();
  assert.deepEqual(tidy(() => ps[1].dataSync()), before);
  assert.deepEqual(Object.keys(opt.stateDict().tensors), ['a.momentum_buffer']);
  opt.dispose();
  dispose(ps);
});

test('the step consumes the gradient handles it reads and zeroGrad clears grads (no leaks over many steps)', () => {
  const ps = freshParams();
  const opt = new Adam(ps, { lr: 0.01 });
  setGrads(ps, 0);
  opt.step();
  const live = memory().tensors;
  for (let s = 0; s < 20; s++) { setGrads(ps, s % 4); opt.step(); opt.zeroGrad(); }
  assert.equal(memory().tensors, live);
  assert.equal(ps[0].grad, null);
  opt.dispose();
  dispose(ps);
});

test('lr is settable between steps and the step uses it', () => {
  const ps = freshParams();
  const opt = new SGD(ps, { lr: 0.1 });
  opt.lr = 0;
  const before = tidy(() => ps[0].dataSync());
  setGrads(ps, 0);
  opt.step();
  assert.deepEqual(tidy(() => ps[0].dataSync()), before);
  assert.equal(opt.baseLr, 0.1);
  opt.dispose();
  dispose(ps);
});

test('bad options are refused with messages naming them', () => {
  const ps = freshParams();
  assert.throws(() => new SGD(ps, { lr: -0.1 }), /lr must be a positive number, got -0.1/);
  assert.throws(() => new SGD(ps, { lr: 0 }), /lr must be a positive number, got 0/);
  assert.throws(() => new SGD(ps, { lr: 0.1, momentum: -1 }), /momentum must be a non-negative number, got -1/);
  assert.throws(() => new SGD(ps, { lr: 0.1, nesterov: true }), /nesterov needs momentum > 0 and dampening 0/);
  assert.throws(() => new SGD(ps, { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /nesterov needs momentum > 0 and dampening 0/);
  assert.throws(() => new Adam(ps, { lr: 0.1, betas: [0.9, 1] }), /betas must be in \[0, 1\)/);
  assert.throws(() => new AdamW(ps, { lr: 0.1, weightDecay: -1 }), /weightDecay must be a non-negative number/);
  const opt = new SGD([['w', ps[0]]], { lr: 0.1, momentum: 0.9 });
  assert.throws(() => opt.loadStateDict({ tensors: { 'other.momentum_buffer': ps[0] }, meta: { lr: 0.1, stepCount: 1 } }), /names parameter 'other'/);
  opt.dispose();
  dispose(ps);
});
