/**
 * HIER-MOEA from code. `hierMoea(model, data, options)` runs the whole search as `topiary search`
 * does (same evaluator, same phases, same outputs in `out`) and returns the Pareto set with every
 * mask. `hierMoeaLoop(model, options)` hands the loop itself to the caller, ask/tell: the caller
 * evaluates each candidate however it likes and tells two objectives back, both minimized (an
 * error and a cost: weight count, FLOPs, latency measured on a device...). Its phases are those of
 * prune/hier-moea/search.ts runPhases; told the evaluator's error and the kept fraction, it finds
 * the same fronts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { z } from 'zod';
import { ArgumentError, ConfigError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { DataLoader } from '../data/loader.js';
import { twoPointCrossover, uniformCrossover } from '../evo/binary-operators.js';
import type { BitSet } from '../evo/bitset.js';
import { dominates } from '../evo/sorting.js';
import { ParetoArchive } from '../evo/archive.js';
import { Nsga2 } from '../evo/nsga2.js';
import { polynomialMutation, sbx } from '../evo/real-operators.js';
import { seededSampling } from '../evo/sampling.js';
import { maxGenerations } from '../evo/termination.js';
import { BatchNorm } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { tensor } from '../tensor/creation.js';
import { keep, tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { AdaptiveMutation } from '../prune/hier-moea/adaptive-mutation.js';
import { selectAnchors, type Anchors } from '../prune/hier-moea/anchors.js';
import { SearchConfig } from '../prune/hier-moea/config.js';
import { MaskedEvaluator } from '../prune/hier-moea/evaluator.js';
import { importanceSampling, normalizedImportance } from '../prune/hier-moea/importance.js';
import { PrunableLayout, type LayerMasks } from '../prune/hier-moea/layout.js';
import { loadMaskBits } from '../prune/hier-moea/mask-io.js';
import { phase1Bounds, stratifiedSampling, ThresholdDecoder } from '../prune/hier-moea/phase1.js';
import { BitSpace } from '../prune/hier-moea/phase2.js';
import { hierMoeaSearch, type SearchResult } from '../prune/hier-moea/run.js';
import { magnitudeGenomes } from '../prune/hier-moea/search.js';
import { MaskSet } from '../prune/masks.js';

/** `topiary search`'s options (defaults included), less the checkpoint fields. */
export type HierMoeaOptions = Partial<Omit<z.input<typeof SearchConfig>, 'from' | 'model' | 'dataset' | 'dense'>> & {
  /** Folder for the search state, masks, plots and result.json (default: a new temporary folder). */
  out?: string;
  log?: (line: string) => void;
};

/** The loaders of a run: training (fine-tuning, BatchNorm calibration), validation (scores candidates) and test. */
export interface HierMoeaData { train: DataLoader; val: DataLoader; test: DataLoader }

/** One solution of the final Pareto set, with its masks. */
export interface ParetoSolution {
  index: number;
  phase: 1 | 2;
  valError: number;
  /** Kept fraction of the prunable weights. */
  kept: number;
  sparsity: number;
  /** One Uint8Array per prunable weight (1 = kept), in `layers` order. */
  masks: LayerMasks;
}

/** What `hierMoea` returns. */
export interface HierMoeaResult {
  /** The final Pareto set, sparsest last... ordered by kept fraction, ascending. */
  solutions: ParetoSolution[];
  /** Index of the knee solution (fine-tuned in `out/finetune/knee`). */
  knee: number;
  /** Prunable weights, in mask order. */
  layers: string[];
  /** Everything `topiary search` reports (hypervolumes, anchors, picks, the global-magnitude reference). */
  result: SearchResult;
  out: string;
}

function parseOptions(o: HierMoeaOptions): SearchConfig {
  const { out: _o, log: _l, ...rest } = o;
  const r = SearchConfig.safeParse(rest);
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
    throw new ConfigError(`hierMoea: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  return r.data;
}

/**
 * The whole search on a trained model, as `topiary search` runs it: candidates scored on the first
 * `valSize` examples of `data.val`, BatchNorm recalibrated on training batches, the knee and the
 * picks fine-tuned (the model is left as it was given).
 * @example
 * const { solutions, knee } = await hierMoea(model, { train, val, test }, { pop: 8, phase1Gens: 3, phase2Gens: 3, valSize: 500 });
 * const masks = toMaskSet(model, solutions[knee].masks);
 */
export async function hierMoea(model: Module, data: HierMoeaData, o: HierMoeaOptions = {}): Promise<HierMoeaResult> {
  const cfg = parseOptions(o);
  if (!data?.train || !data.val || !data.test) throw new ArgumentError('hierMoea: data: expected { train, val, test } DataLoaders');
  if (cfg.granularity !== 'unstructured') throw new ConfigError('hierMoea: granularity: a structured search traces the model (use topiary search --granularity structured); give unstructured', [{ path: 'granularity', message: 'unstructured only here' }]);
  if (cfg.workers !== 1) throw new ConfigError('hierMoea: workers: worker threads need a registry model (use topiary search); give 1', [{ path: 'workers', message: 'must be 1 here' }]);
  const split = data.val.indices.length;
  if (cfg.valSize > split) throw new ConfigError(`hierMoea: valSize: ${cfg.valSize} is larger than the validation loader (${split} examples)`, [{ path: 'valSize', message: `at most ${split}` }]);
  const out = o.out ?? mkdtempSync(join(tmpdir(), 'topiary-hier-moea-'));
  // As runHierMoea (experiment/reproduce-hier-moea.ts) prepares them: the same examples, the same order.
  const valSub = new DataLoader({ dataset: data.val.dataset, indices: data.val.indices.slice(0, cfg.valSize) }, { batchSize: cfg.evalBatchSize, device: cfg.device });
  const val = [...valSub.epoch(0)].map((b) => ({ x: b.x, y: b.y }));
  const calib: Tensor[] = [];
  if (model.modules().some((m) => m instanceof BatchNorm)) {
    const cl = new DataLoader({ dataset: data.train.dataset, indices: data.train.indices }, { batchSize: cfg.bnBatchSize, shuffle: true, seed: cfg.seed, device: cfg.device });
    for (const b of cl.epoch(0)) {
      if (calib.length >= cfg.bnBatches) { b.x.dispose(); b.y.dispose(); break; }
      calib.push(b.x);
      b.y.dispose();
    }
  }
  const layout = new PrunableLayout(model);
  const evaluator = new MaskedEvaluator(model, layout, { val, calib });
  try {
    const result = await hierMoeaSearch(model, {
      evaluator, trainBatches: (e) => data.train.epoch(e), batchesPerEpoch: data.train.length,
      valBatches: () => data.val.epoch(0), testBatches: () => data.test.epoch(0),
    }, cfg, { out, log: o.log });
    const bits = result.completed ? loadMaskBits(join(out, 'pareto-masks.safetensors'), layout) : [];
    const solutions = result.solutions.map((s, i) => ({ index: s.index, phase: s.phase, valError: s.valError, kept: s.kept, sparsity: s.sparsity, masks: layout.fromBits(bits[i]) }));
    return { solutions, knee: result.knee, layers: layout.names, result, out };
  } finally {
    evaluator.dispose();
  }
}

/** Masks of a solution as a MaskSet over the model's prunable weights (enforce them with `.callback()`). */
export function toMaskSet(model: Module, masks: LayerMasks): MaskSet {
  const layout = new PrunableLayout(model);
  layout.check(masks);
  const set = new MaskSet(model, (n) => layout.names.includes(n));
  layout.names.forEach((n, l) => set.set(n, tensor(masks[l], { shape: layout.params[l].shape }).to('bool')));
  return set;
}

/** Options of the ask/tell loop: HIER-MOEA's search settings (no evaluation settings: the caller evaluates). */
export type HierMoeaLoopOptions = Partial<Pick<z.input<typeof SearchConfig>, 'pop' | 'phase1Gens' | 'phase2Gens' | 'tolerance' | 'temperature' | 'mutationRate' | 'crossover' | 'phase2Seeds' | 'magnitudeSeeds' | 'seed'>>;

/** One network to evaluate. */
export interface Candidate {
  /** 0: the dense network (asked once, first), 1 or 2: the search's phase. */
  phase: 0 | 1 | 2;
  masks: LayerMasks;
  /** Kept fraction of the prunable weights. */
  kept: number;
  /** Write the masks into the model's weights (dense weights times the mask); `loop.restore()` undoes it. */
  apply(): void;
}

/** A point of the ask/tell loop's final front: the objectives told, the kept fraction, the masks. */
export interface FrontPoint { objectives: number[]; kept: number; phase: 1 | 2; masks: LayerMasks }

type Stage = 'dense' | 'phase1' | 'phase2' | 'done';

/**
 * HIER-MOEA's two phases, ask/tell: `ask()` returns the candidates to evaluate (null when the
 * search is over), `tell(objectives)` takes one [error, cost] pair per candidate, in order. The
 * first ask is the dense network alone; its error anchors phase 2 (the tolerance is counted from it).
 * @example
 * const loop = hierMoeaLoop(model, { pop: 8, phase1Gens: 3, phase2Gens: 3 });
 * for (let c = loop.ask(); c; c = loop.ask()) loop.tell(c.map((x) => { x.apply(); return [myError(model), myLatency(model)]; }));
 * loop.restore();
 * const front = loop.front();
 */
export class HierMoeaLoop {
  readonly layout: PrunableLayout;
  private readonly cfg: SearchConfig;
  private readonly decoder: ThresholdDecoder;
  private readonly magnitudes: Float64Array[];
  private readonly dense: Tensor[];
  private readonly algo1: Nsga2<Float64Array>;
  private readonly archive1 = new ParetoArchive<Float64Array>();
  private algo2: Nsga2<BitSet> | null = null;
  private archive2: ParetoArchive<BitSet> | null = null;
  private space: BitSpace | null = null;
  private mutation: AdaptiveMutation | null = null;
  private stage: Stage = 'dense';
  private pending: Candidate[] | null = null;
  private pending1: Float64Array[] | null = null;
  private pending2: BitSet[] | null = null;
  /** The dense network's objectives (after the first tell). */
  denseObjectives: number[] | null = null;
  anchors: Anchors | null = null;

  constructor(readonly model: Module, o: HierMoeaLoopOptions = {}) {
    this.cfg = parseOptions(o);
    this.layout = new PrunableLayout(model);
    this.magnitudes = this.layout.magnitudes();
    this.decoder = new ThresholdDecoder(this.layout, this.magnitudes);
    this.dense = tidy(() => noGrad(() => this.layout.params.map((p) => keep(p.detach().clone()))));
    const bounds = phase1Bounds(this.layout.nLayers);
    this.algo1 = new Nsga2<Float64Array>({
      popSize: this.cfg.pop, rng: new Rng(this.cfg.seed),
      sampling: seededSampling(magnitudeGenomes(this.layout, this.magnitudes, this.cfg.magnitudeSeeds), stratifiedSampling(this.layout.nLayers), { clone: (g) => Float64Array.from(g), maxShare: 0.5 }),
      crossover: sbx({ bounds }), mutation: polynomialMutation({ bounds }), termination: maxGenerations(this.cfg.phase1Gens),
    });
  }

  /** Which part of the search the next ask belongs to. */
  get phase(): Stage { return this.stage; }

  private candidate(phase: 0 | 1 | 2, masks: LayerMasks, kept: number): Candidate {
    return { phase, masks, kept, apply: () => this.apply(masks) };
  }

  /** Write masks into the model's weights (dense times mask). */
  apply(masks: LayerMasks): void {
    this.layout.check(masks);
    tidy(() => noGrad(() => this.layout.params.forEach((p, l) => { p.copy_(this.dense[l]).mul_(tensor(masks[l], { shape: p.shape, device: p.device })); })));
  }

  /** The dense weights back in the model. */
  restore(): void {
    noGrad(() => this.layout.params.forEach((p, l) => p.copy_(this.dense[l])));
  }

  ask(): Candidate[] | null {
    if (this.pending) return this.pending;
    if (this.stage === 'dense') {
      this.pending = [this.candidate(0, this.layout.sizes.map((s) => new Uint8Array(s).fill(1)), 1)];
      return this.pending;
    }
    if (this.stage === 'phase1' && this.algo1.done()) this.startPhase2();
    if (this.stage === 'phase1') {
      const batch = this.algo1.ask();
      this.pending1 = batch;
      this.pending = batch.map((g) => this.candidate(1, this.decoder.decode(g), this.decoder.keptFraction(g)));
      return this.pending;
    }
    if (this.stage === 'phase2' && this.algo2!.done()) this.stage = 'done';
    if (this.stage === 'phase2') {
      const batch = this.algo2!.ask();
      this.pending2 = batch;
      this.pending = batch.map((b) => this.candidate(2, this.space!.toMasks(b), this.space!.keptFraction(b)));
      return this.pending;
    }
    return null;
  }

  tell(objectives: readonly (readonly number[])[]): void {
    const asked = this.pending;
    if (!asked) throw new ArgumentError('HierMoeaLoop.tell: nothing was asked; call ask() first');
    if (!Array.isArray(objectives) || objectives.length !== asked.length) throw new ArgumentError(`HierMoeaLoop.tell: objectives: ${asked.length} candidates asked, ${objectives?.length} told`);
    objectives.forEach((v, i) => {
      if (!Array.isArray(v) || v.length !== 2 || !v.every(Number.isFinite)) throw new ArgumentError(`HierMoeaLoop.tell: objectives[${i}]: expected two finite numbers [error, cost], got ${JSON.stringify(v)}`);
    });
    const objs = objectives.map((v) => [v[0], v[1]]);
    if (this.stage === 'dense') {
      this.denseObjectives = objs[0];
      this.stage = 'phase1';
    } else if (this.stage === 'phase1') {
      this.algo1.tell(objs);
      this.pending1!.forEach((g, i) => this.archive1.add(g, objs[i]));
    } else {
      this.algo2!.tell(objs);
      this.pending2!.forEach((b, i) => this.archive2!.add(b, objs[i]));
      this.mutation!.adapt(this.pending2!, new Set(this.algo2!.population.map((i) => i.genome)));
    }
    this.pending = this.pending1 = this.pending2 = null;
  }

  /** Anchors from the phase-1 front, then phase 2 over the heavy anchor's weights (as runPhases). */
  private startPhase2(): void {
    const cfg = this.cfg, layout = this.layout, decoder = this.decoder;
    const front = this.archive1.entries();
    // The tolerance counts from the dense network's error; when the caller's numbers put every
    // phase-1 point above it (the dense genome is in phase 1's first population, so told the same
    // error it never is), from the front's best instead, so that a heavy anchor exists.
    const best = Math.min(...front.map((i) => i.objectives[0]));
    this.anchors = selectAnchors(front.map((i) => i.objectives), Math.max(this.denseObjectives![0], best), cfg.tolerance);
    if (cfg.phase2Gens === 0) { this.stage = 'done'; return; }
    const heavyG = front[this.anchors.heavy].genome;
    const heavy = decoder.decode(heavyG);
    const space = new BitSpace(layout, heavy);
    const s = normalizedImportance(space, this.magnitudes);
    const light = space.fromMasks(decoder.decode(front[this.anchors.light].genome));
    const sparsestKept = Math.min(...front.map((i) => decoder.keptFraction(i.genome)));
    const sparsest = Math.min(1, (sparsestKept * layout.total) / Math.max(1, space.nBits));
    const heavyKept = decoder.keptFraction(heavyG);
    const seen = new Set<string>();
    const seeds = front.filter((i) => decoder.keptFraction(i.genome) <= heavyKept).map((i) => space.fromMasks(decoder.decode(i.genome)))
      .filter((b) => { const k = b.words.join(','); if (seen.has(k)) return false; seen.add(k); return true; });
    this.mutation = new AdaptiveMutation(s, cfg.mutationRate);
    this.algo2 = new Nsga2<BitSet>({
      popSize: cfg.pop, rng: new Rng(cfg.seed + 0x9e3779b1),
      sampling: seededSampling(seeds, importanceSampling({ space, s, light, temperature: cfg.temperature, sparsest }), { clone: (b) => b.clone(), maxShare: cfg.phase2Seeds }),
      crossover: cfg.crossover === 'uniform' ? uniformCrossover() : twoPointCrossover(), mutation: this.mutation, termination: maxGenerations(cfg.phase2Gens),
    });
    this.archive2 = new ParetoArchive<BitSet>();
    this.space = space;
    this.stage = 'phase2';
  }

  /** Each phase's archive front (every non-dominated point evaluated), [objectives] sorted by cost. */
  phaseFront(phase: 1 | 2): number[][] {
    const a = phase === 1 ? this.archive1 : this.archive2;
    return a ? a.entries().map((i) => [...i.objectives]) : [];
  }

  /** The final Pareto set: the non-dominated points of both phases, by cost, with their masks. */
  front(): FrontPoint[] {
    const cands: FrontPoint[] = [
      ...this.archive1.entries().map((i) => ({ objectives: [...i.objectives], kept: this.decoder.keptFraction(i.genome), phase: 1 as const, masks: this.decoder.decode(i.genome) })),
      ...(this.archive2 && this.space ? this.archive2.entries().map((i) => ({ objectives: [...i.objectives], kept: this.space!.keptFraction(i.genome), phase: 2 as const, masks: this.space!.toMasks(i.genome) })) : []),
    ];
    return cands.filter((a, i) => !cands.some((b, j) => j !== i && (dominates(b.objectives, a.objectives) ||
      (b.objectives[0] === a.objectives[0] && b.objectives[1] === a.objectives[1] && j < i)))).sort((a, b) => a.objectives[1] - b.objectives[1]);
  }

  /** Restores the dense weights and frees the copies. */
  dispose(): void {
    this.restore();
    for (const t of this.dense) t.dispose();
  }
}

/** HIER-MOEA's ask/tell loop over `model` (see HierMoeaLoop). */
export function hierMoeaLoop(model: Module, o: HierMoeaLoopOptions = {}): HierMoeaLoop {
  return new HierMoeaLoop(model, o);
}
