/**
 * `topiary prune --model vit_tiny --granularity structured --unit heads`: PMP's progressive head
 * schedule on MNIST, the shrunk model written beside the masked one (heads removed, counts per
 * layer), its accuracy the masked model's, `topiary shrink --from` rewriting it by heads; a bad --unit is one line naming the field, nothing written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setupData } from '../../src/experiment/data-setup.js';
import { loadGraphModule } from '../../src/graph/run.js';
import { evaluate } from '../../src/train/evaluate.js';
import { DATA, NO_MNIST } from './helpers.js';

const repo = join(import.meta.dirname, '..', '..');
const root = mkdtempSync(join(tmpdir(), 'topiary-heads-cli-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

function topiary(args: string[]) {
  const r = spawnSync(process.execPath, [join(repo, 'bin/topiary.js'), ...args], { cwd: repo, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: DATA }, timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const small = ['--dataset', 'mnist', '--subset', '600', '--val-fraction', '0.1', '--threads', '1', '--batch-size', '64', '--lr', '0.05'];

test('prune --unit heads with pmp: 2, 4, 6, then 8 of 16 heads removed epoch by epoch; model.shrunk.* has the kept heads and the masked accuracy', { skip: NO_MNIST }, async () => {
  const out = join(root, 'pmp');
  const r = topiary(['prune', '--model', 'vit_tiny', '--method', 'pmp', '--granularity', 'structured', '--unit', 'heads', '--sparsity', '0.5',
    '--epochs', '4', '--phase', '4', ...small, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^pmp vit_tiny on mnist: sparsity 50\.00% \(requested 50\.00%\)/);
  const res = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
  assert.equal(res.pruneOptions.unit, 'heads');
  assert.deepEqual(res.record.followed.map((f: { achieved: number }) => f.achieved), [0.125, 0.25, 0.375, 0.5]);
  assert.equal(res.sparsityLayers.length, 8); // in_proj_weight and out_proj.weight of 4 blocks
  assert.equal(res.shrunk.heads.reduce((a: number, b: number) => a + b, 0), 8);
  assert.ok(res.shrunk.heads.every((h: number) => h >= 1 && h <= 4));
  assert.deepEqual(res.shrunk.mlp, [128, 128, 128, 128]);
  assert.ok(res.shrunk.maxAbsDiff <= 1e-5);
  // 4 of 8 heads' q/k/v rows and out_proj columns: 8 * 4 * 16 * 64 weights and 8 * 3 * 16 biases gone.
  assert.equal(res.shrunk.params.masked - res.shrunk.params.shrunk, 8 * 4 * 16 * 64 + 8 * 3 * 16);
  const gm = loadGraphModule(join(out, 'model.shrunk'));
  const data = await setupData(res.config, { dataDir: DATA });
  const acc = evaluate(gm, data.testLoader.epoch(0)).accuracy;
  assert.ok(Math.abs(acc - res.testAccuracy) <= 1e-4, `shrunk ${acc}, masked ${res.testAccuracy}`);
  assert.ok(res.testAccuracy > 0.3, `test accuracy ${res.testAccuracy} after 4 short epochs`);
  data.dispose();
  gm.dispose();
  // topiary shrink --from rewrites it from the run's masks, by heads.
  rmSync(join(out, 'model.shrunk.graph.json'));
  const sh = topiary(['shrink', '--from', out]);
  assert.equal(sh.status, 0, sh.stderr);
  assert.match(sh.stdout, new RegExp(`^shrunk vit_tiny: ${res.shrunk.params.masked} -> ${res.shrunk.params.shrunk} parameters`));
  assert.ok(existsSync(join(out, 'model.shrunk.graph.json')));
});

test('prune --unit heads on a model without attention, or unstructured: one line naming unit, non-zero, nothing written', () => {
  for (const [args, re] of [
    [['--model', 'lenet5', '--granularity', 'structured'], /^topiary: unit: the model has no attention heads/],
    [['--model', 'vit_tiny'], /unit: 'heads' removes whole units: needs --granularity structured/],
  ] as const) {
    const out = join(root, `bad-${args.length}`);
    const r = topiary(['prune', '--method', 'random', '--unit', 'heads', '--sparsity', '0.5', '--epochs', '1', ...args, ...small, '--out', out]);
    assert.notEqual(r.status, 0);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('(run with --verbose'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
    assert.ok(!existsSync(out), 'nothing written');
  }
});
