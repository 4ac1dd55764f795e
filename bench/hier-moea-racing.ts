/**
 * HIER-MOEA's candidate evaluations per second with and without racing (issue 14 section 2), on
 * the same candidates: a real search (both phases, runPhases) whose every generation is scored
 * twice, by today's evaluator (every validation image) and by the racing one (hardest images first,
 * a candidate stopped once the archive strictly dominates it), taking turns on which goes first.
 * The search follows the full evaluation's results, so both see exactly the same candidates and
 * archives; each generation checks that racing kept every candidate the full evaluation would put
 * on the front (a candidate run to the end: the same error count; a stopped one: its full error
 * count past its bound). Candidates the memo serves (memo.ts: networks scored before) reach neither
 * evaluator; their count is reported beside. Dense models: LeNet-5 and ResNet-20 trained briefly on MNIST by
 * `topiary train` into runs/bench-hier-moea/ (the command is printed when missing).
 *
 *   flock -x /tmp/bench.lock node --import tsx bench/hier-moea.ts --part racing-lenet5|racing-resnet20
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModel, data, loadSafetensors, manualSeed, type Tensor } from '../src/index.js';
import { MaskedEvaluator, PrunableLayout, runPhases, SearchConfig, type BatchEvaluator, type CandidateResult, type LayerMasks } from '../src/prune/hier-moea/index.js';
import { hardestFirst } from '../src/prune/hier-moea/racing.js';
import { REPO_ROOT } from './lib/common.js';

export interface RacingResult {
  model: string; val: number; pop: number; gens: string; bnImages: number;
  evaluations: number; fullSeconds: number; raceSeconds: number; stopped: number; scored: number;
  perGeneration: { phase: number; full: number; race: number; stopped: number }[];
  memoHits: number; frontKept: boolean; loadBefore: number[]; loadAfter: number[];
}

const SETUPS = {
  lenet5: { ckpt: 'runs/bench-hier-moea/lenet5/model.safetensors', search: { pop: 12, phase1Gens: 5, phase2Gens: 5, valSize: 2000 },
    train: 'node bin/topiary.js train --model lenet5 --dataset mnist --epochs 2 --batch-size 128 --lr 0.05 --momentum 0.9 --weight-decay 5e-4 --schedule cosine --threads 1 --out runs/bench-hier-moea/lenet5' },
  resnet20: { ckpt: 'runs/bench-hier-moea/resnet20/model.safetensors', search: { pop: 8, phase1Gens: 4, phase2Gens: 4, valSize: 1000, bnBatches: 2 },
    train: 'node bin/topiary.js train --model resnet20 --dataset mnist --epochs 1 --subset 12000 --batch-size 128 --lr 0.1 --momentum 0.9 --weight-decay 5e-4 --schedule cosine --threads 1 --out runs/bench-hier-moea/resnet20' },
} as const;

/** Scores each generation with both evaluators, alternating which goes first; returns the full results. */
class Twin implements BatchEvaluator {
  fullSeconds = 0; raceSeconds = 0; evaluations = 0; stopped = 0; scoredImages = 0; allImages = 0; frontKept = true;
  perGeneration: RacingResult['perGeneration'] = [];
  private gen = 0;
  constructor(private readonly full: MaskedEvaluator, private readonly race: MaskedEvaluator, private readonly phaseOf: () => number) {}

  async evaluateBatch(count: number, masksOf: (i: number) => LayerMasks, maxWrongOf?: (i: number) => number | undefined): Promise<CandidateResult[]> {
    const masks = Array.from({ length: count }, (_, i) => masksOf(i));
    const timed = async (f: () => Promise<CandidateResult[]>) => { const t0 = performance.now(); const r = await f(); return { r, s: (performance.now() - t0) / 1000 }; };
    const runFull = () => timed(() => this.full.evaluateBatch(count, (i) => masks[i]));
    const runRace = () => timed(() => this.race.evaluateBatch(count, (i) => masks[i], maxWrongOf));
    let a, b;
    if (this.gen++ % 2 === 0) { a = await runFull(); b = await runRace(); } else { b = await runRace(); a = await runFull(); }
    a.r.forEach((f, i) => {
      const r = b.r[i];
      const ok = r.seen === undefined ? r.correct === f.correct : f.n - f.correct > (maxWrongOf?.(i) ?? Infinity);
      if (!ok) this.frontKept = false;
      this.scoredImages += r.seen ?? r.n;
      this.allImages += f.n;
    });
    const stopped = b.r.filter((r) => r.seen !== undefined).length;
    this.fullSeconds += a.s; this.raceSeconds += b.s; this.evaluations += count; this.stopped += stopped;
    this.perGeneration.push({ phase: this.phaseOf(), full: count / a.s, race: count / b.s, stopped });
    process.stderr.write(`[hier-moea racing] gen ${this.gen}: ${count} candidates, full ${(count / a.s).toFixed(2)} eval/s, racing ${(count / b.s).toFixed(2)} eval/s (${stopped} stopped)\n`);
    return a.r;
  }
}

export async function racingPart(name: 'lenet5' | 'resnet20'): Promise<RacingResult> {
  const setup = SETUPS[name];
  const ckpt = join(REPO_ROOT, setup.ckpt);
  if (!existsSync(ckpt)) throw new Error(`bench: no dense ${name} at ${setup.ckpt}; train one first: TOPIARY_DATA=... ${setup.train}`);
  const loadBefore = loadavg();
  manualSeed(0);
  const cfg = SearchConfig.parse({ ...setup.search, racing: true, seed: 0, finetuneEpochs: 0 });
  const root = process.env.TOPIARY_DATA!;
  const train = await data.loadDataset('mnist', { split: 'train', dataDir: root });
  const { train: tr, val } = data.splitTrainVal(train, 0.1, 0);
  const model = createModel(name, { inputShape: [1, 28, 28], numClasses: 10 });
  const { tensors } = loadSafetensors(ckpt);
  model.loadStateDict(tensors);
  for (const t of Object.values(tensors)) t.dispose();
  const batches = () => [...new data.DataLoader({ dataset: val.dataset, indices: val.indices.slice(0, cfg.valSize) }, { batchSize: cfg.evalBatchSize }).epoch(0)].map((b) => ({ x: b.x, y: b.y }));
  const calibOf = () => {
    const out: Tensor[] = [];
    if (name === 'lenet5') return out;
    for (const b of new data.DataLoader(tr, { batchSize: cfg.bnBatchSize, shuffle: true, seed: 0 }).epoch(0)) {
      if (out.length >= cfg.bnBatches) { b.x.dispose(); b.y.dispose(); break; }
      out.push(b.x); b.y.dispose();
    }
    return out;
  };
  const layout = new PrunableLayout(model);
  const full = new MaskedEvaluator(model, layout, { val: batches(), calib: calibOf() });
  const race = new MaskedEvaluator(model, layout, { val: hardestFirst(model, batches(), cfg.evalBatchSize), calib: calibOf() });
  let phase = 1;
  const twin = new Twin(full, race, () => phase);
  const out = mkdtempSync(join(tmpdir(), 'bench-hier-moea-racing-'));
  let memoHits = 0;
  try {
    memoHits = (await runPhases(model, {
      evaluator: full, batchEvaluator: twin, trainBatches: () => [], valBatches: () => [], testBatches: () => [],
    }, cfg, { out, log: (l) => { if (l.startsWith('anchors')) phase = 2; process.stderr.write(l + '\n'); } })).memoHits;
  } finally {
    rmSync(out, { recursive: true, force: true });
    race.dispose();
    full.dispose();
    model.dispose();
    train.dispose();
  }
  return {
    model: name, val: cfg.valSize, pop: cfg.pop, gens: `${cfg.phase1Gens} + ${cfg.phase2Gens}`, bnImages: name === 'lenet5' ? 0 : cfg.bnBatches * cfg.bnBatchSize,
    evaluations: twin.evaluations, fullSeconds: twin.fullSeconds, raceSeconds: twin.raceSeconds, stopped: twin.stopped, scored: twin.scoredImages / twin.allImages,
    perGeneration: twin.perGeneration, memoHits, frontKept: twin.frontKept, loadBefore, loadAfter: loadavg(),
  };
}
