/**
 * `topiary reproduce lenet300-sweep`: a small sweep of one-epoch LeNet-300-100 runs on all of MNIST
 * (dense, and random, SNIP and GraSP at 78.9%, the PMP paper's sparsity, over seeds), into
 * docs/results/lenet300-sweep.md. It is the queue's scaling yardstick (issue 16: "a sweep of 8
 * one-epoch LeNet-300-100 runs", `--seeds 2`, bench/queue.ts --part sweep): runs of a few seconds
 * each, the size at which the fixed cost of a job shows. Training: the PMP 78.9% recipe
 * (recipes/pmp-lenet300-789.yaml) for one epoch, without its warm-up epoch (there is only one) and
 * with PyTorch's default initialization (its Kaiming fan-out init needs the warm-up). Budgets: full
 * (all 54k training images), smoke (a 4000-image subset, for tests).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { setNumThreads } from '../core/runtime.js';
import { finishedResult } from '../prune/methods/stage.js';
import type { PruneEnv } from '../prune/methods/types.js';
import { runPrune, validatePruneOptions } from '../prune/options.js';
import { markdownTable, pctMeanStd } from '../report/table.js';
import { TrainConfig, validate } from './config.js';
import { setupData } from './data-setup.js';
import { versions } from './env.js';
import { configHash } from './hash.js';
import { registerReproduction, type Budget, type ReproduceOptions, type RunSpec } from './reproduce.js';
import { runTraining } from './train-run.js';

export const SWEEP_TRAIN = {
  model: 'lenet_300_100', dataset: 'mnist', epochs: 1, batchSize: 128, optimizer: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4,
  schedule: 'cosine', valFraction: 0.11, augment: { rotation: 10, translation: 0.1, interpolation: 'nearest' },
} as const;

const SPARSITY = 0.789;
const METHODS = ['dense', 'random', 'snip', 'grasp'] as const;

const env: PruneEnv = {
  runTraining: (c, o, h) => runTraining(c as TrainConfig, o, h),
  setupData: (c, o) => setupData(c as TrainConfig, o),
  versions,
};

/** A run as a queue job carries this (checked again by TrainConfig and the prune schemas when it runs). */
const SweepRunSpec = z.object({
  method: z.enum(METHODS),
  seed: z.number().int().min(0),
  train: z.record(z.string(), z.unknown()),
  prune: z.record(z.string(), z.unknown()).nullable(),
  threads: z.number().int().positive(),
}).strict();
type SweepRunSpec = z.infer<typeof SweepRunSpec>;

function trainFor(budget: Budget): Record<string, unknown> {
  if (budget === 'reduced') throw new ConfigError('--budget: lenet300-sweep has the smoke and full budgets only (its full budget is one epoch)', [{ path: 'budget', message: 'no reduced budget' }]);
  return budget === 'smoke' ? { ...SWEEP_TRAIN, subset: 4000 } : { ...SWEEP_TRAIN };
}

/** The runs in order, seed by seed. */
function plan(o: ReproduceOptions): { dir: string; name: string; spec: SweepRunSpec }[] {
  const train = trainFor(o.budget);
  validate(TrainConfig, { ...train, seed: 0 }, 'lenet300-sweep training');
  const threads = Number(process.env.TOPIARY_THREADS ?? 1);
  const out: { dir: string; name: string; spec: SweepRunSpec }[] = [];
  for (let seed = 0; seed < o.seeds; seed++) {
    for (const method of METHODS) {
      const prune = method === 'dense' ? null : { method, sparsity: SPARSITY };
      const id = method === 'dense' ? 'dense' : `${method}_789`;
      out.push({ dir: join(o.budget, `${id}_${configHash({ train, prune })}`, `seed_${seed}`), name: `lenet300-sweep/${o.budget} ${id} seed ${seed}`, spec: { method, seed, train, prune, threads } });
    }
  }
  return out;
}

async function runOne(raw: Record<string, unknown>, out: string, o: { dataDir?: string; progress: boolean }): Promise<void> {
  const s = validate(SweepRunSpec, raw, 'lenet300-sweep run');
  if (finishedResult(out)) return;
  setNumThreads(s.threads);
  const train = validate(TrainConfig, { ...s.train, seed: s.seed }, 'lenet300-sweep training');
  const t0 = performance.now();
  let r: Record<string, unknown>;
  if (!s.prune) {
    const run = await runTraining(train, { out, dataDir: o.dataDir, progress: o.progress });
    run.model.dispose();
    run.data.dispose();
    r = run.result;
  } else {
    const prune = validatePruneOptions(s.prune, train, 'lenet300-sweep prune options');
    r = await runPrune({ train, prune, run: { out, dataDir: o.dataDir, progress: o.progress } }, env);
  }
  if (o.progress) {
    process.stderr.write(`lenet300-sweep ${s.method} seed ${s.seed}: test ${(100 * (r.testAccuracy as number)).toFixed(2)}% (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  }
}

/** The document, from the finished runs under o.out (the same from a local run and from a queue's). */
function writeDoc(o: ReproduceOptions): void {
  const runs = plan(o);
  const rows = METHODS.map((m) => {
    const rs = runs.filter((r) => r.spec.method === m).map((r) => finishedResult(join(o.out, r.dir))).filter((r): r is Record<string, unknown> => r !== null);
    const acc = rs.map((r) => r.testAccuracy as number);
    const sp = rs.map((r) => (r.achievedSparsity as number | undefined) ?? 0);
    return [m === 'dense' ? 'dense' : `${m} at ${(100 * SPARSITY).toFixed(1)}%`, rs.length ? `${(100 * Math.max(...sp)).toFixed(2)}%` : '—', rs.length ? pctMeanStd(acc) : '—', rs.length];
  });
  mkdirSync(dirname(o.doc), { recursive: true });
  const head = existsSync(o.doc) ? readFileSync(o.doc, 'utf8').split('<!-- generated')[0].trimEnd() : '# LeNet-300-100 sweep: one epoch per run';
  writeFileSync(o.doc, [
    head, '', '<!-- generated by `topiary reproduce lenet300-sweep` below this line -->', '',
    `Command: \`${o.command}\`; seeds 0..${o.seeds - 1}; ${o.budget === 'smoke' ? 'a 4000-image subset (smoke budget)' : 'all of MNIST\'s training split'}; one epoch per run ` +
      '(the PMP 78.9% recipe without its warm-up, PyTorch\'s default initialization); 1 libtorch thread per run. Test accuracy on the 10,000 test images, mean ± sample std over seeds.',
    '',
    markdownTable(['Method', 'Sparsity (achieved, max over seeds)', 'Test accuracy %', 'Seeds'], rows),
    '',
  ].join('\n'));
}

registerReproduction({
  name: 'lenet300-sweep',
  description: 'one-epoch LeNet-300-100 runs on MNIST (dense; random, SNIP, GraSP at 78.9%) over seeds: the queue\'s scaling sweep',
  run: async (o) => {
    const runs = plan(o);
    for (const r of runs) await runOne(r.spec, join(o.out, r.dir), o);
    writeDoc(o);
  },
  distributed: {
    plan: (o): RunSpec[] => plan(o).map((r) => ({ dir: r.dir, name: r.name, spec: r.spec, needs: [] })),
    runOne: (spec, root, dir, o) => runOne(spec, join(root, dir), o),
    writeDoc,
  },
});
