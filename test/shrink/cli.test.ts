/**
 * `topiary prune --granularity structured` writes the physically smaller model next to the masked
 * one, and `topiary shrink --from <run>` does it for a run folder; bad masks are refused with one
 * line and nothing is written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { manualSeed } from '../../src/core/runtime.js';
import { loadGraphModule } from '../../src/graph/run.js';
import { setupData } from '../../src/experiment/data-setup.js';
import { createModel } from '../../src/models/registry.js';
import { evaluate } from '../../src/train/evaluate.js';
import { ones } from '../../src/tensor/creation.js';
import { saveSafetensors } from '../../src/tensor/safetensors.js';
import { dispose } from '../../src/tensor/scope.js';
import { DATA, NO_MNIST } from '../prune/helpers.js';

const repo = join(import.meta.dirname, '..', '..');
const root = mkdtempSync(join(tmpdir(), 'topiary-shrink-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

function topiary(args: string[]) {
  const r = spawnSync(process.execPath, [join(repo, 'bin/topiary.js'), ...args], { cwd: repo, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: DATA }, timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('prune --granularity structured writes model.shrunk.*; it loads as a GraphModule with the masked model\'s accuracy; shrink --from rewrites it', { skip: NO_MNIST }, async () => {
  const out = join(root, 'run');
  const r = topiary(['prune', '--method', 'random', '--no-finetune', '--granularity', 'structured', '--sparsity', '0.5', '--model', 'lenet5', '--dataset', 'mnist',
    '--subset', '600', '--val-fraction', '0.1', '--threads', '1', '--epochs', '1', '--batch-size', '64', '--lr', '0.05', '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
  assert.ok(existsSync(join(out, 'model.shrunk.graph.json')) && existsSync(join(out, 'model.shrunk.safetensors')));
  assert.ok(res.shrunk.maxAbsDiff <= 1e-5, `max |diff| ${res.shrunk.maxAbsDiff}`);
  assert.ok(res.shrunk.params.shrunk < res.shrunk.params.masked, JSON.stringify(res.shrunk.params));
  assert.ok(res.shrunk.macs.shrunk < 0.6 * res.shrunk.macs.masked, JSON.stringify(res.shrunk.macs));
  const gm = loadGraphModule(join(out, 'model.shrunk'));
  assert.equal(gm.numParameters(), res.shrunk.params.shrunk);
  const data = await setupData(res.config, { dataDir: DATA });
  const acc = evaluate(gm, data.testLoader.epoch(0)).accuracy;
  assert.ok(Math.abs(acc - res.testAccuracy) <= 1e-4, `shrunk ${acc}, masked ${res.testAccuracy}`);
  data.dispose();
  gm.dispose();
  rmSync(join(out, 'model.shrunk.graph.json'));
  const s = topiary(['shrink', '--from', out]);
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /^shrunk lenet5: \d+ -> \d+ parameters, \d+ -> \d+ MACs/);
  assert.ok(existsSync(join(out, 'model.shrunk.graph.json')));
});

/** A run folder by hand: resnet20 on MNIST's shapes, all-ones masks except `edit`. */
function fakeRun(name: string, edit: (masks: Record<string, ReturnType<typeof ones>>) => void, extra: Record<string, unknown> = {}): string {
  manualSeed(2);
  const dir = join(root, name);
  const model = createModel('resnet20', { inputShape: [1, 28, 28], numClasses: 10 });
  const masks = Object.fromEntries(model.namedParameters().filter(([n, p]) => p.ndim > 1 && n.endsWith('weight')).map(([n, p]) => [n, ones(p.shape, { dtype: 'bool' })]));
  edit(masks);
  spawnSync('mkdir', ['-p', dir]);
  saveSafetensors(join(dir, 'model.safetensors'), model.stateDict());
  saveSafetensors(join(dir, 'masks.safetensors'), masks);
  writeFileSync(join(dir, 'result.json'), JSON.stringify({ completed: true, config: { model: 'resnet20', dataset: 'mnist' }, ...extra }));
  dispose(Object.values(masks));
  model.dispose();
  return dir;
}

test('shrink --from refuses bad masks and bad folders with one line, writing nothing', () => {
  const cases: [string, string][] = [
    [fakeRun('split', (m) => { m['layers.1.conv2.weight'].narrow(0, 3, 1).fill_(false); }), "removes channel 3 of 'layers.1.conv2.weight' but keeps channel"],
    [fakeRun('empty', (m) => { m['layers.4.conv1.weight'].fill_(false); }), "removes every channel of 'layers.4.conv1.weight' (32 of 32)"],
    [fakeRun('shape', (m) => { m['layers.0.conv1.weight'] = ones([16, 16], { dtype: 'bool' }); }), "mask for 'layers.0.conv1.weight' has shape [16,16], the parameter [16,16,3,3]"],
    [join(root, 'missing'), "from: '" + join(root, 'missing') + "' is not a run folder"],
    [fakeRun('unstructured', () => {}, { granularity: 'unstructured' }), 'is an unstructured prune run'],
  ];
  for (const [dir, msg] of cases) {
    const r = topiary(['shrink', '--from', dir]);
    assert.notEqual(r.status, 0, dir);
    const first = r.stderr.split('\n')[0];
    assert.ok(first.includes(msg), `${dir}: ${first}`);
    assert.ok(!existsSync(join(dir, 'model.shrunk.graph.json')) && !existsSync(join(dir, 'model.shrunk.safetensors')), `${dir}: nothing written`);
  }
});
