/**
 * Every method's reproduced MNIST result as a deployed model (issue 10): the README's results table.
 *
 *   node --import tsx bench/deployed.ts train  [--jobs 2] [--only id,id]   # the runs, through the CLI (nice -n 15, 1 thread)
 *   node --import tsx bench/deployed.ts deploy [--only id,id]              # files, accuracies in topiary and onnxruntime-node
 *   flock -x /tmp/bench.lock node --import tsx bench/deployed.ts latency [--reps 9]   # the deployed form against dense
 *   node --import tsx bench/deployed.ts doc                                # docs/results/deployed.md, the README table
 *
 * The runs live under $TOPIARY_DEPLOYED_RUNS (default /work/runs-deployed), one folder per step;
 * a finished step (its result.json) is not run again. Each method runs the recipe of its
 * reproduction (docs/results/pmp.md, evo-pop.md, hier-moea.md) at the budget its row states, seed 0.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pmpExperiments, PMP_BUDGETS } from '../src/experiment/reproduce-pmp.js';
import { hierMoeaCases } from '../src/experiment/reproduce-hier-moea.js';
import { REPO_ROOT } from './lib/common.js';
import { expand, pruneStep, shellLine, stepDone, type Exp, type Method, type Step } from './lib/deployed-methods.js';

export const ROOT = resolve(process.env.TOPIARY_DEPLOYED_RUNS ?? '/work/runs-deployed');
const DATA = process.env.TOPIARY_DATA ?? resolve(REPO_ROOT, '../shared/datasets');
const SEED = 0;

const argv = process.argv.slice(2);
const part = argv[0] ?? '';
const flag = (name: string, dflt: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : dflt; };
const BUDGET = flag('budget', 'reduced') === 'full' ? 'full' : 'reduced';

/** Figures of the reproductions (docs/results/pmp.md, 3 seeds, mean ± std), by budget, quoted beside ours. */
const PMP_DOC: Record<string, Record<'full' | 'reduced', string>> = {
  dense: { full: '99.34 ± 0.08', reduced: '98.93 ± 0.05' },
  pmp_98: { full: '98.28 ± 0.07', reduced: '96.46 ± 0.05' },
  gmp_98: { full: '98.39 ± 0.11', reduced: '97.07 ± 0.14' },
  snip_own_98: { full: '96.88 ± 0.05', reduced: '96.31 ± 0.05' },
  grasp_own_98: { full: '97.04 ± 0.05', reduced: '96.23 ± 0.11' },
  random_98: { full: '67.72 ± 5.11', reduced: '66.70 ± 5.14' },
  magnitude_98: { full: '97.89 ± 0.16', reduced: '96.45 ± 0.11' },
};

/**
 * The methods, each with the recipe of its reproduction. `budget` is that of the PMP-table
 * experiments (docs/results/pmp.md's full or reduced: the full budget's epochs divided by 10);
 * `pmp_98_full` is PMP at the full budget, run when asked for (--only).
 */
export function methods(budget: 'full' | 'reduced' = 'reduced'): Method[] {
  const full = pmpExperiments(PMP_BUDGETS.full) as Exp[], reduced = pmpExperiments(PMP_BUDGETS.reduced) as Exp[];
  const list = budget === 'full' ? full : reduced;
  const exp = (l: Exp[], id: string) => {
    const e = l.find((x) => x.id === id);
    if (!e) throw new Error(`bench/deployed: no experiment ${id} in pmpExperiments`);
    return e;
  };
  const ep = (id: string) => exp(list, id).train.epochs as number;
  const fullEp = (id: string) => exp(full, id).train.epochs as number;
  /** The budget in a few words for the README: "20 of 200 epochs". */
  const short = (id: string, pre = '') => `${pre}${budget === 'full' ? `full, ${ep(id)} epochs` : `${ep(id)} of ${fullEp(id)} epochs`}`;
  const b = (words: string) => `${budget}${budget === 'reduced' ? ' (a tenth of the epochs)' : ''}: ${words}`;
  const dense = pruneStep(`lenet300_dense_${budget}`, exp(list, 'dense'), SEED);
  const fromDense = ['--from', `{root}/${dense.dir}`];
  const lth = exp(reduced, 'lth');
  const pmpRow = (id: string, expId: string, label: string, words: string, extra: Partial<Method> = {}): Method => ({
    id, label, model: 'lenet_300_100', budget: b(words), after: [], steps: [pruneStep(`${id}_${budget}`, exp(list, expId), SEED, extra.after?.length ? fromDense : [])],
    deploy: 'sparse', reproduced: `${PMP_DOC[expId][budget]} (${budget})`, short: short(expId, extra.after?.length ? 'dense + ' : ''), ...extra,
  });
  const m: Method[] = [
    { id: 'dense', label: 'dense (the reference)', model: 'lenet_300_100', budget: b(`${ep('dense')} epochs, the 78.9% recipe without pruning`), short: short('dense'), after: [], steps: [dense], deploy: 'sparse', reproduced: `${PMP_DOC.dense[budget]} (${budget})` },
    pmpRow('pmp_98', 'pmp_98', 'PMP 98%', `${ep('pmp_98')} epochs, P = ${exp(list, 'pmp_98').prune!.phase as number}`),
    pmpRow('gmp_98', 'gmp_98', 'GMP 98%', `${ep('gmp_98')} epochs, cubic schedule to epoch ${exp(list, 'gmp_98').prune!.endEpoch as number}`),
    pmpRow('snip_98', 'snip_own_98', 'SNIP 98%', `the SNIP paper's training, ${ep('snip_own_98')} epochs`),
    pmpRow('grasp_98', 'grasp_own_98', 'GraSP 98%', `the SNIP paper's training, ${ep('grasp_own_98')} epochs`),
    pmpRow('random_98', 'random_98', 'random 98%', `PMP's 98% recipe, ${ep('random_98')} epochs`),
    pmpRow('magnitude_98', 'magnitude_98', 'magnitude + fine-tuning 98%', `the dense run, then ${ep('magnitude_98')} epochs at lr 0.01`, { after: ['dense'] }),
    {
      id: 'pmp_98_full', label: 'PMP 98%', model: 'lenet_300_100', budget: 'full: 200 epochs, P = 80', short: 'full, 200 epochs', after: [],
      steps: [pruneStep('pmp_98_full', exp(full, 'pmp_98'), SEED)], deploy: 'sparse', reproduced: `${PMP_DOC.pmp_98.full} (full)`,
    },
    {
      // Fewer rounds: half of each hidden layer (a quarter of the output layer) per round instead of
      // 20% (10%), so that 96.4% takes 5 rounds instead of 15; the reduced budget's epochs per round.
      id: 'lth', label: 'LTH ≥ 96.4%', model: 'lenet_300_100',
      budget: `reduced: 5 rounds pruning 50% of each hidden layer and 25% of the output (instead of 15 of 20% / 10%), ${lth.train.epochs as number} epochs per round instead of 56, no controls`,
      short: `5 rounds of 50% instead of 15 of 20%, ${lth.train.epochs as number} of 56 epochs a round`, after: [], steps: [pruneStep('lth_reduced', { train: lth.train, prune: { method: 'lth', sparsity: lth.prune!.sparsity, rate: 0.5, outputRate: 0.25 } }, SEED)],
      deploy: 'sparse', reproduced: '98.12 ± 0.08 (reduced, 15 rounds of 20%)',
    },
    {
      id: 'structured_50', label: 'structured magnitude, 50% of neurons', model: 'lenet_300_100',
      budget: b(`the dense run, then ${ep('magnitude_98')} epochs at lr 0.01 (the magnitude recipe)`), short: short('magnitude_98', 'dense + '), after: ['dense'],
      steps: [pruneStep(`structured_50_${budget}`, { train: exp(list, 'magnitude_98').train, prune: { method: 'magnitude', sparsity: 0.5, scope: 'layer', granularity: 'structured' } }, SEED, fromDense)],
      deploy: 'shrunk',
    },
    {
      id: 'evo_pop', label: 'EVO-POP, 50% of neurons removed by mass', model: 'mlp',
      budget: 'full: 10 epochs, exponential dynamics (the pick on validation in evo-pop.md)', short: 'full, 10 epochs', after: [],
      steps: [{
        dir: 'evo_pop', done: 'evo.json',
        args: ['evo', '--dynamics', 'exponential', '--fitness', 'gradient', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '10', '--batch-size', '128',
          '--lr', '0.05', '--momentum', '0.9', '--weight-decay', '0.0005', '--schedule', 'cosine', '--val-fraction', '0.1', '--prune-at', '0.5',
          '--seed', String(SEED), '--threads', '1', '--out', '{root}/evo_pop'],
      }],
      deploy: 'physical', reproduced: '98.20 ± 0.10 (full)',
    },
  ];
  const hm = hierMoeaCases('reduced', 1).find((c) => c.key === 'lenet5')!;
  const s = hm.search;
  m.push({
    id: 'hier_moea', label: 'HIER-MOEA, best pick ≥ 90%, fine-tuned', model: 'lenet5',
    budget: `reduced (dense ${hm.dense.epochs as number} epochs; pop ${s.pop}, ${s.phase1Gens} + ${s.phase2Gens} generations, ${s.valSize} validation images, ${s.finetuneEpochs} fine-tuning epochs; full: pop 40, 30 + 60, 5000, 3)`,
    short: `pop ${s.pop}, ${s.phase1Gens} + ${s.phase2Gens} generations (full: 40, 30 + 60)`,
    after: [],
    steps: [
      pruneStep('lenet5_dense', { train: hm.dense }, SEED),
      {
        dir: 'hier_moea', done: 'result.json',
        args: ['search', '--from', '{root}/lenet5_dense/model.safetensors', '--pop', String(s.pop), '--phase1-gens', String(s.phase1Gens), '--phase2-gens', String(s.phase2Gens),
          '--val-size', String(s.valSize), '--importance', 'magnitude', '--finetune-epochs', String(s.finetuneEpochs), '--pick', '0.9',
          '--seed', String(SEED), '--threads', '1', '--out', '{root}/hier_moea'],
      },
    ],
    deploy: 'sparse', reproduced: '99.18, 99.15, 99.11 (seeds 0, 1, 2; reduced)',
  });
  // Quick ones and those others wait on first, so that the deploy part can be checked early (the document keeps TABLE_ORDER).
  const order = ['evo_pop', 'dense', 'magnitude_98', 'structured_50', 'hier_moea', 'pmp_98', 'gmp_98', 'snip_98', 'grasp_98', 'random_98', 'lth', 'pmp_98_full'];
  return order.map((id) => m.find((x) => x.id === id)!);
}

/** The order of the document's rows. */
export const TABLE_ORDER = ['dense', 'pmp_98', 'pmp_98_full', 'gmp_98', 'snip_98', 'grasp_98', 'lth', 'magnitude_98', 'random_98', 'hier_moea', 'structured_50', 'evo_pop'];
export function tableOrder(ms: Method[]): Method[] {
  return TABLE_ORDER.map((id) => ms.find((m) => m.id === id)).filter((m): m is Method => m !== undefined);
}

function writeRecipe(s: Step): void {
  if (!s.recipe) return;
  mkdirSync(join(ROOT, 'recipes'), { recursive: true });
  // YAML is a superset of JSON: the recipe file is the JSON of the reproduction's configuration.
  writeFileSync(join(ROOT, 'recipes', `${s.recipe.name}.yaml`), `# bench/deployed.ts: ${s.dir}\n${JSON.stringify(s.recipe.body, null, 2)}\n`);
}

/** The exact command line of a step, as recorded in the document. */
export const commandOf = (s: Step): string => `topiary ${shellLine(expand(ROOT, s.args))}`;

function runStep(s: Step): Promise<void> {
  writeRecipe(s);
  const log = join(ROOT, `${s.dir}.log`);
  const env = { ...process.env, TOPIARY_DATA: DATA, TOPIARY_THREADS: '1', OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  const args = ['-n', '15', process.execPath, join(REPO_ROOT, 'bin/topiary.js'), ...expand(ROOT, s.args)];
  process.stderr.write(`[deployed] ${new Date().toISOString().slice(11, 19)} start ${s.dir}: ${commandOf(s)}\n`);
  return new Promise((res, rej) => {
    const fd = spawn('nice', args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    fd.stdout.on('data', (b: Buffer) => chunks.push(b));
    fd.stderr.on('data', (b: Buffer) => chunks.push(b));
    fd.on('close', (code) => {
      writeFileSync(log, Buffer.concat(chunks));
      process.stderr.write(`[deployed] ${new Date().toISOString().slice(11, 19)} ${code === 0 ? 'done' : `FAILED (exit ${code}, ${log})`} ${s.dir}\n`);
      if (code === 0) res(); else rej(new Error(`${s.dir} failed (exit ${code}); log in ${log}`));
    });
  });
}

/** The live process holding a run folder's run.lock, or null. */
function lockHolder(dir: string): number | null {
  const f = join(dir, 'run.lock');
  if (!existsSync(f)) return null;
  try {
    const { pid } = JSON.parse(readFileSync(f, 'utf8')) as { pid?: number };
    if (typeof pid !== 'number') return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

/** Runs every unfinished step, at most `jobs` at once; a method starts once the methods it comes after are done. */
async function train(jobs: number, only?: string[]): Promise<void> {
  mkdirSync(ROOT, { recursive: true });
  const all = methods(BUDGET);
  const want = only ? all.filter((m) => only.includes(m.id)) : all.filter((m) => m.id !== 'pmp_98_full');
  const done = new Set<string>(), failed = new Set<string>();
  const pending = [...want];
  const running = new Map<string, Promise<void>>();
  const runMethod = async (m: Method) => {
    for (const s of m.steps) {
      // A step another invocation of this script is running: wait for it instead of starting it again.
      while (!stepDone(ROOT, s) && lockHolder(join(ROOT, s.dir)) !== null) await new Promise((r) => setTimeout(r, 15_000));
      if (!stepDone(ROOT, s)) await runStep(s);
    }
  };
  while (pending.length || running.size) {
    const ready = pending.findIndex((m) => m.after.every((a) => done.has(a) || !want.some((w) => w.id === a) && all.find((x) => x.id === a)!.steps.every((s) => stepDone(ROOT, s))));
    if (ready >= 0 && running.size < jobs) {
      const m = pending.splice(ready, 1)[0];
      running.set(m.id, runMethod(m).then(() => { done.add(m.id); }, (e: Error) => { failed.add(m.id); process.stderr.write(`[deployed] ${e.message}\n`); }).finally(() => running.delete(m.id)));
      continue;
    }
    if (!running.size) {
      // Only methods waiting on a failed one are left.
      process.stderr.write(`[deployed] not run (a method they need failed): ${pending.map((m) => m.id).join(', ')}\n`);
      break;
    }
    await Promise.race(running.values());
  }
  if (failed.size) {
    process.stderr.write(`[deployed] failed: ${[...failed].join(', ')}\n`);
    process.exitCode = 1;
  }
}

if (part === 'train') {
  const only = flag('only', '') ? flag('only', '').split(',') : undefined;
  process.stderr.write(`[deployed] load ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  await train(Number(flag('jobs', '1')), only);
} else if (part === 'commands') {
  for (const m of methods(BUDGET)) for (const s of m.steps) console.log(`${m.id}: ${commandOf(s)}`);
} else if (part === 'deploy' || part === 'latency' || part === 'doc') {
  const { deployPart } = await import('./lib/deployed-measure.js');
  await deployPart(part, tableOrder(methods(BUDGET)), { root: ROOT, dataDir: DATA, argv });
} else if (import.meta.url === `file://${process.argv[1]}`) {
  process.stderr.write('usage: node --import tsx bench/deployed.ts train|commands|deploy|latency|doc [--jobs 2] [--only id,id] [--reps 9]\n');
  process.exitCode = 1;
}
