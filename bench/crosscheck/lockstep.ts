/**
 * Lock-step comparison with PyTorch (issue 15, section 4): the same initial weights and the same
 * sample order on both sides, then topiary's training loop (its loader, model, SGD, schedule and
 * loss, as `topiary train` builds them) and bench/torch/mlp_recipe.py (idiomatic PyTorch) train the
 * same number of steps; the per-step losses and the final weights are compared. Both sides run the
 * same libtorch kernels on one thread, so an honest match is equal to float rounding; a difference in
 * what either side computes (normalization, initialization, the lr of an epoch, weight decay, the
 * loss's reduction, momentum) shows at the step it starts.
 *
 *   node --import tsx bench/crosscheck/lockstep.ts [--dataset fashion_mnist] [--seed 0] [--steps 300]
 *        [--samples 60000] [--epochs 8] [--lr 0.1] [--momentum 0.9] [--weight-decay 0] [--nesterov]
 *
 * test/train/torch-lockstep.test.ts runs a short one against a live /usr/bin/python3.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { manualSeed, setNumThreads } from '../../src/core/runtime.js';
import { DataLoader, loadDataset } from '../../src/data/index.js';
import { createModel } from '../../src/models/registry.js';
import { makeSchedule, type ScheduleName } from '../../src/optim/schedule.js';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { makeOptimizer } from '../../src/experiment/train-run.js';
import { loadSafetensors, saveSafetensors } from '../../src/tensor/safetensors.js';
import { train } from '../../src/train/loop.js';
import { evaluate } from '../../src/train/evaluate.js';
import { tidy } from '../../src/tensor/scope.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const TORCH_SCRIPT = join(HERE, '..', 'torch', 'mlp_recipe.py');
export const PYTHON = process.env.TOPIARY_TORCH_PYTHON ?? '/usr/bin/python3';

export interface LockstepConfig {
  dataset: string;
  seed: number;
  /** Steps to train (over epochs as needed). */
  steps: number;
  /** The first n training samples (default all). */
  samples?: number;
  /** Also evaluate both final models on the test set. */
  test?: boolean;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  widths: number[];
}

export interface LockstepResult {
  topiary: { losses: number[]; lrs: number[]; testAccuracy?: number };
  torch: { losses: number[]; lrs: number[]; version: string; testAccuracy?: number | null };
  /** Largest |topiary's init - PyTorch's nn.Linear init after torch.manual_seed(seed)|. */
  initDiff: number;
  /** Largest |topiary - torch| of each parameter after the last step. */
  weightDiff: Record<string, number>;
  /** Largest |loss difference| over the steps, and the first step where it exceeds `tol`. */
  maxLossDiff: number;
  firstDivergence: number | null;
}

/** Whether /usr/bin/python3 (or $TOPIARY_TORCH_PYTHON) imports torch; the reason when not. */
export function torchAvailable(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON}: ${r.error.message}`;
  if (r.status !== 0) return `${PYTHON} cannot import torch (Debian: apt-get install python3-torch)`;
  return null;
}

export async function lockstep(c: LockstepConfig, o: { dir?: string; dataDir?: string; tol?: number; exactInput?: boolean } = {}): Promise<LockstepResult> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'topiary-lockstep-'));
  mkdirSync(dir, { recursive: true });
  setNumThreads(1);
  manualSeed(c.seed);
  const ds = await loadDataset(c.dataset, { split: 'train', dataDir: o.dataDir });
  try {
    const n = c.samples ?? ds.length;
    const view = { dataset: ds, indices: Int32Array.from({ length: n }, (_, i) => i) };
    const model = createModel(c.widths.join(',') === '300,100' ? 'lenet_300_100' : 'mlp', { inputShape: [...ds.shape], numClasses: ds.numClasses, widths: c.widths });
    saveSafetensors(join(dir, 'init.safetensors'), model.stateDict());
    // What topiary train builds: a shuffling loader seeded with the run's seed, SGD over the named
    // parameters, the epoch-stepped schedule over all the run's epochs.
    const loader = new DataLoader(view, { batchSize: c.batchSize, shuffle: true, seed: c.seed });
    const epochsRun = Math.min(c.epochs, Math.ceil(c.steps / loader.length));
    const order = new Int32Array(epochsRun * n);
    for (let e = 0; e < epochsRun; e++) order.set(loader.order(e), e * n);
    writeFileSync(join(dir, 'order.bin'), Buffer.from(order.buffer));
    // The optimizer and schedule from a validated training config, as experiment/train-run.ts makes them.
    const tc = validate(TrainConfig, { model: 'lenet_300_100', dataset: c.dataset, epochs: c.epochs, batchSize: c.batchSize, optimizer: 'sgd', lr: c.lr,
      momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay, schedule: 'cosine', valFraction: 0, seed: c.seed }, 'lockstep');
    const opt = makeOptimizer(model, tc);
    const schedule = makeSchedule({ name: tc.schedule as ScheduleName, epochs: tc.epochs, warmupEpochs: tc.warmupEpochs });
    const losses: number[] = [];
    let step = 0;
    const res = train({
      model, optimizer: opt, epochs: epochsRun, schedule,
      trainBatches: function* (e) {
        for (const b of loader.epoch(e)) {
          if (step >= c.steps) { b[Symbol.dispose](); return; }
          step++;
          yield b;
        }
      },
      callbacks: [{ name: 'record', afterStep: (ctx) => { losses.push(ctx.loss!.item()); } }],
    });
    const steps = losses.length;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...c, steps, samplesPerEpoch: n, topiaryNormalization: o.exactInput ?? false }));
    const r = spawnSync(PYTHON, [TORCH_SCRIPT, 'lockstep', dir], {
      encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: o.dataDir ?? process.env.TOPIARY_DATA ?? '' },
    });
    if (r.status !== 0) throw new Error(`${TORCH_SCRIPT} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
    const tj = JSON.parse(readFileSync(join(dir, 'torch.json'), 'utf8')) as { losses: number[]; lrs: number[]; torch: string; initDiff: number; testAccuracy: number | null };
    const theirs = loadSafetensors(join(dir, 'torch_final.safetensors'));
    const weightDiff: Record<string, number> = {};
    for (const [name, p] of model.namedParameters()) {
      const t = theirs.tensors[name];
      if (!t) throw new Error(`torch_final.safetensors lacks ${name}`);
      weightDiff[name] = tidy(() => p.sub(t).abs().max().item());
      t.dispose();
    }
    const tol = o.tol ?? 1e-4;
    let maxLossDiff = 0, firstDivergence: number | null = null;
    for (let i = 0; i < Math.max(steps, tj.losses.length); i++) {
      const d = Math.abs((losses[i] ?? NaN) - (tj.losses[i] ?? NaN));
      if (!(d <= tol) && firstDivergence === null) firstDivergence = i;
      if (d > maxLossDiff || Number.isNaN(d)) maxLossDiff = Number.isNaN(d) ? Infinity : Math.max(maxLossDiff, d);
    }
    let testAccuracy: number | undefined;
    if (c.test) {
      const testDs = await loadDataset(c.dataset, { split: 'test', dataDir: o.dataDir });
      testAccuracy = evaluate(model, new DataLoader(testDs, { batchSize: 1000 }).epoch(0)).accuracy;
      testDs.dispose();
    }
    opt.dispose();
    model.dispose();
    return {
      topiary: { losses, lrs: res.history.map((h) => h.lr), testAccuracy }, torch: { losses: tj.losses, lrs: tj.lrs, version: tj.torch, testAccuracy: tj.testAccuracy },
      initDiff: tj.initDiff, weightDiff, maxLossDiff, firstDivergence,
    };
  } finally {
    ds.dispose();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const get = (k: string, d: string) => { const i = args.indexOf(`--${k}`); return i >= 0 ? args[i + 1] : d; };
  const c: LockstepConfig = {
    dataset: get('dataset', 'fashion_mnist'), seed: +get('seed', '0'), steps: +get('steps', '300'),
    samples: args.includes('--samples') ? +get('samples', '0') : undefined, epochs: +get('epochs', '8'),
    batchSize: +get('batch-size', '128'), lr: +get('lr', '0.1'), momentum: +get('momentum', '0.9'),
    weightDecay: +get('weight-decay', '0'), nesterov: args.includes('--nesterov'), widths: get('widths', '300,100').split(',').map(Number), test: args.includes('--test'),
  };
  const why = torchAvailable();
  if (why) { process.stderr.write(`lockstep: ${why}\n`); process.exit(1); }
  const r = await lockstep(c, { dir: args.includes('--dir') ? get('dir', '') : undefined });
  const show = (i: number) => `step ${i}: topiary ${r.topiary.losses[i]?.toFixed(7)} torch ${r.torch.losses[i]?.toFixed(7)} diff ${Math.abs(r.topiary.losses[i] - r.torch.losses[i]).toExponential(2)}`;
  const n = r.topiary.losses.length;
  for (const i of [0, 1, 2, 5, 10, 50, 100, 200, n - 1].filter((i, k, a) => i < n && a.indexOf(i) === k)) process.stdout.write(show(i) + '\n');
  process.stdout.write(`lrs topiary [${r.topiary.lrs.map((x) => x.toPrecision(6))}] torch [${r.torch.lrs.map((x) => x.toPrecision(6))}]\n`);
  process.stdout.write(`init vs PyTorch's own for seed ${c.seed}: max |diff| ${r.initDiff}\n`);
  process.stdout.write(`max |loss diff| ${r.maxLossDiff.toExponential(2)}, first step beyond 1e-4: ${r.firstDivergence ?? 'none'}\n`);
  if (c.test) process.stdout.write(`test accuracy: topiary ${(100 * r.topiary.testAccuracy!).toFixed(2)}% torch (same init and order) ${(100 * r.torch.testAccuracy!).toFixed(2)}%\n`);
  process.stdout.write(`final weights max |diff|: ${Object.entries(r.weightDiff).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
