/**
 * The training loop on synthetic data (no dataset needed): callback order and context, validation
 * every epoch and best-epoch selection, schedules applied per epoch, label smoothing, no leaks;
 * and checkpoints: atomic writes, only the newest kept, a crash mid-write leaves the previous one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerializationError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { Linear, ReLU, Sequential } from '../../src/nn/index.js';
import { SGD, schedules } from '../../src/optim/index.js';
import { memory, tensor, tidy, type Tensor } from '../../src/tensor/index.js';
import { evaluate, loadCheckpoint, saveCheckpoint, train, writeJsonAtomic, type BatchLike, type Callback } from '../../src/train/index.js';

/** Two Gaussian blobs in 4-d, labels 0/1, fixed by the seed; batches are fresh tensors (the loop disposes them). */
function blobs(n: number, seed: number): { x: number[][]; y: number[] } {
  let s = seed * 7919 + 1;
  const rnd = () => ((s = (s * 48271) % 2147483647) / 2147483647);
  const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const x: number[][] = [], y: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    x.push([0, 1, 2, 3].map((d) => gauss() + (c ? 1.5 : -1.5) * (d < 2 ? 1 : 0)));
    y.push(c);
  }
  return { x, y };
}
function batches(d: { x: number[][]; y: number[] }, bs: number): () => Iterable<BatchLike> {
  return function* () {
    for (let i = 0; i < d.y.length; i += bs) {
      yield { x: tensor(d.x.slice(i, i + bs)), y: tensor(d.y.slice(i, i + bs), { dtype: 'int64' }) };
    }
  };
}
const net = () => new Sequential(new Linear(4, 8), new ReLU(), new Linear(8, 2));

test('callbacks run at the five points, in order, with the step context', () => {
  manualSeed(0);
  const model = net();
  const opt = new SGD(model.namedParameters(), { lr: 0.1 });
  const calls: string[] = [];
  const cb: Callback = {
    name: 'spy',
    onEpochStart: (c) => calls.push(`epochStart ${c.epoch} step ${c.step}`),
    beforeForward: (c) => { assert.ok(c.x && c.y && !c.loss); calls.push(`beforeForward ${c.step}`); },
    afterBackward: (c) => {
      assert.ok(c.loss && c.logits, 'loss and logits are in the context after backward');
      assert.ok(tidy(() => model.parameters().every((p) => p.grad !== null)), 'gradients exist after backward');
      calls.push(`afterBackward ${c.step}`);
    },
    afterStep: (c) => calls.push(`afterStep ${c.step}`),
    onEpochEnd: (c, r) => { r.extra.mark = `e${c.epoch}`; calls.push(`epochEnd ${c.epoch} step ${c.step}`); },
  };
  const d = blobs(8, 1);
  const res = train({ model, optimizer: opt, epochs: 2, trainBatches: batches(d, 4), callbacks: [cb] });
  assert.deepEqual(calls, [
    'epochStart 0 step 0', 'beforeForward 0', 'afterBackward 0', 'afterStep 0', 'beforeForward 1', 'afterBackward 1', 'afterStep 1', 'epochEnd 0 step 2',
    'epochStart 1 step 2', 'beforeForward 2', 'afterBackward 2', 'afterStep 2', 'beforeForward 3', 'afterBackward 3', 'afterStep 3', 'epochEnd 1 step 4',
  ]);
  assert.deepEqual(res.history.map((h) => h.extra.mark), ['e0', 'e1']);
  assert.equal(res.completed, true);
  assert.equal(res.bestVal, null);
  opt.dispose();
  model.dispose();
});

test('training learns, validates each epoch, picks the best epoch, applies the schedule, and leaks nothing', () => {
  manualSeed(1);
  const model = net();
  const opt = new SGD(model.namedParameters(), { lr: 0.2, momentum: 0.9 });
  const tr = blobs(256, 2), va = blobs(128, 3);
  const live = memory().tensors;
  const progress: number[] = [];
  const res = train({
    model, optimizer: opt, epochs: 4, trainBatches: batches(tr, 32), valBatches: batches(va, 64), schedule: schedules.step(2, 0.5),
    labelSmoothing: 0.1, onProgress: (p) => progress.push(p.batch),
  });
  assert.equal(memory().tensors, live + 4, 'only the 4 momentum buffers are new');
  assert.deepEqual(res.history.map((h) => h.lr), [0.2, 0.2, 0.1, 0.1]);
  assert.ok(res.history.every((h) => h.val && h.val.n === 128));
  assert.ok(res.finalVal!.accuracy > 0.95, `validation accuracy ${res.finalVal!.accuracy}`);
  const best = Math.max(...res.history.map((h) => h.val!.accuracy));
  assert.equal(res.bestVal!.accuracy, best);
  assert.equal(res.history[res.bestEpoch].val!.accuracy, best);
  assert.ok(res.history[3].trainLoss < res.history[0].trainLoss);
  assert.deepEqual(progress.slice(0, 8), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(progress.length, 32);
  assert.equal(model.training, true);
  // evaluate: eval mode inside, mode restored, counts every example.
  const ev = evaluate(model, batches(va, 50)());
  assert.equal(ev.n, 128);
  assert.equal(ev.accuracy, res.finalVal!.accuracy);
  assert.equal(memory().tensors, live + 4);
  opt.dispose();
  model.dispose();
});

test('train refuses a non-positive or fractional epoch count', () => {
  const model = net();
  const opt = new SGD(model.parameters(), { lr: 0.1 });
  assert.throws(() => train({ model, optimizer: opt, epochs: 0, trainBatches: () => [] }), /epochs must be a positive integer, got 0/);
  assert.throws(() => train({ model, optimizer: opt, epochs: 1.5, trainBatches: () => [] }), /got 1.5/);
  model.dispose();
});

function tmp(): string { return mkdtempSync(join(tmpdir(), 'topiary-ckpt-')); }
const vec = (v: number[]): Tensor => tensor(v);

test('checkpoints: written under a temporary name and renamed; only the newest kept; round-trip', () => {
  const dir = tmp();
  try {
    tidy(() => {
      saveCheckpoint(dir, 0, { tensors: { model: { w: vec([1, 2]) } }, json: { epoch: 0 } });
      saveCheckpoint(dir, 1, { tensors: { model: { w: vec([3, 4]) }, optimizer: { 'w.momentum_buffer': vec([5, 6]) } }, json: { epoch: 1, note: 'x' } });
    });
    assert.deepEqual(readdirSync(dir).sort(), ['epoch_1', 'latest.json'], 'no temporary folders or files, the older epoch removed');
    assert.deepEqual(readdirSync(join(dir, 'epoch_1')).sort(), ['model.safetensors', 'optimizer.safetensors', 'state.json']);
    const ck = loadCheckpoint(dir, ['model', 'optimizer', 'cb_absent'])!;
    assert.equal(ck.epoch, 1);
    assert.deepEqual(ck.json, { epoch: 1, note: 'x' });
    assert.deepEqual(Object.keys(ck.tensors).sort(), ['model', 'optimizer']);
    tidy(() => assert.deepEqual(ck.tensors.model.w.dataSync(), [3, 4]));
    for (const g of Object.values(ck.tensors)) for (const t of Object.values(g)) t.dispose();
    assert.equal(loadCheckpoint(join(dir, 'none'), ['model']), null, 'no checkpoint: null');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('checkpoints: a crash mid-write leaves the previous checkpoint in force', () => {
  const dir = tmp();
  try {
    tidy(() => saveCheckpoint(dir, 0, { tensors: { model: { w: vec([1, 2]) } }, json: { epoch: 0 } }));
    // A crash while epoch 1 was being written: a half-made temporary folder (a truncated file in it).
    mkdirSync(join(dir, '.epoch_1.tmp-99999'));
    writeFileSync(join(dir, '.epoch_1.tmp-99999', 'model.safetensors'), Buffer.from([1, 2, 3]));
    // A crash after the rename of epoch 2's folder but before latest.json moved to it.
    mkdirSync(join(dir, 'epoch_2'));
    writeFileSync(join(dir, 'epoch_2', 'state.json'), '{"epoch": 2');
    // And a stray temporary of latest.json.
    writeFileSync(join(dir, 'latest.json.tmp-99999'), '{"epoch": 2, "pa');
    const ck = loadCheckpoint(dir, ['model'])!;
    assert.equal(ck.epoch, 0);
    tidy(() => assert.deepEqual(ck.tensors.model.w.dataSync(), [1, 2]));
    ck.tensors.model.w.dispose();
    // The next save replaces the debris of its own epoch cleanly.
    tidy(() => saveCheckpoint(dir, 2, { tensors: { model: { w: vec([7, 8]) } }, json: { epoch: 2 } }));
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'epoch_2', 'state.json'), 'utf8')), { epoch: 2 });
    assert.ok(!existsSync(join(dir, 'epoch_0')));
    // A corrupt pointer is an error naming the file, not a silent restart.
    writeFileSync(join(dir, 'latest.json'), '{"epoch": ');
    assert.throws(() => loadCheckpoint(dir, ['model']), (e: Error) => e instanceof SerializationError && e.message.includes(join(dir, 'latest.json')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeJsonAtomic replaces a file whole and leaves no temporary behind', () => {
  const dir = tmp();
  try {
    const f = join(dir, 'result.json');
    writeJsonAtomic(f, { a: 1 });
    writeJsonAtomic(f, { a: 2, b: [1, 2] });
    assert.deepEqual(JSON.parse(readFileSync(f, 'utf8')), { a: 2, b: [1, 2] });
    assert.deepEqual(readdirSync(dir), ['result.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
