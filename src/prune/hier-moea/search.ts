/**
 * HIER-MOEA's two phases as ask/tell loops around NSGA-II. After every generation the whole search
 * (both algorithms' states with their generators, the anchors, the adaptive rates, the history) is
 * written to `search-state.json`, so an interrupted search resumes from its last generation and
 * ends where an uninterrupted one would: evaluation is deterministic (fixed validation subset,
 * fixed calibration batches) and all randomness is in the saved generators. Each generation goes to
 * the evaluator as one batch, scored in this thread or by a pool of worker threads (eval-pool.ts)
 * with the same results.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, SerializationError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { uniformCrossover, twoPointCrossover } from '../../evo/binary-operators.js';
import type { BitSet } from '../../evo/bitset.js';
import { hypervolume } from '../../evo/hypervolume.js';
import { Nsga2, type Nsga2Options, type Nsga2State } from '../../evo/nsga2.js';
import { polynomialMutation, sbx } from '../../evo/real-operators.js';
import { ParetoArchive, type ArchiveState } from '../../evo/archive.js';
import { seededSampling } from '../../evo/sampling.js';
import { maxGenerations } from '../../evo/termination.js';
import type { Genome, Population } from '../../evo/types.js';
import type { Module } from '../../nn/module.js';
import { makeProgress, type Progress } from '../../report/progress.js';
import { writeJsonAtomic } from '../../train/checkpoint.js';
import type { BatchLike } from '../../train/evaluate.js';
import { AdaptiveMutation, type Rates } from './adaptive-mutation.js';
import { selectAnchors, type Anchors } from './anchors.js';
import { LEGACY_IDENTITY, SEARCH_IDENTITY, type SearchConfig } from './config.js';
import type { BatchEvaluator, MaskedEvaluator } from './evaluator.js';
import { importanceSampling, normalizedImportance } from './importance.js';
import { countOnes, type LayerMasks, type PrunableLayout } from './layout.js';
import { GlobalMagnitude } from './global-magnitude.js';
import { MAX_LAYER_PRUNE, phase1Bounds, stratifiedSampling, ThresholdDecoder } from './phase1.js';
import { BitSpace, taylorScores } from './phase2.js';
import { GroupDecoder } from './structured.js';
import { maxWrong } from './racing.js';
import { MemoEvaluator } from './memo.js';

/** Hypervolume reference point in (error, kept fraction): both objectives live in [0, 1]. */
export const HV_REF = [1, 1];

export interface SearchData {
  /** Scores candidates on the pre-loaded validation subset (also the dense error, Taylor importance, fine-tuning). */
  evaluator: MaskedEvaluator;
  /**
   * Scores each generation's candidates: an EvalPool of worker threads, or by default `evaluator`
   * itself, one candidate after another. Either gives the same errors.
   */
  batchEvaluator?: BatchEvaluator;
  /** Training batches of epoch e (fine-tuning, Taylor importance); the consumer disposes them. */
  trainBatches: (epoch: number) => Iterable<BatchLike>;
  batchesPerEpoch?: number;
  /** One example's shape (structured granularity: the picks are shrunk physically, which traces the model). */
  inputShape?: number[];
  /** The whole validation split (reported after fine-tuning). */
  valBatches: () => Iterable<BatchLike>;
  /** The test set: evaluated once per reported network, at the end. */
  testBatches: () => Iterable<BatchLike>;
}

export interface GenerationRecord {
  phase: 1 | 2;
  generation: number;
  evaluations: number;
  /** The phase's archive after this generation (every non-dominated point it has evaluated), [error, kept] sorted by kept. */
  front: [number, number][];
  hypervolume: number;
  bestError: number;
  minKept: number;
  seconds: number;
  rates?: Rates;
  success?: { off: number | null; on: number | null };
  /** Racing: candidates stopped early, and the fraction of (candidates x validation images) scored. */
  racing?: { stopped: number; scored: number };
}

export interface AnchorRecord extends Anchors {
  heavyGenome: number[];
  lightGenome: number[];
  heavyPoint: number[];
  lightPoint: number[];
}

interface SavedState {
  format: 'topiary.hier-moea.search';
  version: 1;
  identity: Record<string, unknown>;
  denseError: number;
  phase1: Nsga2State;
  anchors: AnchorRecord | null;
  phase2: Nsga2State | null;
  rates: Rates | null;
  history: GenerationRecord[];
  /** Each phase's Pareto archive (absent in states saved before archives: rebuilt from the population). */
  archive1?: ArchiveState;
  archive2?: ArchiveState | null;
}

export interface SearchOutcome {
  completed: boolean;
  denseError: number;
  history: GenerationRecord[];
  anchors: AnchorRecord | null;
  /** Final fronts with their masks (present when completed). */
  phase1Front: { error: number; kept: number; masks: LayerMasks }[];
  phase2Front: { error: number; kept: number; masks: LayerMasks }[];
  nBits: number;
  /** Candidates of this invocation served by the memo (scored before, or copies within their generation). */
  memoHits: number;
}

export interface SearchLoopOptions {
  out: string;
  progress?: boolean;
  /** Stop after this many generations of this call (tests of resuming); the state is saved first. */
  stopAfterGenerations?: number;
  log?: (line: string) => void;
}

export async function runPhases(model: Module, data: SearchData, cfg: SearchConfig, o: SearchLoopOptions): Promise<SearchOutcome> {
  mkdirSync(o.out, { recursive: true });
  const ev = data.evaluator, layout = ev.layout;
  // Each distinct network is scored once (memo.ts): the same results, fewer evaluations.
  const batchEv = new MemoEvaluator(data.batchEvaluator ?? ev);
  const statePath = join(o.out, 'search-state.json');
  const identity: Record<string, unknown> = Object.fromEntries(SEARCH_IDENTITY.map((k) => [k, cfg[k]]));
  identity.layers = layout.names.map((n, l) => `${n}:${layout.sizes[l]}`);
  const saved = readState(statePath, identity);
  const magnitudes = layout.magnitudes();
  // Structured granularity: one gene per family of channel groups (structured.ts), else one per layer.
  const decoder = ev.structure ? new GroupDecoder(layout, ev.structure, magnitudes, cfg.groupNorm) : new ThresholdDecoder(layout, magnitudes);
  const nGenes = decoder instanceof GroupDecoder ? decoder.nGenes : layout.nLayers;
  const seeds1 = decoder instanceof GroupDecoder ? decoder.seeds(cfg.magnitudeSeeds) : magnitudeGenomes(layout, magnitudes, cfg.magnitudeSeeds);
  const denseError = saved?.denseError ?? ev.denseError().error;
  const history: GenerationRecord[] = saved?.history ?? [];
  let ran = 0;
  const stopNow = () => o.stopAfterGenerations !== undefined && ran >= o.stopAfterGenerations;
  const bar = makeProgress({ enabled: o.progress ?? false, format: '{label} [{bar}] {value}/{total} | err {err} | size {size} | HV {hv} | {eps} eval/s | eta {eta_formatted}' });

  const bounds = phase1Bounds(nGenes);
  const opts1: Nsga2Options<Float64Array> = {
    popSize: cfg.pop, rng: new Rng(cfg.seed),
    sampling: seededSampling(seeds1, stratifiedSampling(nGenes), { clone: (g) => Float64Array.from(g), maxShare: 0.5 }),
    crossover: sbx({ bounds }), mutation: polynomialMutation({ bounds }), termination: maxGenerations(cfg.phase1Gens),
  };
  const algo1 = saved ? Nsga2.restore(saved.phase1, opts1) : new Nsga2(opts1);
  const archive1 = saved?.archive1 ? ParetoArchive.restore<Float64Array>(saved.archive1) : archiveOf(algo1);
  let archive2: ParetoArchive<BitSet> | null = saved?.archive2 ? ParetoArchive.restore<BitSet>(saved.archive2) : null;
  let anchors = saved?.anchors ?? null;
  let algo2: Nsga2<BitSet> | null = null;
  let mutation: AdaptiveMutation | null = null;
  let space: BitSpace | null = null;
  // Racing: the most errors each candidate may make before it cannot enter the archive (racing.ts).
  const raceBounds = <G extends Genome>(archive: ParetoArchive<G>, kept: number[]) => {
    if (!cfg.racing) return undefined;
    const front = archive.entries().map((e) => e.objectives);
    return (i: number) => maxWrong(front, kept[i], ev.n);
  };
  const racingOf = (res: { seen?: number; n: number }[]) => (cfg.racing
    ? { racing: { stopped: res.filter((r) => r.seen !== undefined).length, scored: res.reduce((s, r) => s + (r.seen ?? r.n), 0) / res.reduce((s, r) => s + r.n, 0) } }
    : {});
  const save = () => writeJsonAtomic(statePath, {
    format: 'topiary.hier-moea.search', version: 1, identity, denseError, phase1: algo1.state(), anchors,
    phase2: algo2?.state() ?? null, rates: mutation?.rates ?? null, history, archive1: archive1.state(), archive2: archive2?.state() ?? null,
  } satisfies SavedState);
  const outcome = (completed: boolean): SearchOutcome => ({
    completed, denseError, history, anchors, nBits: space?.nBits ?? 0, memoHits: batchEv.hits,
    phase1Front: completed ? archive1.entries().map((i) => ({ error: i.objectives[0], kept: i.objectives[1], masks: decoder.decode(i.genome) })) : [],
    phase2Front: completed && archive2 && space ? archive2.entries().map((i) => ({ error: i.objectives[0], kept: i.objectives[1], masks: space!.toMasks(i.genome) })) : [],
  });

  try {
    // ---- phase 1: per-layer thresholds -------------------------------------------------------
    if (!algo1.done()) startBar(bar, cfg.phase1Gens, algo1.generation, 'phase 1');
    while (!algo1.done()) {
      if (stopNow()) { save(); return outcome(false); }
      const t0 = performance.now();
      const batch = algo1.ask();
      const kept1 = batch.map((g) => decoder.keptFraction(g));
      const res = await batchEv.evaluateBatch(batch.length, (i) => decoder.decode(batch[i]), raceBounds(archive1, kept1));
      const objs1 = batch.map((g, i) => [res[i].error, kept1[i]]);
      algo1.tell(objs1);
      batch.forEach((g, i) => archive1.add(g, objs1[i]));
      history.push({ ...record(1, algo1, archive1, (performance.now() - t0) / 1000), ...racingOf(res) });
      ran++;
      save();
      report(bar, o, history[history.length - 1], cfg.phase1Gens, batch.length);
    }
    bar.stop();

    // ---- anchors -------------------------------------------------------------------------------
    if (!anchors) {
      const front = archive1.entries();
      const a = selectAnchors(front.map((i) => i.objectives), denseError, cfg.tolerance);
      anchors = {
        ...a, heavyGenome: Array.from(front[a.heavy].genome), lightGenome: Array.from(front[a.light].genome),
        heavyPoint: front[a.heavy].objectives, lightPoint: front[a.light].objectives,
      };
      save();
      o.log?.(`anchors: heavy ${fmtPoint(anchors.heavyPoint)}, light ${fmtPoint(anchors.lightPoint)} (${anchors.lightRule})`);
    }
    if (cfg.phase2Gens === 0) return outcome(true);

    // ---- phase 2: bits over the heavy anchor's weights -----------------------------------------
    const heavy = decoder.decode(Float64Array.from(anchors.heavyGenome));
    space = new BitSpace(layout, heavy);
    const raw = cfg.importance === 'magnitude' ? magnitudes : taylorScores(model, ev, heavy, take(data.trainBatches(0), cfg.importanceBatches));
    const s = normalizedImportance(space, raw);
    const light = space.fromMasks(decoder.decode(Float64Array.from(anchors.lightGenome)));
    // The sampled densities reach down to the sparsest phase-1 front point (relative to the heavy anchor).
    const sparsestKept = Math.min(...archive1.entries().map((i) => i.objectives[1]));
    const sparsest = Math.min(1, (sparsestKept * layout.total) / Math.max(1, space.nBits));
    mutation = new AdaptiveMutation(s, cfg.mutationRate);
    if (saved?.rates) mutation.rates = { ...saved.rates };
    // Phase 2 refines phase 1: the phase-1 front's solutions within the heavy anchor's size, projected
    // onto its weights (a phase-1 mask may keep a weight the heavy anchor drops), seed the population.
    const heavyKept = anchors.heavyPoint[1];
    const seeds = uniqueBits(archive1.entries().filter((i) => i.objectives[1] <= heavyKept).map((i) => space!.fromMasks(decoder.decode(i.genome))));
    const opts2: Nsga2Options<BitSet> = {
      popSize: cfg.pop, rng: new Rng(cfg.seed + 0x9e3779b1),
      sampling: seededSampling(seeds, importanceSampling({ space, s, light, temperature: cfg.temperature, sparsest }), { clone: (b) => b.clone(), maxShare: cfg.phase2Seeds }),
      crossover: cfg.crossover === 'uniform' ? uniformCrossover() : twoPointCrossover(), mutation, termination: maxGenerations(cfg.phase2Gens),
    };
    algo2 = saved?.phase2 ? Nsga2.restore(saved.phase2, opts2) : new Nsga2(opts2);
    archive2 ??= archiveOf(algo2);
    if (!algo2.done()) startBar(bar, cfg.phase2Gens, algo2.generation, 'phase 2');
    while (!algo2.done()) {
      if (stopNow()) { save(); return outcome(false); }
      const t0 = performance.now();
      const batch = algo2.ask();
      const kept2 = batch.map((b) => space!.keptFraction(b));
      const res = await batchEv.evaluateBatch(batch.length, (i) => space!.toMasks(batch[i]), raceBounds(archive2!, kept2));
      const objs2 = batch.map((b, i) => [res[i].error, kept2[i]]);
      algo2.tell(objs2);
      batch.forEach((b, i) => archive2!.add(b, objs2[i]));
      const ad = mutation.adapt(batch, new Set(algo2.population.map((i) => i.genome)));
      history.push({ ...record(2, algo2, archive2!, (performance.now() - t0) / 1000), rates: ad.rates, success: { off: ad.successOff, on: ad.successOn }, ...racingOf(res) });
      ran++;
      save();
      report(bar, o, history[history.length - 1], cfg.phase2Gens, batch.length);
    }
    bar.stop();
    return outcome(true);
  } finally {
    bar.stop();
    ev.restore();
  }
}

function readState(path: string, identity: Record<string, unknown>): SavedState | null {
  if (!existsSync(path)) return null;
  let st: SavedState;
  try {
    st = JSON.parse(readFileSync(path, 'utf8')) as SavedState;
  } catch (e) {
    throw new SerializationError(`${path}: cannot read the saved search (${(e as Error).message})`, { cause: e });
  }
  if (st?.format !== 'topiary.hier-moea.search' || st.version !== 1) throw new SerializationError(`${path}: not a HIER-MOEA search state`);
  for (const [k, v] of Object.entries(identity)) {
    const theirs = k in st.identity ? st.identity[k] : LEGACY_IDENTITY[k as keyof SearchConfig];
    if (JSON.stringify(theirs) !== JSON.stringify(v)) {
      throw new ConfigError(`${k}: the output folder holds a search run with ${k} = ${JSON.stringify(theirs)}, not ${JSON.stringify(v)}; ` +
        'use another --out or the same options to resume', [{ path: k, message: 'differs from the saved search' }]);
    }
  }
  return st;
}

/** Rank-0 individuals, one per distinct objective vector, by kept fraction. */
export function frontOf<G extends Genome>(pop: Population<G>): Population<G> {
  const seen = new Set<string>();
  return pop.filter((i) => i.rank === 0).sort((a, b) => a.objectives[1] - b.objectives[1] || a.objectives[0] - b.objectives[0])
    .filter((i) => { const k = i.objectives.join(','); if (seen.has(k)) return false; seen.add(k); return true; });
}

/** An archive holding a population's first front (a new algorithm's is empty). */
function archiveOf<G extends Genome>(algo: Nsga2<G>): ParetoArchive<G> {
  const a = new ParetoArchive<G>();
  for (const i of frontOf(algo.population)) a.add(i.genome, i.objectives);
  return a;
}

function record<G extends Genome>(phase: 1 | 2, algo: Nsga2<G>, archive: ParetoArchive<G>, seconds: number): GenerationRecord {
  const front = archive.entries().map((i) => [i.objectives[0], i.objectives[1]] as [number, number]);
  return {
    phase, generation: algo.generation, evaluations: algo.evaluations, front, hypervolume: hypervolume(front, HV_REF),
    bestError: Math.min(...front.map((p) => p[0])), minKept: Math.min(...front.map((p) => p[1])), seconds,
  };
}

/**
 * Phase-1 genomes of one-shot global magnitude pruning at the given sparsities: each layer's gene is
 * the fraction of that layer the global threshold removes (capped like any gene), so decoding gives
 * the global masks back (a layer pruned past the cap keeps its few largest weights).
 */
export function magnitudeGenomes(layout: PrunableLayout, magnitudes: Float64Array[], sparsities: readonly number[]): Float64Array[] {
  if (sparsities.length === 0) return [];
  const gm = new GlobalMagnitude(layout, magnitudes);
  return sparsities.map((s) => Float64Array.from(gm.masks(1 - s), (m, l) => Math.min(MAX_LAYER_PRUNE, 1 - countOnes(m) / layout.sizes[l])));
}

/** Distinct bit sets, first occurrence kept. */
function uniqueBits(bits: BitSet[]): BitSet[] {
  const seen = new Set<string>();
  return bits.filter((b) => { const k = b.words.join(','); if (seen.has(k)) return false; seen.add(k); return true; });
}

function* take<T extends BatchLike>(it: Iterable<T>, n: number): Generator<T> {
  if (n <= 0) return;
  let i = 0;
  for (const b of it) {
    yield b;
    if (++i >= n) return;
  }
}

const pct = (x: number, d = 2) => `${(100 * x).toFixed(d)}%`;
const fmtPoint = (p: number[]) => `(error ${pct(p[0])}, kept ${pct(p[1])})`;

function startBar(bar: Progress, total: number, at: number, label: string): void {
  bar.start(total, label);
  bar.update(at, { err: '-', size: '-', hv: '-', eps: '-' });
}

function report(bar: Progress, o: SearchLoopOptions, r: GenerationRecord, total: number, n: number): void {
  const fields = { err: pct(r.bestError), size: pct(r.minKept), hv: r.hypervolume.toFixed(4), eps: (n / r.seconds).toFixed(2) };
  bar.update(r.generation, fields);
  if (!process.stderr.isTTY || !o.progress) {
    o.log?.(`phase ${r.phase} gen ${r.generation}/${total}: best err ${fields.err}, min size ${fields.size}, HV ${fields.hv}, ` +
      `${fields.eps} eval/s${r.rates ? `, rates off ${r.rates.off.toExponential(2)} on ${r.rates.on.toExponential(2)}` : ''}`);
  }
}
