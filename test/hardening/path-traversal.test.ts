/**
 * Attack: a run folder's files name paths, and a resume trusts them. checkpoints/latest.json pointed
 * at `../../V` used to load V as the checkpoint and then delete V (recursively) at the next save.
 * Every such path must resolve inside the run folder, symlinks included; a file that claims
 * otherwise is refused with its name, and the outside folder is left exactly as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerializationError } from '../../src/core/errors.js';
import { assertInside, resolveInside } from '../../src/core/safe-fs.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { tensor, tidy } from '../../src/tensor/index.js';
import { assertOneLine, skipNoMnist, snapshot, topiary } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'topiary-traversal-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const args = (out: string) => ['train', '--model', 'lenet_300_100', '--dataset', 'mnist', '--epochs', '2', '--batch-size', '50', '--lr', '0.05',
  '--subset', '300', '--stop-after-epochs', '1', '--threads', '1', '--out', out];

test('the issue\'s attack: latest.json pointing at ../../V is refused, V and the run are left intact', { skip: skipNoMnist }, () => {
  const R = join(root, 'R'), V = join(root, 'V');
  const first = topiary(args(R));
  assert.equal(first.status, 0, first.stderr);
  mkdirSync(V);
  cpSync(join(R, 'checkpoints', 'epoch_0'), V, { recursive: true });
  writeFileSync(join(V, 'precious.txt'), 'do not delete\n');
  const before = snapshot(V);
  const runBefore = snapshot(R);
  writeFileSync(join(R, 'checkpoints', 'latest.json'), JSON.stringify({ epoch: 0, path: '../../V' }));
  const r = topiary(args(R));
  assertOneLine(r, [/checkpoints\/latest\.json/, /"\.\.\/\.\.\/V" leads outside/], 'traversal');
  assert.deepEqual(snapshot(V), before, 'the outside folder is untouched');
  const runAfter = snapshot(R);
  assert.deepEqual(Object.keys(runAfter).sort(), Object.keys(runBefore).sort(), 'nothing written in the run either');

  // The same folder, symlinked: epoch_0 replaced by a link to V. Refused, V intact.
  rmSync(join(R, 'checkpoints', 'epoch_0'), { recursive: true });
  symlinkSync(V, join(R, 'checkpoints', 'epoch_0'));
  writeFileSync(join(R, 'checkpoints', 'latest.json'), JSON.stringify({ epoch: 0, path: 'epoch_0' }));
  const s = topiary(args(R));
  assertOneLine(s, [/checkpoints\/latest\.json/, /outside/, /symlink/], 'symlinked epoch folder');
  assert.deepEqual(snapshot(V), before);

  // The whole checkpoints folder a symlink out of the run.
  rmSync(join(R, 'checkpoints'), { recursive: true });
  mkdirSync(join(root, 'W'));
  writeFileSync(join(root, 'W', 'keep.txt'), 'x');
  symlinkSync(join(root, 'W'), join(R, 'checkpoints'));
  const w = topiary(args(R));
  assertOneLine(w, [/checkpoints/, /outside/], 'symlinked checkpoints folder');
  assert.equal(readFileSync(join(root, 'W', 'keep.txt'), 'utf8'), 'x');
  assert.deepEqual(snapshot(V), before);
});

const tmp = () => mkdtempSync(join(root, 'ck-'));
const refused = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof SerializationError && re.test(e.message));

test('latest.json: absolute, climbing, renamed or mistyped paths are refused before anything is read or removed', () => {
  const dir = tmp();
  const outside = mkdtempSync(join(root, 'outside-'));
  writeFileSync(join(outside, 'f'), 'x');
  tidy(() => saveCheckpoint(dir, 0, { tensors: { model: { w: tensor([1, 2]) } }, json: { epoch: 0 } }));
  const pointer = join(dir, 'latest.json');
  const cases: [unknown, RegExp][] = [
    [{ epoch: 0, path: outside }, /is absolute/],
    [{ epoch: 0, path: '../' + outside.split('/').pop() }, /leads outside/],
    [{ epoch: 0, path: 'epoch_0/../../x' }, /leads outside/],
    [{ epoch: 0, path: 'epoch_1' }, /not the checkpoint folder of epoch 0/],
    [{ epoch: 0, path: '.' }, /not the checkpoint folder of epoch 0/],
    [{ epoch: -1, path: 'epoch_0' }, /epoch -1 is not a non-negative integer/],
    [{ epoch: 0, path: 7 }, /path 7 is not a string/],
    [[1, 2], /not a checkpoint pointer/],
  ];
  for (const [v, re] of cases) {
    writeFileSync(pointer, JSON.stringify(v));
    refused(() => loadCheckpoint(dir, ['model']), re);
    // The save path reads the same pointer first: it must not remove what the pointer names.
    refused(() => tidy(() => saveCheckpoint(dir, 1, { tensors: { model: { w: tensor([3, 4]) } }, json: { epoch: 1 } })), re);
    assert.equal(readFileSync(join(outside, 'f'), 'utf8'), 'x');
  }
  rmSync(dir, { recursive: true });
});

test('a checkpoint file that is a symlink out of the checkpoint folder is refused', () => {
  const dir = tmp();
  tidy(() => saveCheckpoint(dir, 0, { tensors: { model: { w: tensor([1, 2]) } }, json: { epoch: 0 } }));
  const elsewhere = join(mkdtempSync(join(root, 'elsewhere-')), 'model.safetensors');
  cpSync(join(dir, 'epoch_0', 'model.safetensors'), elsewhere);
  rmSync(join(dir, 'epoch_0', 'model.safetensors'));
  symlinkSync(elsewhere, join(dir, 'epoch_0', 'model.safetensors'));
  refused(() => loadCheckpoint(dir, ['model']), /model\.safetensors resolves to .*outside/);
  rmSync(join(dir, 'epoch_0', 'model.safetensors'));
  cpSync(elsewhere, join(dir, 'epoch_0', 'model.safetensors'));
  rmSync(join(dir, 'epoch_0', 'state.json'));
  symlinkSync('/etc/hostname', join(dir, 'epoch_0', 'state.json'));
  refused(() => loadCheckpoint(dir, ['model']), /state\.json resolves to .*outside/);
  rmSync(dir, { recursive: true });
});

test('resolveInside / assertInside: lexical and real containment', () => {
  const dir = tmp();
  mkdirSync(join(dir, 'a'));
  assert.equal(resolveInside(dir, 'a/b', 'x.json'), join(dir, 'a', 'b'));
  assert.equal(resolveInside(dir, 'not/yet/here', 'x.json'), join(dir, 'not', 'yet', 'here'));
  assert.throws(() => resolveInside(dir, '', 'x.json'), /x\.json: path "" is not a relative path/);
  assert.throws(() => resolveInside(dir, 'a\0b', 'x.json'), /not a relative path/);
  symlinkSync('/tmp', join(dir, 'link'));
  assert.throws(() => resolveInside(dir, 'link/x', 'x.json'), /x\.json: link\/x resolves to .*outside/);
  symlinkSync(join(dir, 'a'), join(dir, 'inner'));
  assert.equal(resolveInside(dir, 'inner/x', 'x.json'), join(dir, 'inner', 'x'), 'a symlink that stays inside is fine');
  assertInside(dir, join(dir, 'a'), 'x');
  assert.ok(existsSync(dir));
  rmSync(dir, { recursive: true });
});
