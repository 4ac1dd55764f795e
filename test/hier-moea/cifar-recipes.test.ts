/**
 * The paper's own setting, ready to run (issue 14 section 3): recipes/hier-moea-resnet56.yaml and
 * -resnet110.yaml run end to end on CIFAR-10 binary files. A small CIFAR-10 set (250 images in the
 * official file names and record format) is generated, a dense network is trained one epoch with
 * the recipe's own dense section (epochs cut to 1, on the CPU), and then `topiary search --recipe`
 * runs one generation with the population and the validation subset scaled down by flags. The CUDA
 * path runs the same where a GPU is present (skipped with the reason otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cudaAvailable } from '../../src/core/device.js';
import { readRecipe, TrainConfig, validate } from '../../src/experiment/config.js';
import { runTraining } from '../../src/experiment/train-run.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const tmp = mkdtempSync(join(tmpdir(), 'hier-moea-cifar-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** CIFAR-10's binary files with `perFile` records each (labels cycle through the classes, pixels a seeded pattern). */
function writeCifar10(root: string, perFile: number): void {
  const dir = join(root, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  let seed = 12345;
  const rand = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed >>> 24; };
  const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
  files.forEach((f, k) => {
    const bytes = new Uint8Array(perFile * 3073);
    for (let i = 0; i < perFile; i++) {
      const label = (i + k) % 10;
      bytes[i * 3073] = label;
      // A class-dependent colour plus noise, so the labels are learnable at all.
      for (let p = 0; p < 3072; p++) bytes[i * 3073 + 1 + p] = (label * 25 + (p >> 10) * 40 + (rand() >> 2)) & 255;
    }
    writeFileSync(join(dir, f), bytes);
  });
}
writeCifar10(tmp, 50);

const cases = [['resnet56', 'recipes/hier-moea-resnet56.yaml'], ['resnet110', 'recipes/hier-moea-resnet110.yaml']] as const;
const devices = [['cpu', false], ['cuda', !cudaAvailable() && 'no CUDA device here (libtorch reports none)']] as const;

for (const [name, recipe] of cases) {
  for (const [device, skip] of devices) {
    test(`${recipe} runs end to end on CIFAR-10 files, one generation scaled down by flags (${device})`, { skip }, async () => {
      const r = readRecipe(join(repo, recipe));
      const dense = { ...(r.dense as Record<string, unknown>), epochs: 1, device, threads: 1 };
      delete (dense as { milestones?: unknown }).milestones;
      const dir = join(tmp, `${name}-${device}`);
      const run = await runTraining(validate(TrainConfig, { ...dense, schedule: 'constant' }), { out: join(dir, 'dense'), dataDir: tmp });
      run.model.dispose();
      run.data.dispose();
      const out = join(dir, 'search');
      const cli = spawnSync(process.execPath, [join(repo, 'bin', 'topiary.js'), 'search', '--recipe', join(repo, recipe), '--from', join(dir, 'dense', 'model.safetensors'),
        '--device', device, '--threads', '1', '--pop', '4', '--phase1-gens', '1', '--phase2-gens', '0', '--val-size', '16', '--bn-batches', '1', '--bn-batch-size', '8',
        '--eval-batch-size', '16', '--finetune-epochs', '0', '--pick', '0.5', '--data-dir', tmp, '--out', out, '--json'], { encoding: 'utf8', timeout: 600_000 });
      assert.equal(cli.status, 0, cli.stderr);
      const res = JSON.parse(cli.stdout);
      assert.equal(res.completed, true);
      assert.equal(res.evaluations, 4, 'one generation of 4 candidates');
      const saved = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
      assert.equal(saved.model, name);
      assert.equal(saved.dataset, 'cifar10');
      assert.equal(saved.config.pop, 4);
      assert.equal(saved.config.valSize, 16);
      assert.equal(saved.config.finetuneWeightDecay, (r as { finetuneWeightDecay: number }).finetuneWeightDecay, 'the recipe\'s other fields hold');
      assert.ok(res.solutions.length >= 1 && res.solutions.every((s: { valError: number }) => s.valError >= 0 && s.valError <= 1));
      for (const f of ['pareto-masks.safetensors', 'fronts.svg', 'history.json']) assert.ok(existsSync(join(out, f)), f);
    });
  }
}
