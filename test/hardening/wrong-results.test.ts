/**
 * Attacks on results: each used to pass with exit 0 and a wrong number. Divergence now stops at
 * the first non-finite loss naming the epoch and step; a checkpoint with NaN weights, a missing
 * piece (model, optimizer, a callback's state) or a state.json with a missing or mistyped field is
 * refused naming the file and field; a state dict of another dtype (a bool mask, bytes relabelled
 * as I32 in a safetensors header) is refused by loadStateDict; and stray debris of killed
 * checkpoint writes is cleaned at the next start. In-process, on a tiny synthetic problem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DivergenceError, DtypeError, SerializationError, ShapeError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { Linear, ReLU, Sequential } from '../../src/nn/index.js';
import { SGD } from '../../src/optim/index.js';
import { decodeSafetensors, encodeSafetensors, loadSafetensors, saveSafetensors, tensor, tidy, memory, type Tensor } from '../../src/tensor/index.js';
import { train, type BatchLike, type Callback } from '../../src/train/index.js';
import { loadWeights } from '../../src/prune/methods/stage.js';
import { EvoConfig, EvoPop, toPopulationModel } from '../../src/prune/evo-pop/index.js';
import { validate } from '../../src/experiment/config.js';

const root = mkdtempSync(join(tmpdir(), 'topiary-wrong-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const net = () => new Sequential(new Linear(4, 8), new ReLU(), new Linear(8, 2));
const X = Array.from({ length: 16 }, (_, i) => [i % 2 ? 1 : -1, (i % 3) - 1, 0.5, -0.5]);
const Y = X.map((_, i) => i % 2);
const batches = () => function* (): Iterable<BatchLike> {
  for (let i = 0; i < 16; i += 4) yield { x: tensor(X.slice(i, i + 4)), y: tensor(Y.slice(i, i + 4), { dtype: 'int64' }) };
};

function run(dir: string, o: { lr?: number; momentum?: number; epochs?: number; stop?: number; callbacks?: Callback[] } = {}) {
  manualSeed(0);
  const model = net();
  const opt = new SGD(model.namedParameters(), { lr: o.lr ?? 0.1, momentum: o.momentum ?? 0.9 });
  try {
    return train({ model, optimizer: opt, epochs: o.epochs ?? 3, trainBatches: batches(), checkpointDir: dir, stopAfterEpochs: o.stop, callbacks: o.callbacks });
  } finally {
    opt.dispose();
    model.dispose();
  }
}

const fails = (f: () => unknown, cls: Function, ...res: RegExp[]) => assert.throws(f, (e: unknown) => {
  assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
  for (const re of res) assert.match((e as Error).message, re);
  assert.ok((e as Error).message.length < 600, 'one readable line');
  return true;
});

/** A checkpoint folder after one epoch of three, copied fresh for each corruption. */
const base = join(root, 'base');
run(base, { stop: 1 });
function variant(name: string, corrupt: (epochDir: string) => void): string {
  const dir = join(root, name);
  cpSync(base, dir, { recursive: true });
  corrupt(join(dir, 'epoch_0'));
  return dir;
}
const editState = (d: string, f: (s: Record<string, unknown>) => void) => {
  const p = join(d, 'state.json');
  const s = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  f(s);
  writeFileSync(p, JSON.stringify(s));
};

test('divergence: lr 1e6 stops at the first non-finite loss, naming epoch, batch and step, and writes no checkpoint of it', () => {
  const dir = join(root, 'diverge');
  let epoch = 0;
  fails(() => run(dir, { lr: 1e6 }), DivergenceError, /training diverged: the loss is (NaN|Infinity) at epoch [1-3] of 3, batch \d \(step \d+\)/, /learning rate 1000000/, /lower learning rate/);
  try { run(dir, { lr: 1e6 }); } catch (e) { epoch = Number(/at epoch (\d)/.exec((e as Error).message)![1]); }
  const latest = existsSync(join(dir, 'latest.json')) ? (JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as { epoch: number }).epoch : -1;
  assert.equal(latest, epoch - 2, 'the newest checkpoint is the epoch before the diverged one (0-based), none of the diverged epoch');
});

test('EVO-POP: --eta 1e308 diverges; the error names both the learning rate and --eta', () => {
  manualSeed(0);
  const model = toPopulationModel(net());
  const e = validate(EvoConfig, { dynamics: 'replicator', eta: 1e308, every: 1 });
  const evo = new EvoPop(model, { ...e, dynamics: e.dynamics as string });
  const opt = new SGD(model.namedParameters(), { lr: 0.1, momentum: 0.9 });
  try {
    fails(() => train({ model, optimizer: opt, epochs: 3, trainBatches: batches(), callbacks: [evo.callback()] }), DivergenceError,
      /training diverged: the loss is (NaN|Infinity) at epoch [1-3] of 3/, /Try a lower learning rate \(--lr\) or a lower --eta \(the selection dynamics' step, now 1e\+308\)/);
  } finally {
    evo.dispose(); opt.dispose(); model.dispose();
  }
  // Plain training keeps the plain advice (no --eta where there is none).
  fails(() => run(join(root, 'diverge-plain'), { lr: 1e6 }), DivergenceError, /Try a lower learning rate \(--lr\)$/);
});

test('state.json: the run\'s time so far is kept (elapsedSeconds); a checkpoint written before the field still resumes, from 0', () => {
  const s = JSON.parse(readFileSync(join(base, 'epoch_0', 'state.json'), 'utf8')) as { elapsedSeconds: number; history: { seconds: number }[] };
  assert.ok(s.elapsedSeconds >= s.history[0].seconds, `elapsed ${s.elapsedSeconds} covers epoch 0's ${s.history[0].seconds} s`);
  const resumed = run(variant('resume-elapsed', () => {}));
  assert.equal(resumed.priorSeconds, s.elapsedSeconds);
  const old = run(variant('old-state', (d) => editState(d, (st) => { delete st.elapsedSeconds; })));
  assert.equal(old.resumedFrom, 0);
  assert.equal(old.completed, true);
  assert.equal(old.priorSeconds, 0);
  const after = JSON.parse(readFileSync(join(root, 'old-state', 'epoch_2', 'state.json'), 'utf8')) as { elapsedSeconds: number; history: { seconds: number }[] };
  assert.ok(after.elapsedSeconds >= after.history[1].seconds + after.history[2].seconds, 'the resumed piece counts its own epochs');
});

test('a checkpoint with NaN weights (or NaN momentum) is refused, naming the file and the tensor', () => {
  for (const f of ['model', 'optimizer']) {
    const dir = variant(`nan-${f}`, (d) => {
      const { tensors, metadata } = loadSafetensors(join(d, `${f}.safetensors`));
      const name = Object.keys(tensors).sort()[0];
      const bad = tidy(() => tensors[name].mul(NaN));
      saveSafetensors(join(d, `${f}.safetensors`), { ...tensors, [name]: bad }, metadata);
      for (const t of [...Object.values(tensors), bad]) t.dispose();
    });
    fails(() => run(dir), DivergenceError, new RegExp(`epoch_0/${f}\\.safetensors: tensor '[^']+' holds NaN or infinite values`), /refusing to resume/);
  }
});

test('a checkpoint missing a piece is refused naming the file: model, optimizer, a callback\'s state', () => {
  for (const f of ['model', 'optimizer']) {
    const dir = variant(`no-${f}`, (d) => rmSync(join(d, `${f}.safetensors`)));
    fails(() => run(dir), SerializationError, new RegExp(`epoch_0/${f}\\.safetensors: missing from the checkpoint; refusing to resume`));
  }
  // A callback that saved state: a checkpoint written with it, its file then removed.
  const withCb = join(root, 'cb');
  const cb = (): Callback => ({ name: 'masks', stateDict: () => ({ tensors: { m: tensor([1, 0]) }, json: { n: 1 } }), loadStateDict: (s) => { for (const t of Object.values(s.tensors)) t.dispose(); } });
  tidy(() => { run(withCb, { stop: 1, callbacks: [cb()] }); });
  rmSync(join(withCb, 'epoch_0', 'cb_masks.safetensors'));
  fails(() => run(withCb, { callbacks: [cb()] }), SerializationError, /epoch_0\/cb_masks\.safetensors: missing from the checkpoint/);
});

test('state.json: a missing rng, a history that is not a list, a wrong epoch or step, not an object: one error naming the field', () => {
  const cases: [string, (s: Record<string, unknown>) => void, RegExp][] = [
    ['no-rng', (s) => { delete s.rng; }, /state\.json: rng is missing/],
    ['bad-rng', (s) => { s.rng = 'not base64!'; }, /state\.json: rng is not a base64 generator state/],
    ['history', (s) => { s.history = { epoch: 0 }; }, /state\.json: history is not a list of epoch records/],
    ['epoch', (s) => { s.epoch = 5; }, /state\.json: epoch is 5, but latest\.json names epoch 0/],
    ['step', (s) => { s.step = -1; }, /state\.json: step is -1, not a non-negative integer/],
    ['optimizer', (s) => { s.optimizer = { lr: 'fast' }; }, /state\.json: optimizer is not \{lr: number, stepCount: integer\}/],
    ['callbacks', (s) => { delete s.callbacks; }, /state\.json: callbacks is missing/],
    ['elapsed', (s) => { s.elapsedSeconds = -3; }, /state\.json: elapsedSeconds is -3, not a non-negative number of seconds/],
  ];
  for (const [name, edit, re] of cases) fails(() => run(variant(`state-${name}`, (d) => editState(d, edit))), SerializationError, re);
  fails(() => run(variant('state-array', (d) => writeFileSync(join(d, 'state.json'), '[1]'))), SerializationError, /state\.json: not a JSON object/);
  fails(() => run(variant('state-json', (d) => writeFileSync(join(d, 'state.json'), '{"epoch": '))), SerializationError, /state\.json: not valid JSON/);
});

test('debris of killed checkpoint writes (*.tmp-PID, half-deleted epoch_N) is cleaned at the next start; the resume is unaffected', () => {
  const dir = variant('debris', () => {});
  mkdirSync(join(dir, '.epoch_1.tmp-424242'));
  writeFileSync(join(dir, '.epoch_1.tmp-424242', 'model.safetensors'), 'half');
  writeFileSync(join(dir, 'latest.json.tmp-424242'), '{"ep');
  mkdirSync(join(dir, 'epoch_7'));
  writeFileSync(join(dir, 'epoch_7', 'state.json'), '{}');
  const r = run(dir);
  assert.equal(r.resumedFrom, 0);
  assert.deepEqual(readdirSync(dir).sort(), ['epoch_2', 'latest.json']);
});

test('loadStateDict refuses another dtype (bool into a float weight; float bytes relabelled I32 in a safetensors header)', () => {
  const m = new Linear(2, 2);
  const sd = m.stateDict();
  const before = memory().tensors;
  tidy(() => {
    const boolW = tensor([[true, false], [false, true]]);
    fails(() => m.loadStateDict({ weight: boolW, bias: sd.bias }), DtypeError, /loadStateDict: 'weight' is bool in the state dict but float32 in the model/);
    // The same bytes, the header's dtype changed from F32 to I32 (same size, so offsets still check).
    const buf = encodeSafetensors({ weight: sd.weight, bias: sd.bias });
    const hlen = Number(buf.readBigUInt64LE(0));
    const header = buf.subarray(8, 8 + hlen).toString('utf8').replace(/"F32"/g, '"I32"');
    const relabelled = Buffer.concat([buf.subarray(0, 8), Buffer.from(header.padEnd(hlen)), buf.subarray(8 + hlen)]);
    const d = decodeSafetensors(relabelled, 'relabelled.safetensors');
    assert.equal(d.tensors.weight.dtype, 'int32');
    fails(() => m.loadStateDict(d.tensors), DtypeError, /'weight' is int32 in the state dict but float32/);
    for (const t of Object.values(d.tensors)) t.dispose();
  });
  // No tensor of this test is left alive. At most `before`, not exactly: the safetensors buffers can
  // start a garbage collection whose finalizers free earlier tests' unreachable handles meanwhile
  // (a fresh-clone CI run counted 2 against 10).
  assert.ok(memory().tensors <= before, `${memory().tensors} live tensors after the test, ${before} before`);
  m.dispose();
});

test('error messages list at most ten names: a state dict of 300,000 tensors gives a short line', () => {
  const m = new Linear(2, 2);
  const one = tensor([0]);
  const sd: Record<string, Tensor> = { weight: m.stateDict().weight };
  for (let i = 0; i < 300_000; i++) sd[`extra.${i}`] = one;
  fails(() => m.loadStateDict(sd), SerializationError, /missing bias; unexpected extra\.0, extra\.1, .*extra\.9 and 299990 more$/);
  one.dispose();
  m.dispose();
});

test('tensor() of a 100,000-deep nested array (or a cyclic one) throws ShapeError, not RangeError', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  fails(() => tensor(deep as number[]), ShapeError, /nested array deeper than 64 levels/);
  const cyc: unknown[] = [];
  cyc.push(cyc);
  fails(() => tensor(cyc as number[]), ShapeError, /deeper than 64/);
});

test('prune --from (loadWeights) refuses a model of NaNs, naming the file and the tensor', () => {
  const m = net();
  const file = join(root, 'nan-model.safetensors');
  tidy(() => saveSafetensors(file, Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, k === '2.bias' ? t.mul(Infinity) : t]))));
  fails(() => loadWeights(m, file), DivergenceError, /nan-model\.safetensors: tensor '2\.bias' holds NaN or infinite values/);
  m.dispose();
});
