/**
 * Distribution check behind issue 15, section 4: dense LeNet-300-100 on Fashion-MNIST, 8 epochs,
 * SGD lr 0.1 momentum 0.9, cosine per epoch, batch 128, no validation split, one thread; `topiary
 * train` (the CLI, as a user runs it) against bench/torch/mlp_recipe.py free (its own init and
 * shuffling), seed by seed, alternating. Prints each run and the mean +- std (sample std) per arm.
 *
 *   nice -n 15 node --import tsx bench/crosscheck/dense-fashion.ts [--seeds 0,1,2] [--arms topiary,torch,topiary-default]
 *
 * Arms: topiary and torch with --weight-decay 0 (PyTorch's SGD default); topiary-default without
 * --weight-decay (the default recipe fills it); torch-wd with weight decay 5e-4; torch-unit with
 * inputs x / 255 unnormalized (ToTensor alone).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PYTHON, TORCH_SCRIPT } from './lockstep.js';

const ROOT = join(import.meta.dirname, '..', '..');
const RECIPE = ['--epochs', '8', '--lr', '0.1', '--momentum', '0.9', '--batch-size', '128'];

function topiary(seed: number, extra: string[]): number {
  const out = mkdtempSync(join(tmpdir(), 'topiary-fashion-'));
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'train', '--model', 'lenet_300_100', '--dataset', 'fashion_mnist',
      ...RECIPE, '--schedule', 'cosine', '--val-fraction', '0', '--threads', '1', '--seed', String(seed), '--out', join(out, 'run'), '--json', ...extra],
    { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`topiary train failed: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { testAccuracy: number }).testAccuracy;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function torch(seed: number, extra: string[]): number {
  const r = spawnSync(PYTHON, [TORCH_SCRIPT, 'free', '--dataset', 'fashion_mnist', ...RECIPE, '--seed', String(seed), ...extra], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${TORCH_SCRIPT} failed: ${r.stderr}`);
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { testAccuracy: number }).testAccuracy;
}

const ARMS: Record<string, (seed: number) => number> = {
  topiary: (s) => topiary(s, ['--weight-decay', '0']),
  'topiary-default': (s) => topiary(s, []),
  torch: (s) => torch(s, ['--weight-decay', '0']),
  'torch-wd': (s) => torch(s, ['--weight-decay', '5e-4']),
  'torch-unit': (s) => torch(s, ['--weight-decay', '0', '--mean', '0', '--std', '1']),
};

const args = process.argv.slice(2);
const get = (k: string, d: string) => { const i = args.indexOf(`--${k}`); return i >= 0 ? args[i + 1] : d; };
const seeds = get('seeds', '0,1,2').split(',').map(Number);
const arms = get('arms', 'topiary,torch').split(',');
for (const a of arms) if (!ARMS[a]) throw new Error(`unknown arm '${a}' (known: ${Object.keys(ARMS).join(', ')})`);
const acc: Record<string, number[]> = Object.fromEntries(arms.map((a) => [a, []]));
for (const s of seeds) {
  for (const a of arms) {
    const v = ARMS[a](s);
    acc[a].push(v);
    process.stdout.write(`seed ${s} ${a} ${(100 * v).toFixed(2)}\n`);
  }
}
const ms = (xs: number[]) => {
  const m = xs.reduce((p, q) => p + q, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((p, q) => p + (q - m) ** 2, 0) / (xs.length - 1)) : 0;
  return `${(100 * m).toFixed(2)} ± ${(100 * sd).toFixed(2)}`;
};
process.stdout.write(`\n| arm | ${seeds.map((s) => `seed ${s}`).join(' | ')} | mean ± std |\n|---|${seeds.map(() => '---').join('|')}|---|\n`);
for (const a of arms) process.stdout.write(`| ${a} | ${acc[a].map((v) => (100 * v).toFixed(2)).join(' | ')} | ${ms(acc[a])} |\n`);
