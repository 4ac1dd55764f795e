/**
 * A run folder resumes only the run it holds: a second command with other settings and the same
 * output folder is refused with a message naming each differing field, before any training, and
 * the folder is left as it was. Settings that change speed only (threads) may differ.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/core/errors.js';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { claimRunFolder } from '../../src/experiment/train-run.js';

const config = (over: Record<string, unknown> = {}) => validate(TrainConfig, { model: 'mlp', dataset: 'mnist', epochs: 3, batchSize: 64, lr: 0.05, seed: 1, ...over });

test('the first claim writes run.json; the same settings (other threads) claim it again', () => {
  const out = mkdtempSync(join(tmpdir(), 'topiary-claim-'));
  try {
    claimRunFolder(out, 'prune_snip', config({ threads: 2 }), { method: 'snip', sparsity: 0.95 });
    const saved = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    assert.equal(saved.identity.kind, 'prune_snip');
    assert.equal(saved.identity.lr, 0.05);
    assert.equal(saved.identity['prune.sparsity'], 0.95);
    assert.equal(saved.identity.threads, undefined);
    claimRunFolder(out, 'prune_snip', config({ threads: 1 }), { method: 'snip', sparsity: 0.95 });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('other training settings or method options are refused, naming each field, and run.json is unchanged', () => {
  const out = mkdtempSync(join(tmpdir(), 'topiary-claim-'));
  try {
    claimRunFolder(out, 'prune_snip', config(), { method: 'snip', sparsity: 0.95 });
    const before = readFileSync(join(out, 'run.json'), 'utf8');
    assert.throws(() => claimRunFolder(out, 'prune_snip', config({ lr: 0.1, epochs: 5 }), { method: 'snip', sparsity: 0.95 }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /epochs: 3 there, 5 here/);
      assert.match(e.message, /lr: 0\.05 there, 0\.1 here/);
      assert.deepEqual(e.issues.map((i) => i.path), ['epochs', 'lr']);
      return true;
    });
    assert.throws(() => claimRunFolder(out, 'prune_snip', config(), { method: 'snip', sparsity: 0.98 }), /prune\.sparsity: 0\.95 there, 0\.98 here/);
    assert.throws(() => claimRunFolder(out, 'train', config(), {}), /kind: "prune_snip" there, "train" here/);
    assert.equal(readFileSync(join(out, 'run.json'), 'utf8'), before);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a corrupt run.json is reported by path', () => {
  const out = mkdtempSync(join(tmpdir(), 'topiary-claim-'));
  try {
    writeFileSync(join(out, 'run.json'), '{not json');
    assert.throws(() => claimRunFolder(out, 'train', config()), (e: unknown) => e instanceof ConfigError && e.message.includes(join(out, 'run.json')));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
