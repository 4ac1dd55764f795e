/** bench/deployed.ts's helpers: command lines, ratios, the last checkpoint, finished steps, the compressed file's round trip. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { expand, fmtKiB, latestCheckpoint, pruneStep, ratio, roundTrip, shellLine, stepDone } from '../../bench/lib/deployed-methods.js';
import { tensor } from '../../src/tensor/index.js';

test('shellLine quotes only what the shell needs', () => {
  assert.equal(shellLine(['prune', '--from', '/a/b_c.safetensors', '--pick', '0.9,0.5']), 'prune --from /a/b_c.safetensors --pick 0.9,0.5');
  assert.equal(shellLine(['--label', "it's a b"]), `--label 'it'\\''s a b'`);
  assert.deepEqual(expand('/r', ['--out', '{root}/x', '{root}']), ['--out', '/r/x', '/r']);
});

test('pruneStep: a recipe file per step, train without a prune section', () => {
  const s = pruneStep('pmp_98', { train: { epochs: 20, lr: 0.05 }, prune: { method: 'pmp', sparsity: 0.98 } }, 0, ['--from', '{root}/d']);
  assert.deepEqual(s.args, ['prune', '--recipe', '{root}/recipes/pmp_98.yaml', '--seed', '0', '--threads', '1', '--from', '{root}/d', '--out', '{root}/pmp_98']);
  assert.deepEqual(s.recipe!.body, { epochs: 20, lr: 0.05, prune: { method: 'pmp', sparsity: 0.98 } });
  assert.equal(pruneStep('a/b', { train: { epochs: 1 } }, 3).args[0], 'train');
  assert.equal(pruneStep('a/b', { train: { epochs: 1 } }, 3).recipe!.name, 'a_b');
});

test('ratio and fmtKiB', () => {
  assert.equal(ratio(300, 100), '3.00x');
  assert.equal(ratio(100, 300), '0.33x');
  assert.equal(ratio(NaN, 1), 'n/a');
  assert.equal(ratio(1, 0), 'n/a');
  assert.equal(fmtKiB(1536), '1.5 KiB');
});

test('latestCheckpoint and stepDone read the run folder', () => {
  const d = mkdtempSync(join(tmpdir(), 'deployed-helpers-'));
  try {
    const ck = join(d, 'checkpoints');
    assert.throws(() => latestCheckpoint(ck), /no latest.json/);
    mkdirSync(join(ck, 'epoch_1'), { recursive: true });
    writeFileSync(join(ck, 'latest.json'), JSON.stringify({ epoch: 1, path: '../etc' }));
    assert.throws(() => latestCheckpoint(ck), /not an epoch_<n> folder name/);
    writeFileSync(join(ck, 'latest.json'), JSON.stringify({ epoch: 1, path: 'epoch_1' }));
    assert.throws(() => latestCheckpoint(ck), /missing/);
    writeFileSync(join(ck, 'epoch_1', 'model.safetensors'), '');
    assert.equal(latestCheckpoint(ck), join(ck, 'epoch_1', 'model.safetensors'));

    const step = { dir: 'run', args: [], done: 'result.json' };
    assert.equal(stepDone(d, step), false);
    mkdirSync(join(d, 'run'));
    writeFileSync(join(d, 'run', 'result.json'), JSON.stringify({ completed: false }));
    assert.equal(stepDone(d, step), false, 'an interrupted run is not done');
    writeFileSync(join(d, 'run', 'result.json'), '{not json');
    assert.equal(stepDone(d, step), false);
    writeFileSync(join(d, 'run', 'result.json'), JSON.stringify({ completed: true }));
    assert.equal(stepDone(d, step), true);
    writeFileSync(join(d, 'run', 'evo.json'), '{}');
    assert.equal(stepDone(d, { ...step, done: 'evo.json' }), true);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('roundTrip tells bit-identical from signed zeros lost from different values', () => {
  const a = { w: tensor([1, -0, 0, 2.5], { shape: [2, 2] }), b: tensor([0.5]) };
  assert.equal(roundTrip(a, { w: tensor([1, -0, 0, 2.5], { shape: [2, 2] }), b: tensor([0.5]) }), 'bit-identical');
  assert.equal(roundTrip(a, { w: tensor([1, 0, 0, 2.5], { shape: [2, 2] }), b: tensor([0.5]) }), 'equal values; 1 negative zeros came back as +0');
  assert.equal(roundTrip(a, { w: tensor([1, 0, 0, 2.4], { shape: [2, 2] }), b: tensor([0.5]) }), 'DIFFERENT (w[3])');
  assert.equal(roundTrip(a, { w: tensor([1, -0, 0, 2.5], { shape: [2, 2] }) }), 'DIFFERENT (tensor names)');
  assert.equal(roundTrip(a, { w: tensor([1, -0, 0, 2.5, 3], { shape: [5] }), b: tensor([0.5]) }), 'DIFFERENT (w)');
});
