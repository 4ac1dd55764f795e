/**
 * HIER-MOEA's evaluation cost (issue 6): the cost of scoring one candidate, in units of a plain
 * forward pass over the same validation subset (target <= 1.2), and evaluations per second, for
 * LeNet-5 (no BatchNorm) and ResNet-20 (BatchNorm, recalibrated on 4 x 128 training images per
 * candidate). Plain passes and candidate evaluations alternate in one process, so both see the
 * same background load. Also reports the wall time of the LeNet-5 searches that
 * `topiary reproduce hier-moea` ran (when their result.json files are there).
 *
 * Part `workers`: evaluations per second of one generation's candidates (LeNet-5, 1000 validation
 * images, 20 phase-1 candidates, as in the reduced searches) in the main thread against an EvalPool
 * of 2 worker threads (1 libtorch thread each), alternating batch by batch in one process, with
 * the load averages before and after (the machine is shared). It writes its own block
 * (hier-moea-workers) of the HIER-MOEA section.
 *
 * Parts `racing-lenet5` and `racing-resnet20` (bench/hier-moea-racing.ts): evaluations per second of
 * a real search's generations scored by today's evaluator and by racing, alternating, same candidates.
 *
 *   node --import tsx bench/hier-moea.ts [--reps 5] [--no-doc] [--part lenet5|resnet20|workers|racing-lenet5|racing-resnet20]
 */
import { isDeepStrictEqual } from 'node:util';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createModel, data, getNumThreads, loadSafetensors, manualSeed, Rng, setNumThreads, torchVersion, type Module, type Tensor } from '../src/index.js';
import { BitSet } from '../src/evo/bitset.js';
import { BatchNorm } from '../src/nn/layers.js';
import { BitSpace, EvalPool, MaskedEvaluator, PrunableLayout, ThresholdDecoder } from '../src/prune/hier-moea/index.js';
import { SearchConfig } from '../src/prune/hier-moea/config.js';

/** Validation batches as the search makes them (its default evaluation batch size). */
const EVAL_BATCH = SearchConfig.parse({}).evalBatchSize;
import { dataRoot, machine, median, parseFlags, REPO_ROOT } from './lib/common.js';
import { updateSection } from './report.js';
import { racingPart, type RacingResult } from './hier-moea-racing.js';

const VAL = 5000, BN_BATCHES = 4, BN_BATCH = 128;
const COMMAND = 'node --import tsx bench/hier-moea.ts';
const LENET_CKPT = 'runs/reproduce/hier-moea/reduced/lenet5/seed_0/dense/model.safetensors';

interface PartResult { model: string; trained: boolean; val: number; plain: number; phase1: number; phase2: number; calib: number }

async function part(name: 'lenet5' | 'resnet20', reps: number): Promise<PartResult> {
  manualSeed(0);
  const root = dataRoot();
  const train = await data.loadDataset('mnist', { split: 'train', dataDir: root });
  const { train: tr, val } = data.splitTrainVal(train, 0.1, 0);
  const model: Module = createModel(name, { inputShape: [1, 28, 28], numClasses: 10 });
  const ckpt = join(REPO_ROOT, LENET_CKPT);
  const trained = name === 'lenet5' && existsSync(ckpt);
  if (trained) {
    const { tensors } = loadSafetensors(ckpt);
    model.loadStateDict(tensors);
    for (const t of Object.values(tensors)) t.dispose();
  }
  const valBatches = [...new data.DataLoader({ dataset: val.dataset, indices: val.indices.slice(0, VAL) }, { batchSize: EVAL_BATCH }).epoch(0)].map((b) => ({ x: b.x, y: b.y }));
  const calib: Tensor[] = [];
  if (model.modules().some((m) => m instanceof BatchNorm)) {
    for (const b of new data.DataLoader(tr, { batchSize: BN_BATCH, shuffle: true, seed: 0 }).epoch(0)) {
      if (calib.length >= BN_BATCHES) { b.x.dispose(); b.y.dispose(); break; }
      calib.push(b.x); b.y.dispose();
    }
  }
  const layout = new PrunableLayout(model);
  const ev = new MaskedEvaluator(model, layout, { val: valBatches, calib });
  const dec = new ThresholdDecoder(layout);
  const rng = new Rng(1);
  const genome = () => Float64Array.from({ length: layout.nLayers }, () => rng.uniform(0.3, 0.95));
  const space = new BitSpace(layout, dec.decode(Float64Array.from({ length: layout.nLayers }, () => 0.5)));
  const bits = () => { const b = new BitSet(space.nBits); for (let i = 0; i < space.nBits; i++) if (rng.random() < 0.5) b.set(i); return b; };
  const time = (f: () => void) => { const t0 = performance.now(); f(); return (performance.now() - t0) / 1000; };
  const plain: number[] = [], p1: number[] = [], p2: number[] = [];
  ev.restore(); ev.forwardVal(); ev.evaluate(dec.decode(genome())); // warm-up
  for (let r = 0; r < reps; r++) {
    ev.restore();
    plain.push(time(() => ev.forwardVal()));
    const g = genome();
    p1.push(time(() => ev.evaluate(dec.decode(g))));
    const b = bits();
    p2.push(time(() => ev.evaluate(space.toMasks(b))));
    process.stderr.write(`[hier-moea ${name}] rep ${r + 1}/${reps}: plain ${plain[r].toFixed(3)} s, phase-1 candidate ${p1[r].toFixed(3)} s, phase-2 candidate ${p2[r].toFixed(3)} s\n`);
  }
  const calibImages = calib.reduce((s, x) => s + x.shape[0], 0);
  ev.dispose();
  model.dispose();
  train.dispose();
  return { model: name, trained, val: VAL, plain: median(plain), phase1: median(p1), phase2: median(p2), calib: calibImages };
}

const POOL_VAL = 1000, POOL_BATCH = 20, POOL_WORKERS = 2;

interface PoolResult {
  trained: boolean; val: number; batch: number; workers: number; threadsPerWorker: number; reps: number;
  /** Medians over the repetitions, evaluations per second. */
  sequential: number; pool: number;
  /** Medians of CPU seconds (user + system, all threads of the process) per evaluation: the work, whatever the load. */
  sequentialCpu: number; poolCpu: number;
  startSeconds: number; identical: boolean;
  loadBefore: number[]; loadAfter: number[];
}

/** One generation's candidates in the main thread, then in a pool of worker threads (order alternating), same masks. */
async function poolPart(reps: number): Promise<PoolResult> {
  const loadBefore = loadavg();
  manualSeed(0);
  const train = await data.loadDataset('mnist', { split: 'train', dataDir: dataRoot() });
  const { val } = data.splitTrainVal(train, 0.1, 0);
  const config = { inputShape: [1, 28, 28], numClasses: 10 };
  const model: Module = createModel('lenet5', config);
  const ckpt = join(REPO_ROOT, LENET_CKPT);
  const trained = existsSync(ckpt);
  if (trained) {
    const { tensors } = loadSafetensors(ckpt);
    model.loadStateDict(tensors);
    for (const t of Object.values(tensors)) t.dispose();
  }
  const valBatches = [...new data.DataLoader({ dataset: val.dataset, indices: val.indices.slice(0, POOL_VAL) }, { batchSize: EVAL_BATCH }).epoch(0)].map((b) => ({ x: b.x, y: b.y }));
  const layout = new PrunableLayout(model);
  const t0 = performance.now();
  const pool = await EvalPool.start({ model: 'lenet5', config, state: model.stateDict(), data: { val: valBatches, calib: [] }, layout, workers: POOL_WORKERS, threads: 1 });
  const startSeconds = (performance.now() - t0) / 1000;
  const ev = new MaskedEvaluator(model, layout, { val: valBatches, calib: [] });
  const dec = new ThresholdDecoder(layout);
  const rng = new Rng(2);
  const genomes = () => Array.from({ length: POOL_BATCH }, () => Float64Array.from({ length: layout.nLayers }, () => rng.uniform(0.3, 0.95)));
  const seq: number[] = [], par: number[] = [], seqCpu: number[] = [], parCpu: number[] = [];
  let identical = true;
  try {
    const warm = genomes();
    await ev.evaluateBatch(2, (i) => dec.decode(warm[i]));
    await pool.evaluateBatch(2 * POOL_WORKERS, (i) => dec.decode(warm[i]));
    for (let r = 0; r < reps; r++) {
      const g = genomes();
      const timed = async (be: EvalPool | MaskedEvaluator, rate: number[], cpu: number[]) => {
        const a = performance.now(), c = process.cpuUsage();
        const res = await be.evaluateBatch(g.length, (i) => dec.decode(g[i]));
        const dc = process.cpuUsage(c);
        rate.push(POOL_BATCH / ((performance.now() - a) / 1000));
        cpu.push((dc.user + dc.system) / 1e6 / POOL_BATCH);
        return res;
      };
      const runSeq = () => timed(ev, seq, seqCpu), runPar = () => timed(pool, par, parCpu);
      let x, y;
      if (r % 2 === 0) { x = await runSeq(); y = await runPar(); } else { y = await runPar(); x = await runSeq(); }
      identical &&= isDeepStrictEqual(x, y);
      process.stderr.write(`[hier-moea workers] rep ${r + 1}/${reps}: sequential ${seq[r].toFixed(2)} eval/s (${seqCpu[r].toFixed(3)} CPU s each), ` +
        `${POOL_WORKERS} workers ${par[r].toFixed(2)} eval/s (${parCpu[r].toFixed(3)} CPU s each), same errors ${isDeepStrictEqual(x, y)}\n`);
    }
  } finally {
    await pool.close();
    ev.dispose();
    model.dispose();
    train.dispose();
  }
  return { trained, val: POOL_VAL, batch: POOL_BATCH, workers: POOL_WORKERS, threadsPerWorker: 1, reps, sequential: median(seq), pool: median(par), sequentialCpu: median(seqCpu), poolCpu: median(parCpu), startSeconds, identical, loadBefore, loadAfter: loadavg() };
}

function poolBody(p: PoolResult, reps: number): string {
  const m = machine();
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  const reduced = 720;
  return [
    `### Parallel evaluation (\`--workers\`)`,
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} with \`${COMMAND} --part workers --reps ${reps}\` on ${m.cpu} (${m.cores} cores; load averages below), ` +
    `libtorch ${torchVersion()}. LeNet-5${p.trained ? ' (trained)' : ' (random init)'}, ${p.val} validation images in batches of ${EVAL_BATCH} (the search's default), batches of ${p.batch} phase-1 candidates; ` +
    `the main thread (1 libtorch thread) and a pool of ${p.workers} worker threads (${p.threadsPerWorker} libtorch thread each) take turns on the same candidates; medians of ${reps} batches. ` +
    `Load average (1 / 5 / 15 min) before: ${load(p.loadBefore)}, after: ${load(p.loadAfter)}.`,
    '',
    '| evaluator | evaluations / s | speed-up | CPU seconds / evaluation | 720 evaluations (the reduced LeNet-5 search) |',
    '|---|---:|---:|---:|---:|',
    `| main thread, one after another (\`--workers 1\`) | ${p.sequential.toFixed(2)} | 1.00 | ${p.sequentialCpu.toFixed(3)} | ${(reduced / p.sequential).toFixed(0)} s |`,
    `| ${p.workers} worker threads (\`--workers ${p.workers}\`) | ${p.pool.toFixed(2)} | ${(p.pool / p.sequential).toFixed(2)} | ${p.poolCpu.toFixed(3)} | ${(reduced / p.pool).toFixed(0)} s |`,
    '',
    'CPU seconds count every thread of the process (user + system): the work per candidate, which the pool does not reduce; it runs ' +
    'candidates side by side, so its gain is bounded by the idle cores.' + (p.loadBefore[0] >= m.cores
      ? ` Here the load average was already ${p.loadBefore[0].toFixed(1)} on ${m.cores} cores before the run (another job): the workers found no idle core, so the evaluations per second measure the share of the machine this process got, not what the pool can do on free cores.`
      : ''),
    '',
    `Same errors, candidate for candidate: ${p.identical ? 'yes' : 'NO'}. Starting the pool (workers load the addon, rebuild the model, decode the weights and the ` +
    `validation subset) took ${p.startSeconds.toFixed(2)} s, once per search.`,
  ].join('\n');
}

interface SearchRun { seed: string; level: string; evaluations: number; evalPerSec: number; searchSeconds: number; fineTuneSeconds: number; pop: number; gens: string; val: number; workers: number }

function searchRuns(): SearchRun[] {
  const base = join(REPO_ROOT, 'runs/reproduce/hier-moea');
  const out: SearchRun[] = [];
  if (!existsSync(base)) return out;
  for (const level of readdirSync(base)) {
    const dir = join(base, level, 'lenet5');
    if (!existsSync(dir)) continue;
    for (const seed of readdirSync(dir)) {
      const f = join(dir, seed, 'result.json');
      if (!existsSync(f)) continue;
      const r = JSON.parse(readFileSync(f, 'utf8'));
      const ft = new Map<number, number>();
      for (const p of r.picks as { solution: number; seconds: number }[]) ft.set(p.solution, p.seconds);
      out.push({ seed, level, evaluations: r.evaluations, evalPerSec: r.evaluationsPerSecond, searchSeconds: r.searchSeconds,
        fineTuneSeconds: [...ft.values()].reduce((a, b) => a + b, 0),
        pop: r.config.pop, gens: `${r.config.phase1Gens} + ${r.config.phase2Gens}`, val: r.config.valSize, workers: r.config.workers ?? 1 });
    }
  }
  return out;
}

/** The issue's LeNet-5 search (pop 40, 30 + 60 generations, 5000 validation images) at the measured candidate cost. */
function lenetProjection(results: PartResult[]): string[] {
  const r = results.find((x) => x.model === 'lenet5');
  if (!r) return [];
  const evals = 40 * (30 + 60), per = (r.phase1 + r.phase2) / 2;
  return ['', `At the measured LeNet-5 candidate cost (${per.toFixed(3)} s with ${r.val} validation images), the issue's full search ` +
    `(pop 40, 30 + 60 generations: ${evals} evaluations) would take about ${((evals * per) / 60).toFixed(0)} minutes of evaluation on this machine.`];
}

function racingBody(r: RacingResult): string {
  const m = machine();
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  const full = r.evaluations / r.fullSeconds, race = r.evaluations / r.raceSeconds;
  const byPhase = (p: number) => r.perGeneration.filter((g) => g.phase === p);
  const rate = (gs: RacingResult['perGeneration'], k: 'full' | 'race') => gs.length ? (gs.length / gs.reduce((s, g) => s + 1 / g[k], 0)).toFixed(2) : '—';
  return [
    `### Racing (\`--racing\`): ${r.model}`,
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} with \`flock -x /tmp/bench.lock ${COMMAND} --part racing-${r.model}\` on ${m.cpu} (${m.cores} cores, shared; load averages 1 / 5 / 15 min before: ${load(r.loadBefore)}, after: ${load(r.loadAfter)}), ` +
    `libtorch ${torchVersion()}, 1 thread, in the main thread. A real search (pop ${r.pop}, ${r.gens} generations, ${r.val} validation images${r.bnImages ? `, BatchNorm recalibrated on ${r.bnImages} images` : ''}, seed 0) whose every generation is scored by today's evaluator and by racing, taking turns on which goes first; the search follows the full results, so both score the same ${r.evaluations} candidates against the same archives.`,
    '',
    '| evaluator | evaluations / s (all) | phase 1 | phase 2 | speed-up |',
    '|---|---:|---:|---:|---:|',
    `| every image (today) | ${full.toFixed(2)} | ${rate(byPhase(1), 'full')} | ${rate(byPhase(2), 'full')} | 1.00 |`,
    `| racing | ${race.toFixed(2)} | ${rate(byPhase(1), 'race')} | ${rate(byPhase(2), 'race')} | ${(race / full).toFixed(2)} |`,
    '',
    `Racing stopped ${r.stopped} of ${r.evaluations} candidates early and scored ${(100 * r.scored).toFixed(1)}% of the candidate-image pairs. ` +
    `Every candidate the full evaluation would keep on the front ran to the end with the same error count: ${r.frontKept ? 'yes' : 'NO'}. ` +
    `Besides these, the memo (each distinct network scored once, on by default) served ${r.memoHits} candidates of the search without an evaluation. ` +
    `The work racing saved bounds its speed-up: scoring ${(100 * r.scored).toFixed(1)}% of the image pairs allows at most ${(1 / r.scored).toFixed(2)}×` +
    `${r.bnImages ? ' (less: BatchNorm recalibration, which racing does not shorten, is part of every candidate)' : ''}; a measured ratio above that is the shared machine's load moving between turns.`,
  ].join('\n');
}

async function main(): Promise<void> {
  const flags = parseFlags();
  setNumThreads(1);
  if (flags.part && !['lenet5', 'resnet20', 'workers', 'racing-lenet5', 'racing-resnet20'].includes(flags.part)) throw new Error(`bench: --part must be lenet5, resnet20, workers, racing-lenet5 or racing-resnet20, got ${flags.part}`);
  if (flags.part.startsWith('racing-')) {
    const name = flags.part.slice('racing-'.length) as 'lenet5' | 'resnet20';
    const r = await racingPart(name);
    process.stdout.write(JSON.stringify({ bench: 'hier-moea-racing', result: r, machine: machine() }) + '\n');
    if (!flags.noDoc) updateSection('HIER-MOEA', `hier-moea-racing-${name}`, racingBody(r));
    return;
  }
  if (flags.part === 'workers' || !flags.part) {
    const p = await poolPart(flags.reps);
    process.stdout.write(JSON.stringify({ bench: 'hier-moea-workers', result: p, machine: machine() }) + '\n');
    if (!flags.noDoc) updateSection('HIER-MOEA', 'hier-moea-workers', poolBody(p, flags.reps));
    if (flags.part === 'workers') return;
  }
  const parts = flags.part ? [flags.part as 'lenet5' | 'resnet20'] : (['lenet5', 'resnet20'] as const);
  const results: PartResult[] = [];
  for (const p of parts) results.push(await part(p, flags.reps));
  const runs = searchRuns();
  const m = machine();
  process.stdout.write(JSON.stringify({ bench: 'hier-moea', results, runs, machine: m }) + '\n');
  if (flags.noDoc) return;
  const rows = results.map((r) => `| ${r.model}${r.trained ? ' (trained)' : ' (random init)'} | ${r.val} | ${r.calib || '—'} | ${r.plain.toFixed(3)} s | ` +
    `${r.phase1.toFixed(3)} s (${(r.phase1 / r.plain).toFixed(3)}) | ${r.phase2.toFixed(3)} s (${(r.phase2 / r.plain).toFixed(3)}) | ${(1 / r.phase1).toFixed(2)} | ≤ 1.2 |`);
  const body = [
    `Measured ${new Date().toISOString().slice(0, 10)} with \`${COMMAND} --reps ${flags.reps}\` on ${m.cpu} (${m.cores} cores shared with other jobs, load ${m.load1.toFixed(1)}), ` +
    `libtorch ${torchVersion()}, ${getNumThreads()} thread; medians of ${flags.reps} repetitions.`,
    '',
    '| model | validation images | BN calibration images | plain forward pass | phase-1 candidate (in plain passes) | phase-2 candidate (in plain passes) | evaluations / s | target |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    ...rows,
    '',
    'A candidate is: masks built from the genome (per-layer thresholds, or bits over the heavy anchor\'s weights), written in place ' +
    '(`w.copy_(dense).mul_(mask)`), BatchNorm recalibrated when the model has it, one eval-mode pass over the pre-loaded validation subset.',
    '',
    runs.length ? 'LeNet-5 searches run by `topiary reproduce hier-moea` (search: both phases; fine-tuning: the knee and the picks, each network once):' : 'No LeNet-5 search results found under runs/reproduce/hier-moea.',
    '',
    ...(runs.length ? [
      '| budget | seed | pop | generations | validation images | worker threads | evaluations | evaluations / s | search wall time | fine-tuning wall time |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...runs.map((r) => `| ${r.level} | ${r.seed} | ${r.pop} | ${r.gens} | ${r.val} | ${r.workers} | ${r.evaluations} | ${r.evalPerSec.toFixed(2)} | ${r.searchSeconds.toFixed(0)} s | ${r.fineTuneSeconds.toFixed(0)} s |`),
    ] : []),
    ...lenetProjection(results),
  ].join('\n');
  updateSection('HIER-MOEA', 'hier-moea', body);
}

await main();
