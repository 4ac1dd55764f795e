/**
 * `topiary export --from` the run folders of `topiary search` (HIER-MOEA: its fine-tuned picks in
 * finetune/<label>/) and `topiary prune --method lth` (the winning ticket at the run's top level),
 * all through the real CLI on a tiny MLP and an MNIST subset: the ONNX files onnxruntime runs give
 * the saved model's outputs to 1e-4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/registry.js';
import { loadSafetensors, noGrad, randn, tidy, dispose, type Tensor } from '../../src/tensor/index.js';
import { repoRoot } from '../nn/util.js';

const DATA = process.env.TOPIARY_DATA ?? '/work/shared/datasets';
const skip = !existsSync(join(DATA, 'mnist', 'train-images-idx3-ubyte.gz')) && `real MNIST not found under ${DATA} (set TOPIARY_DATA)`;
const bin = join(repoRoot, 'bin', 'topiary.js');
const tmp = mkdtempSync(join(tmpdir(), 'topiary-export-runs-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]): string {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: DATA, TOPIARY_THREADS: '1' } });
  assert.equal(r.status, 0, `topiary ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function ortOut(file: string, x: Tensor): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(readFileSync(file));
  const r = await s.run({ input: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) });
  await s.release();
  return r.output.data as Float32Array;
}
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

/** The outputs of an mlp [16] holding `file`'s weights, and a check that the masked weights are zero. */
function topiaryOut(file: string, x: Tensor): ArrayLike<number> {
  const m = createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10, widths: [16] });
  const { tensors } = loadSafetensors(file);
  const masks = loadSafetensors(join(file, '..', 'masks.safetensors')).tensors;
  try {
    m.loadStateDict(tensors);
    for (const [n, mask] of Object.entries(masks)) {
      const offMask = tidy(() => tensors[n].abs().mul(mask.logicalNot().float()).sum().item());
      assert.equal(offMask, 0, `${file}: ${n} is zero where its mask is`);
    }
    m.eval();
    return tidy(() => noGrad(() => m.call(x)).dataSync());
  } finally {
    dispose(tensors);
    dispose(masks);
    m.dispose();
  }
}

const train = ['--model', 'mlp', '--widths', '16', '--dataset', 'mnist', '--epochs', '1', '--subset', '1000', '--val-fraction', '0.2', '--threads', '1', '--seed', '0'];

test('topiary export --from a search run takes its fine-tuned knee; --from finetune/<label> takes that pick', { skip }, async () => {
  cli(['train', ...train, '--out', join(tmp, 'dense')]);
  const run = join(tmp, 'search');
  cli(['search', '--from', join(tmp, 'dense', 'model.safetensors'), '--pop', '4', '--phase1-gens', '2', '--phase2-gens', '1', '--val-size', '100',
    '--finetune-epochs', '1', '--pick', '0.5', '--threads', '1', '--seed', '1', '--out', run]);
  const result = JSON.parse(readFileSync(join(run, 'result.json'), 'utf8')) as { picks: { label: string; solution: number }[] };
  // A pick that is the same solution as an earlier one is fine-tuned once, in the earlier one's folder.
  const labels = [...new Set(result.picks.map((p) => p.label))].filter((l) => existsSync(join(run, 'finetune', l)));
  assert.ok(labels.includes('knee'));
  manualSeed(3);
  const x = randn([4, 1, 28, 28]);
  // The run folder: the knee, named, with the other picks.
  const line = cli(['export', '--from', run, '--out', join(tmp, 'search.onnx')]);
  const others = labels.filter((l) => l !== 'knee');
  assert.match(line, new RegExp(`^search pick 'knee'${others.length ? ` \\(others: ${others.join(', ')};` : ':'}.* exported the masked mlp \\(12,730 parameters, .*finetune/knee/model\\.safetensors\\)`));
  const knee = join(run, 'finetune', 'knee', 'model.safetensors');
  assert.ok(maxDiff(await ortOut(join(tmp, 'search.onnx'), x), topiaryOut(knee, x)) <= 1e-4);
  // Each pick's own folder.
  for (const l of labels) {
    const out = join(tmp, `pick-${l}.onnx`);
    assert.match(cli(['export', '--from', join(run, 'finetune', l), '--out', out]), /^exported the masked mlp/);
    assert.ok(maxDiff(await ortOut(out, x), topiaryOut(join(run, 'finetune', l, 'model.safetensors'), x)) <= 1e-4, l);
  }
  // Several picks and no knee: one line listing them, nothing written.
  const amb = join(tmp, 'ambiguous');
  cpSync(join(run, 'result.json'), join(amb, 'result.json'), { recursive: true });
  for (const l of ['a', 'b']) cpSync(join(run, 'finetune', 'knee'), join(amb, 'finetune', l), { recursive: true });
  const bad = spawnSync(process.execPath, [bin, 'export', '--from', amb, '--out', join(amb, 'm.onnx')], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /^topiary: from: '.*ambiguous' is a search run with several fine-tuned picks and no knee; give --from .*finetune\/<label> with one of: a, b\n/);
  assert.ok(!existsSync(join(amb, 'm.onnx')));
  x.dispose();
});

test('topiary export --from an lth run takes the last round\'s winning ticket', { skip }, async () => {
  const run = join(tmp, 'lth');
  cli(['prune', '--method', 'lth', '--sparsity', '0.35', ...train, '--out', run]);
  const r = JSON.parse(readFileSync(join(run, 'result.json'), 'utf8')) as { record: { rounds: number } };
  assert.equal(r.record.rounds, 2);
  assert.deepEqual(readFileSync(join(run, 'model.safetensors')), readFileSync(join(run, 'round_2', 'model.safetensors')));
  assert.deepEqual(readFileSync(join(run, 'masks.safetensors')), readFileSync(join(run, 'round_2', 'masks.safetensors')));
  const line = cli(['export', '--from', run, '--out', join(tmp, 'lth.onnx')]);
  assert.match(line, /^exported the masked mlp \(12,730 parameters, .*lth\/model\.safetensors\) to .*lth\.onnx: ONNX opset 17, input \[N, 1, 28, 28\]/);
  manualSeed(4);
  const x = randn([4, 1, 28, 28]);
  assert.ok(maxDiff(await ortOut(join(tmp, 'lth.onnx'), x), topiaryOut(join(run, 'round_2', 'model.safetensors'), x)) <= 1e-4);
  x.dispose();
});
