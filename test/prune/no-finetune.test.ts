/**
 * `prune --no-finetune` (one-shot on a trained --from model, evaluated without training) needs no
 * --epochs (none, or 0, is accepted), and its result.json does not claim training epochs that did
 * not run: config.epochs is 0 and `defaults` does not list an epochs it filled; the defaults line
 * printed at the start leaves --epochs out. Run hashes (the default output folders) of the
 * configurations that were valid before are unchanged: the hashes below were computed before the change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pruneConfigFrom } from '../../src/cli/prune.js';
import { configHash } from '../../src/experiment/hash.js';
import { dataRoot, repoRoot } from '../nn/util.js';

const present = existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte.gz')) || existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte'));
const skip = !present && `real MNIST not found under ${dataRoot} (set TOPIARY_DATA to a folder holding mnist/)`;

const root = mkdtempSync(join(tmpdir(), 'topiary-noft-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const topiary = (args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin/topiary.js'), ...args], {
  cwd: repoRoot, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: dataRoot }, timeout: 120_000,
});

test('run hashes of existing configurations are unchanged (values from before the change)', () => {
  const base = { method: 'random', sparsity: 0.5, model: 'mlp', dataset: 'mnist', widths: [16] };
  const hash = (o: Record<string, unknown>) => configHash(pruneConfigFrom(o));
  assert.equal(hash({ ...base, finetune: false, epochs: 3 }), '3ff3ee8289d2');
  assert.equal(hash({ ...base, finetune: false }), 'e304c35efe2a', 'epochs filled by the default recipe, as before');
  assert.equal(hash({ ...base }), '20131d52167e');
  assert.equal(hash({ ...base, epochs: 2 }), '4a078b837621');
  // --epochs 0 (refused before) is accepted with --no-finetune: 1 stands in for the schema.
  assert.equal(pruneConfigFrom({ ...base, finetune: false, epochs: 0 }).train.epochs, 1);
  // Training still needs at least one epoch.
  assert.throws(() => pruneConfigFrom({ ...base, epochs: 0 }), /epochs: Too small/);
});

test('magnitude --from a trained model --no-finetune: no --epochs needed, result.json records 0 epochs, the line no --epochs', { skip }, () => {
  const dense = join(root, 'dense');
  const common = ['--model', 'mlp', '--widths', '16', '--dataset', 'mnist', '--subset', '300', '--threads', '1'];
  const t = topiary(['train', ...common, '--epochs', '1', '--out', dense]);
  assert.equal(t.status, 0, t.stderr);
  const prune = (out: string, extra: string[]) => {
    const r = topiary(['prune', '--method', 'magnitude', '--sparsity', '0.5', '--from', dense, '--no-finetune', ...common, ...extra, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    return { r, result: JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) };
  };
  const a = prune(join(root, 'a'), []);
  assert.match(a.r.stderr, /defaults from recipes\/dense-mlp\.yaml: --batch-size 128 /);
  assert.doesNotMatch(a.r.stderr, /--epochs/);
  assert.equal(a.result.trained, false);
  assert.equal(a.result.config.epochs, 0);
  assert.deepEqual(a.result.history, []);
  assert.ok(!a.result.config.defaults.fields.includes('epochs'), JSON.stringify(a.result.config.defaults));
  assert.equal(a.result.config.defaults.fields[0], 'batchSize');
  // --epochs 0, or any count, changes nothing: nothing trains and 0 is recorded.
  const b = prune(join(root, 'b'), ['--epochs', '0']);
  const c = prune(join(root, 'c'), ['--epochs', '5']);
  for (const x of [b, c]) {
    assert.equal(x.result.config.epochs, 0);
    assert.equal(x.result.testAccuracy, a.result.testAccuracy);
    assert.equal(x.result.nonzeroParams, a.result.nonzeroParams);
  }
});
