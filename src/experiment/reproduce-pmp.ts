/**
 * `topiary reproduce pmp`: the MNIST table of the PMP paper (LeNet-300-100 at 78.9% and 98%) and
 * the MNIST baselines it is judged against (SNIP, GraSP, one-shot magnitude, random, GMP, LTH with
 * its controls), over seeds, into docs/results/pmp.md with the paper's figure beside ours.
 *
 * Budgets: `full` is the papers' epochs (PMP 160 / 200, LTH 56 per round); `smoke` proves the
 * pipeline in minutes on a 4000-example subset; `reduced` (`--budget reduced`, or
 * TOPIARY_PMP_BUDGET=reduced, which overrides the flag) keeps the full data and every setting but divides
 * the epochs by 10, for machines where the full budget does not fit. Each budget's runs live in
 * their own folder, every finished run is skipped on a re-run, and the document shows each budget
 * that has results in its own section, marked as such.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { setNumThreads } from '../core/runtime.js';
import { getMethod } from '../prune/methods/index.js';
import type { PruneEnv } from '../prune/methods/types.js';
import { finishedResult } from '../prune/methods/stage.js';
import { runPrune, validatePruneOptions } from '../prune/options.js';
import { markdownTable, mean, pctMeanStd } from '../report/table.js';
import { readRecipe, TrainConfig, validate } from './config.js';
import { setupData } from './data-setup.js';
import { versions } from './env.js';
import { configHash } from './hash.js';
import { registerReproduction, type ReproduceOptions } from './reproduce.js';
import { runTraining } from './train-run.js';

export interface PmpBudget { name: 'smoke' | 'reduced' | 'full'; scale: number; subset?: number; lthEpochs: number; minEpochs: number }
export const PMP_BUDGETS: Record<PmpBudget['name'], PmpBudget> = {
  full: { name: 'full', scale: 1, lthEpochs: 56, minEpochs: 1 },
  reduced: { name: 'reduced', scale: 0.1, lthEpochs: 6, minEpochs: 2 },
  smoke: { name: 'smoke', scale: 0.0125, subset: 4000, lthEpochs: 1, minEpochs: 2 },
};

const RECIPES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'recipes');
const env: PruneEnv = {
  runTraining: (c, o, h) => runTraining(c as TrainConfig, o, h),
  setupData: (c, o) => setupData(c as TrainConfig, o),
  versions,
};

interface Exp {
  id: string;
  method: string;
  sparsity: number;
  train: Record<string, unknown>;
  prune?: Record<string, unknown>;
  /** Paper figure (test accuracy, %) and the issue's target, for the table. */
  paper?: string;
  target?: string;
}

function recipe(name: string): { train: Record<string, unknown>; prune: Record<string, unknown> } {
  const { prune, ...train } = readRecipe(join(RECIPES, name));
  return { train, prune: prune as Record<string, unknown> };
}

/** The experiments of the table under a budget: epochs (and PMP's phase, GMP's end) scaled. */
export function pmpExperiments(b: PmpBudget): Exp[] {
  const ep = (e: number) => Math.max(b.minEpochs, Math.round(e * b.scale));
  const sub = (t: Record<string, unknown>): Record<string, unknown> => ({ ...t, ...(b.subset ? { subset: b.subset } : {}) });
  const r789 = recipe('pmp-lenet300-789.yaml'), r98 = recipe('pmp-lenet300-98.yaml'), lth = recipe('pmp-lth-lenet300.yaml'), rsnip = recipe('pmp-snip-lenet300.yaml');
  // The SNIP paper's own training (multistep every 25k iterations), scaled like the rest.
  const tsnip = sub({ ...rsnip.train, epochs: ep(140), milestones: [ep(47), ep(94)] });
  const t789 = sub({ ...r789.train, epochs: ep(160) }), t98 = sub({ ...r98.train, epochs: ep(200) });
  const p789 = Math.min(ep(60), t789.epochs as number), p98 = Math.min(ep(80), t98.epochs as number);
  const trainFor = (s: number) => (s >= 0.95 ? t98 : t789);
  // PMP first: a reproduction cut short still has the method's own rows.
  const exps: Exp[] = [
    { id: 'pmp_789', method: 'pmp', sparsity: 0.789, train: t789, prune: { ...r789.prune, phase: p789 }, paper: '98.88', target: '≥ 98.7' },
    { id: 'pmp_98', method: 'pmp', sparsity: 0.98, train: t98, prune: { ...r98.prune, phase: p98 }, paper: '98.35', target: '≥ 98.2' },
    { id: 'dense', method: 'dense', sparsity: 0, train: t789 },
  ];
  for (const s of [0.789, 0.95, 0.98]) {
    const tag = String(s).slice(2);
    const snipPaper = s === 0.95 ? '98.4 (error 1.6)' : s === 0.98 ? '97.6 (error 2.4)' : undefined;
    const snipTarget = s === 0.95 ? '≥ 98.2 (error ≤ 1.8)' : s === 0.98 ? '≥ 97.4 (error ≤ 2.6)' : undefined;
    exps.push(
      { id: `snip_${tag}`, method: 'snip', sparsity: s, train: trainFor(s), prune: { method: 'snip', sparsity: s } },
      { id: `grasp_${tag}`, method: 'grasp', sparsity: s, train: trainFor(s), prune: { method: 'grasp', sparsity: s } },
      { id: `magnitude_${tag}`, method: 'magnitude', sparsity: s, train: { ...t789, epochs: ep(40), lr: 0.01 }, prune: { method: 'magnitude', sparsity: s } },
      { id: `magnitude_noft_${tag}`, method: 'magnitude', sparsity: s, train: t789, prune: { method: 'magnitude', sparsity: s, finetune: false } },
      { id: `random_${tag}`, method: 'random', sparsity: s, train: trainFor(s), prune: { method: 'random', sparsity: s } },
    );
    if (s !== 0.789) {
      // Pruned at initialization and trained as the SNIP paper trains (its figures are for this setup).
      exps.push(
        { id: `snip_own_${tag}`, method: 'snip', sparsity: s, train: tsnip, prune: { method: 'snip', sparsity: s }, paper: snipPaper, target: snipTarget },
        { id: `grasp_own_${tag}`, method: 'grasp', sparsity: s, train: tsnip, prune: { method: 'grasp', sparsity: s } },
      );
    }
    if (s !== 0.95) {
      const t = trainFor(s);
      exps.push({ id: `gmp_${tag}`, method: 'gmp', sparsity: s, train: t, prune: { method: 'gmp', sparsity: s, endEpoch: s >= 0.95 ? p98 : p789, frequency: 100 } });
    }
  }
  exps.push({ id: 'lth', method: 'lth', sparsity: 0.964, train: sub({ ...lth.train, epochs: b.lthEpochs }), prune: lth.prune, target: 'round 7 ≥ dense; round 15 ≥ 97.5; reinit clearly worse' });
  return exps;
}

function runDir(o: ReproduceOptions, b: PmpBudget, e: Exp, seed: number): string {
  return join(o.out, b.name, `${e.id}_${configHash({ train: e.train, prune: e.prune ?? null })}`, `seed_${seed}`);
}

async function runOne(o: ReproduceOptions, b: PmpBudget, e: Exp, seed: number, exps: Exp[]): Promise<Record<string, unknown>> {
  const out = runDir(o, b, e, seed);
  const done = finishedResult(out);
  if (done) return done;
  const from = e.method === 'magnitude' ? runDir(o, b, exps.find((x) => x.id === 'dense')!, seed) : undefined;
  return runExp(b.name, e, seed, out, from, o);
}

/** One experiment and seed into `out` (`from`: the dense run folder magnitude pruning starts from). */
async function runExp(budget: string, e: Pick<Exp, 'id' | 'method' | 'train' | 'prune'>, seed: number, out: string, from: string | undefined,
  o: { dataDir?: string; progress: boolean }): Promise<Record<string, unknown>> {
  const train = validate(TrainConfig, { ...e.train, seed }, `${e.id} training`);
  const t0 = performance.now();
  let r: Record<string, unknown>;
  if (!e.prune) {
    const run = await runTraining(train, { out, dataDir: o.dataDir, progress: o.progress });
    run.model.dispose();
    run.data.dispose();
    r = run.result;
  } else {
    const prune = validatePruneOptions({ ...e.prune, ...(from ? { from } : {}) }, train, `${e.id} prune options`);
    r = await runPrune({ train, prune, run: { out, dataDir: o.dataDir, progress: o.progress } }, env);
  }
  process.stderr.write(`pmp/${budget} ${e.id} seed ${seed}: test ${(100 * (r.testAccuracy as number)).toFixed(2)}% ` +
    `sparsity ${(100 * ((r.achievedSparsity as number) ?? 0)).toFixed(2)}% (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
  return r;
}

/**
 * The checks and the meta file of a reproduction, then its runs in order (seed by seed). The
 * metadata goes first, so that an interrupted reproduction still documents what finished.
 * TOPIARY_PMP_ONLY=pmp_789,pmp_98 runs some experiments only (to spread a budget over sessions).
 */
function preparePmp(o: ReproduceOptions, b: PmpBudget): { exps: Exp[]; runs: { e: Exp; seed: number }[] } {
  const exps = pmpExperiments(b);
  for (const e of exps) if (e.method !== 'dense') getMethod(e.method);
  const only = process.env.TOPIARY_PMP_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = only?.filter((id) => !exps.some((e) => e.id === id)) ?? [];
  if (unknown.length) throw new ConfigError(`TOPIARY_PMP_ONLY: unknown experiment ${unknown.join(', ')} (known: ${exps.map((e) => e.id).join(', ')})`);
  const meta = join(o.out, b.name, 'meta.json');
  mkdirSync(dirname(meta), { recursive: true });
  const env = [b.name !== o.budget ? `TOPIARY_PMP_BUDGET=${b.name}` : '', only ? `TOPIARY_PMP_ONLY=${only.join(',')}` : ''].filter(Boolean).join(' ');
  const command = `${env ? `${env} ` : ''}${o.command}`;
  const prev = existsSync(meta) ? (JSON.parse(readFileSync(meta, 'utf8')) as Meta) : null;
  const commands = [...(prev?.commands ?? (prev?.command ? [prev.command] : [])).filter((c) => c !== command), command];
  writeFileSync(meta, JSON.stringify({ commands, seeds: Math.max(o.seeds, prev?.seeds ?? 0), date: new Date().toISOString().slice(0, 10) }, null, 2));
  const runs: { e: Exp; seed: number }[] = [];
  for (let seed = 0; seed < o.seeds; seed++) {
    for (const e of exps) if (!only || only.includes(e.id)) runs.push({ e, seed });
  }
  return { exps, runs };
}

/** One libtorch thread unless told otherwise: the numbers are recorded as single-thread CPU runs. */
const pmpThreads = () => Number(process.env.TOPIARY_THREADS ?? 1);

/** Run every experiment of a budget for seeds 0..n-1 (finished runs are read back), then write the document. */
export async function reproducePmp(o: ReproduceOptions, b: PmpBudget): Promise<void> {
  const { exps, runs } = preparePmp(o, b);
  setNumThreads(pmpThreads());
  for (const { e, seed } of runs) await runOne(o, b, e, seed, exps);
  writePmpDoc(o);
}

/** A PMP run as a queue job carries this (checked again by TrainConfig and the prune schemas when it runs). */
const PmpRunSpec = z.object({
  budget: z.enum(['smoke', 'reduced', 'full']),
  id: z.string().min(1),
  method: z.string().min(1),
  seed: z.number().int().min(0),
  train: z.record(z.string(), z.unknown()),
  prune: z.record(z.string(), z.unknown()).nullable(),
  /** The dense run's folder, relative to the runs root (magnitude pruning). */
  from: z.string().min(1).optional(),
  threads: z.number().int().positive(),
}).strict();

function pmpBudgetOf(o: ReproduceOptions): PmpBudget {
  const override = process.env.TOPIARY_PMP_BUDGET;
  return override === 'reduced' || override === 'smoke' || override === 'full' ? PMP_BUDGETS[override] : PMP_BUDGETS[o.budget];
}

interface Meta { commands?: string[]; command?: string; seeds: number; date: string }

interface Row { label: string; exp: Exp; accs: number[]; sparsity: number[]; epochs: string; paper: string; target: string }

function collect(o: ReproduceOptions, b: PmpBudget, seeds: number): Row[] {
  const rows: Row[] = [];
  const exps = pmpExperiments(b);
  const res = (e: Exp) => Array.from({ length: seeds }, (_, s) => finishedResult(runDir(o, b, e, s))).filter((r): r is Record<string, unknown> => r !== null);
  for (const e of exps) {
    const rs = res(e);
    if (!rs.length) continue;
    if (e.method === 'lth') {
      const rounds = rs.map((r) => (r.record as { perRound: { round: number; sparsity: number; testAccuracy: number }[]; controls: { round: number; control: string; sparsity: number; testAccuracy: number }[] }));
      const pick = (round: number, control?: string) => rounds.map((x) => (control ? x.controls.find((c) => c.round === round && c.control === control) : x.perRound.find((p) => p.round === round))).filter(Boolean) as { sparsity: number; testAccuracy: number }[];
      for (const round of [0, 7, 15]) {
        for (const control of round === 0 ? [undefined] : [undefined, 'reinit', 'random_mask']) {
          const xs = pick(round, control);
          if (!xs.length) continue;
          const target = round === 7 && !control ? '≥ dense (round 0)' : round === 15 && !control ? '≥ 97.5' : control === 'reinit' ? 'clearly below the ticket' : '—';
          rows.push({ label: `lth round ${round}${control ? ` (${control})` : round === 0 ? ' (dense)' : ''}`, exp: e, accs: xs.map((x) => x.testAccuracy),
            sparsity: xs.map((x) => x.sparsity), epochs: `${e.train.epochs}/round`, paper: '—', target });
        }
      }
      continue;
    }
    const label = e.id === 'dense' ? 'dense' : e.id.startsWith('magnitude_noft') ? 'magnitude (no fine-tuning)' : e.id.startsWith('magnitude') ? 'magnitude + fine-tuning'
      : e.id.includes('_own_') ? `${e.method} (SNIP paper's training)` : ['snip', 'grasp', 'random'].includes(e.method) ? `${e.method} (PMP recipe)` : e.method;
    rows.push({ label, exp: e, accs: rs.map((r) => r.testAccuracy as number), sparsity: rs.map((r) => (r.achievedSparsity as number) ?? 0),
      epochs: e.id.startsWith('magnitude_noft') ? '0' : e.id.startsWith('magnitude') ? `${e.train.epochs} (+ dense)` : String(e.train.epochs), paper: e.paper ?? '—', target: e.target ?? '—' });
  }
  return rows;
}

function section(o: ReproduceOptions, b: PmpBudget): string | null {
  const metaFile = join(o.out, b.name, 'meta.json');
  if (!existsSync(metaFile)) return null;
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as Meta;
  const commands = meta.commands ?? (meta.command ? [meta.command] : []);
  const rows = collect(o, b, meta.seeds);
  if (!rows.length) return null;
  const table = markdownTable(['Method', 'Sparsity (achieved)', 'Test accuracy % (ours)', 'Paper %', 'Target %', 'Seeds', 'Epochs'],
    rows.map((r) => [r.label, r.exp.method === 'lth' ? `${(100 * mean(r.sparsity)).toFixed(2)}%` : `${(100 * r.exp.sparsity).toFixed(1)}% (${(100 * mean(r.sparsity)).toFixed(2)}%)`, pctMeanStd(r.accs), r.paper, r.target, r.accs.length, r.epochs]));
  const title = b.name === 'full' ? 'Full budget (the papers\' epochs)' : b.name === 'reduced' ? 'Reduced budget: the full data, a tenth of the epochs (NOT the paper\'s setting)' : 'Smoke budget: a 4000-example subset, 2 epochs (pipeline check, NOT comparable with the paper)';
  const exps = pmpExperiments(b);
  const withResults = new Set(rows.map((r) => r.exp.id)).size;
  const partial = withResults < exps.length ? ` Only ${withResults} of the ${exps.length} experiments have finished runs here; the others are not shown.` : '';
  return [`## ${title}`, '', `${commands.length > 1 ? 'Commands' : 'Command'}: ${commands.map((c) => `\`${c}\``).join(', then ')}; seeds 0..${meta.seeds - 1}; date ${meta.date}; machine: 2-core CPU, libtorch 1.13 CPU, 1 thread.`,
    `Mean ± sample standard deviation over seeds (the Seeds column counts the finished ones) of the test accuracy at the end of training; the test set is evaluated once per run.${partial}`,
    '', table, ''].join('\n');
}

/** Rewrite docs/results/pmp.md from every budget that has results under o.out. */
export function writePmpDoc(o: ReproduceOptions): void {
  const parts = (['full', 'reduced', 'smoke'] as const).map((n) => section(o, PMP_BUDGETS[n])).filter(Boolean);
  const head = readHead(o.doc);
  mkdirSync(dirname(o.doc), { recursive: true });
  writeFileSync(o.doc, [head, '<!-- generated by `topiary reproduce pmp` below this line -->', '', ...parts].join('\n'));
}

/** The hand-written part of the document (above the generated marker) is kept. */
function readHead(doc: string): string {
  const marker = '<!-- generated by `topiary reproduce pmp`';
  if (existsSync(doc)) {
    const text = readFileSync(doc, 'utf8');
    const i = text.indexOf(marker);
    if (i >= 0) return text.slice(0, i).trimEnd() + '\n';
  }
  return '# PMP on MNIST: reproduction\n';
}

registerReproduction({
  name: 'pmp',
  description: 'PMP (LeNet-300-100 at 78.9% and 98%) and the MNIST baselines: SNIP, GraSP, magnitude, random, GMP, LTH',
  run: (o) => reproducePmp(o, pmpBudgetOf(o)),
  distributed: {
    plan: (o) => {
      const b = pmpBudgetOf(o);
      const { exps, runs } = preparePmp(o, b);
      const dense = exps.find((x) => x.id === 'dense')!;
      return runs.map(({ e, seed }) => {
        const from = e.method === 'magnitude' ? relative(o.out, runDir(o, b, dense, seed)) : undefined;
        return {
          dir: relative(o.out, runDir(o, b, e, seed)), name: `pmp/${b.name} ${e.id} seed ${seed}`, needs: from ? [from] : [],
          spec: { budget: b.name, id: e.id, method: e.method, seed, train: e.train, prune: e.prune ?? null, ...(from ? { from } : {}), threads: pmpThreads() },
        };
      });
    },
    runOne: async (raw, root, dir, o) => {
      const s = validate(PmpRunSpec, raw, 'pmp run');
      setNumThreads(s.threads);
      await runExp(s.budget, { id: s.id, method: s.method, train: s.train, prune: s.prune ?? undefined }, s.seed, join(root, dir), s.from ? join(root, s.from) : undefined, o);
    },
    writeDoc: (o) => writePmpDoc(o),
  },
});
