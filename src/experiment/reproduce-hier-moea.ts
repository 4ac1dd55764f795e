/**
 * HIER-MOEA from a trained checkpoint (or from a dense training it runs first), and
 * `topiary reproduce hier-moea`, which writes docs/results/hier-moea.md.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { checkDevice } from '../core/device.js';
import { ConfigError, DivergenceError, SerializationError, ShapeError } from '../core/errors.js';
import { checkOutDir, lockRunFolder } from '../core/run-lock.js';
import { availableParallelism } from 'node:os';
import { getNumThreads, manualSeed, setNumThreads } from '../core/runtime.js';
import { DataLoader } from '../data/index.js';
import { importOnnxFor, isOnnxFile, ONNX_MODEL } from '../graph/onnx-import.js';
import { createModel } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import { EvalPool, hierMoeaSearch, MaskedEvaluator, PrunableLayout, SearchConfig, type BatchEvaluator, type EvalPoolOptions } from '../prune/hier-moea/index.js';
import { graphOf } from '../prune/hier-moea/model-source.js';
import { normsOf } from '../prune/hier-moea/norms.js';
import { groupStructure } from '../prune/hier-moea/structured.js';
import { hardestFirst } from '../prune/hier-moea/racing.js';
import { renderResultsDoc, type HierMoeaRunResult, type ReproRun } from '../prune/hier-moea/results-doc.js';
import { firstNonFinite, loadSafetensors } from '../tensor/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';
import { TrainConfig, validate } from './config.js';
import { setupData } from './data-setup.js';
import { versions } from './env.js';
import { canonicalJson } from './hash.js';
import { registerReproduction, type ReproduceOptions } from './reproduce.js';
import { finishedResult, runTraining } from './train-run.js';

export interface HierMoeaRunOptions {
  out: string;
  dataDir?: string;
  progress?: boolean;
  stopAfterGenerations?: number;
  log?: (line: string) => void;
  title?: string;
  /**
   * Scores each generation's candidates elsewhere (src/queue's remote workers), started once the
   * model and the evaluation data are ready; in place of the worker threads of `cfg.workers`.
   */
  remote?: (setup: RemoteEvalSetup) => Promise<BatchEvaluator & { close(): Promise<void> }>;
}

/** What a remote evaluator gets: EvalPool's options without the thread counts. */
export type RemoteEvalSetup = Omit<EvalPoolOptions, 'workers' | 'threads'>;

/** Trains the dense network of `cfg.dense` into out/dense unless done; returns its model.safetensors. */
export async function ensureDense(cfg: SearchConfig, o: HierMoeaRunOptions): Promise<string> {
  if (cfg.from) return cfg.from;
  if (!cfg.dense) throw new ConfigError('from: give --from <model.safetensors written by topiary train>, or a recipe with a dense: section', [{ path: 'from', message: 'missing' }]);
  const dc = validate(TrainConfig, cfg.dense, 'dense training options');
  const dir = join(o.out, 'dense');
  const done = finishedResult(dir);
  if (done && canonicalJson(done.config) !== canonicalJson(dc)) {
    throw new ConfigError(`dense: ${dir} holds a dense run with another configuration; use another --out`, [{ path: 'dense', message: 'differs from the finished run' }]);
  }
  if (!done) {
    const run = await runTraining(dc, { out: dir, dataDir: o.dataDir, progress: o.progress }, { kind: 'dense' });
    run.model.dispose();
    run.data.dispose();
  }
  return join(dir, 'model.safetensors');
}

/**
 * The whole search: checkpoint and data checked, validation subset and calibration batches pre-loaded.
 * The output folder is locked for the whole search (a second process on it is refused, named).
 */
export async function runHierMoea(cfg: SearchConfig, o: HierMoeaRunOptions): Promise<HierMoeaRunResult> {
  checkDevice(cfg.device);
  const cores = availableParallelism();
  if (cfg.workers > cores) throw new ConfigError(`workers: ${cfg.workers} is more than the ${cores} cores of this machine; use at most ${cores}`, [{ path: 'workers', message: `at most ${cores}` }]);
  if (cfg.granularity === 'structured' && cfg.phase2Gens > 0) {
    throw new ConfigError(`phase2Gens: phase 2 flips single weights; a structured search runs phase 1 only: give --phase2-gens 0 (got ${cfg.phase2Gens})`, [{ path: 'phase2Gens', message: 'must be 0 with granularity structured' }]);
  }
  if (cfg.granularity === 'structured' && o.remote) throw new ConfigError('granularity: a structured search evaluates in this process or in worker threads (--workers), not on the queue', [{ path: 'granularity', message: 'not with --queue' }]);
  checkOutDir(o.out);
  const release = lockRunFolder(o.out);
  try {
    return await searchIn(cfg, o);
  } finally {
    release();
  }
}

async function searchIn(cfg: SearchConfig, o: HierMoeaRunOptions): Promise<HierMoeaRunResult> {
  const from = await ensureDense(cfg, o);
  if (!existsSync(from)) throw new ConfigError(`from: no checkpoint at ${from}`, [{ path: 'from', message: 'not found' }]);
  const onnx = isOnnxFile(from);
  let tensors: Record<string, Tensor> = {};
  const free = () => { for (const t of Object.values(tensors)) t.dispose(); };
  let tc: TrainConfig;
  if (onnx) {
    tc = onnxTrainConfig(cfg, from);
  } else {
    const loaded = loadSafetensors(from);
    tensors = loaded.tensors;
    const metadata = loaded.metadata;
    try {
      if (!metadata.model || !metadata.config) throw new ConfigError(`from: ${from} has no model/config metadata (write it with topiary train)`, [{ path: 'from', message: 'no metadata' }]);
      if (cfg.model && cfg.model !== metadata.model) throw new ConfigError(`model: '${cfg.model}' given, but ${from} holds a '${metadata.model}'`, [{ path: 'model', message: 'does not match the checkpoint' }]);
      if (cfg.dataset && cfg.dataset !== metadata.dataset) throw new ConfigError(`dataset: '${cfg.dataset}' given, but ${from} was trained on '${metadata.dataset}'`, [{ path: 'dataset', message: 'does not match the checkpoint' }]);
      let meta: unknown;
      try {
        meta = JSON.parse(metadata.config);
      } catch (e) {
        throw new SerializationError(`from: ${from}: its metadata 'config' is not JSON (${(e as Error).message})`, { cause: e });
      }
      tc = validate(TrainConfig, meta, `${from} metadata`);
      const bad = firstNonFinite(tensors);
      if (bad !== undefined) throw new DivergenceError(`from: ${from}: tensor '${bad}' holds NaN or infinite values (a diverged training?); refusing to search it`);
    } catch (e) { free(); throw e; }
  }
  const threads = cfg.threads ?? tc.threads;
  if (threads) setNumThreads(threads);
  manualSeed(cfg.seed);
  const data = await setupData({ ...tc, device: cfg.device }, { dataDir: o.dataDir, evalBatchSize: cfg.evalBatchSize });
  const modelConfig = { inputShape: data.inputShape, numClasses: data.numClasses, widths: tc.widths, init: tc.init };
  let model: Module;
  try {
    // An ONNX file is imported for the dataset (its input and output checked against it, one line if they differ).
    model = onnx ? importOnnxFor(from, { inputShape: data.inputShape, numClasses: data.numClasses, dataset: tc.dataset }) : createModel(tc.model, modelConfig);
  } catch (e) { free(); data.dispose(); throw e; }
  if (onnx) {
    const bad = firstNonFinite(model.stateDict());
    if (bad !== undefined) { model.dispose(); data.dispose(); throw new DivergenceError(`from: ${from}: tensor '${bad}' holds NaN or infinite values; refusing to search it`); }
  }
  // Workers rebuild a zoo model by name; an imported model travels as its graph (model-source.ts).
  const source = { model: tc.model, config: modelConfig, graph: graphOf(model) };
  let evaluator: MaskedEvaluator | null = null;
  let pool: (BatchEvaluator & { close(): Promise<void> }) | null = null;
  try {
    try {
      if (!onnx) model.loadStateDict(tensors);
    } catch (e) {
      if (e instanceof SerializationError || e instanceof ShapeError) {
        throw new ConfigError(`from: ${from} does not match model '${tc.model}': ${e.message}`, [{ path: 'from', message: 'does not match the model' }], { cause: e });
      }
      throw e;
    } finally { free(); }
    if (cfg.device !== 'cpu') model.to(cfg.device);
    if (!data.valLoader) throw new ConfigError('valSize: the dense run held out no validation split (valFraction 0)', [{ path: 'valSize', message: 'no validation split' }]);
    const split = data.valLoader.indices.length;
    if (cfg.valSize > split) {
      throw new ConfigError(`valSize: ${cfg.valSize} is larger than the validation split (${split} examples)`, [{ path: 'valSize', message: `at most ${split}` }]);
    }
    const valSub = new DataLoader({ dataset: data.valLoader.dataset, indices: data.valLoader.indices.slice(0, cfg.valSize) }, { batchSize: cfg.evalBatchSize, device: cfg.device });
    let val = [...valSub.epoch(0)].map((b) => ({ x: b.x, y: b.y }));
    // Racing: hardest images first, so a dominated candidate's errors come early (racing.ts).
    if (cfg.racing) val = hardestFirst(model, val, cfg.evalBatchSize);
    const calib: Tensor[] = [];
    if (normsOf(model).layers.length > 0) { // BatchNorm modules, or an imported graph's batchNorm nodes
      // Training data without augmentation, in a fixed seeded order: every candidate sees the same batches.
      const cl = new DataLoader({ dataset: data.trainLoader.dataset, indices: data.trainLoader.indices }, { batchSize: cfg.bnBatchSize, shuffle: true, seed: cfg.seed, device: cfg.device });
      for (const b of cl.epoch(0)) {
        if (calib.length >= cfg.bnBatches) { b.x.dispose(); b.y.dispose(); break; }
        calib.push(b.x);
        b.y.dispose();
      }
    }
    const layout = new PrunableLayout(model);
    const structure = cfg.granularity === 'structured' ? groupStructure(model, layout, data.inputShape) : undefined;
    evaluator = new MaskedEvaluator(model, layout, { val, calib }, { structure });
    if (o.remote) {
      pool = await o.remote({ ...source, state: model.stateDict(), data: { val, calib }, layout });
    } else if (cfg.workers > 1) {
      // The main thread's libtorch threads are shared out among the workers (at least one each).
      const perWorker = Math.max(1, Math.floor((threads ?? getNumThreads()) / cfg.workers));
      const threadPool = await EvalPool.start({ ...source, state: model.stateDict(), data: { val, calib }, layout, structure, workers: cfg.workers, threads: perWorker });
      pool = threadPool;
      o.log?.(`evaluating candidates in ${threadPool.size} worker threads, ${perWorker} libtorch thread${perWorker > 1 ? 's' : ''} each`);
    }
    const res = await hierMoeaSearch(model, {
      evaluator, batchEvaluator: pool ?? undefined, trainBatches: (e) => data.trainLoader.epoch(e), batchesPerEpoch: data.trainLoader.length,
      valBatches: () => data.valLoader!.epoch(0), testBatches: () => data.testLoader.epoch(0), inputShape: data.inputShape,
    }, cfg, {
      out: o.out, progress: o.progress, stopAfterGenerations: o.stopAfterGenerations, log: o.log, title: o.title,
      meta: {
        model: tc.model, dataset: tc.dataset, from, denseConfig: tc, totalParams: model.numParameters(), prunableParams: layout.total,
        prunableLayers: layout.names.length, versions: versions(),
      },
    });
    const denseResult = join(dirname(from), 'result.json');
    const denseSeconds = existsSync(denseResult) ? Number(JSON.parse(readFileSync(denseResult, 'utf8')).wallSeconds ?? NaN) : NaN;
    return { ...res, totalParams: model.numParameters(), prunableParams: layout.total, prunableLayers: layout.nLayers, denseSeconds: Number.isFinite(denseSeconds) ? denseSeconds : null };
  } finally {
    await pool?.close();
    evaluator?.dispose();
    model.dispose();
    data.dispose();
  }
}

/**
 * An ONNX file has no training metadata: the data settings (split, batch size, seed) come from the
 * recipe's dense: section when there is one, else the defaults; the dataset from --dataset.
 */
function onnxTrainConfig(cfg: SearchConfig, from: string): TrainConfig {
  if (cfg.model !== undefined && cfg.model !== ONNX_MODEL) throw new ConfigError(`model: --from ${from} is an ONNX file and searches the model it holds; leave --model out`, [{ path: 'model', message: 'given with an ONNX --from' }]);
  const dataset = cfg.dataset ?? (cfg.dense?.dataset as string | undefined);
  if (!dataset) throw new ConfigError(`dataset: --from ${from} is an ONNX file, which names no dataset; give --dataset`, [{ path: 'dataset', message: 'required with an ONNX --from' }]);
  return validate(TrainConfig, { epochs: 1, batchSize: 128, lr: cfg.finetuneLr, ...(cfg.dense ?? {}), model: ONNX_MODEL, dataset }, 'search data options');
}

// ---- topiary reproduce hier-moea ---------------------------------------------------------------

export type Level = 'smoke' | 'reduced' | 'full';

export interface Case {
  key: string;
  title: string;
  dense: Record<string, unknown>;
  search: Partial<SearchConfig>;
  seeds: number;
  /** The issue's targets for this model: (fraction of parameters removed at least, points lost at most). */
  targets: [number, number][];
}

/**
 * Budgets. 'full' is the issue's (pop 40, 30 + 60 generations, 5000 validation examples, 3 seeds).
 * 'reduced' is what a 2-core CPU can afford in a few hours; 'smoke' checks the pipeline in minutes.
 * `--budget reduced` (or HIER_MOEA_BUDGET=reduced, which overrides --budget) selects 'reduced'.
 */
export function hierMoeaCases(level: Level, seeds: number): Case[] {
  const lenetDense = { model: 'lenet5', dataset: 'mnist', batchSize: 128, optimizer: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4, schedule: 'cosine', valFraction: 0.1, threads: 1 };
  const resnetDense = { model: 'resnet20', dataset: 'mnist', batchSize: 128, optimizer: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4, schedule: 'cosine', valFraction: 0.1, threads: 1 };
  const picks = [0.5, 0.7, 0.9];
  const lenetTargets: [number, number][] = [[0.5, 0.3], [0.9, 1]], resnetTargets: [number, number][] = [[0.5, 0.3]];
  if (level === 'full') {
    return [
      { key: 'lenet5', title: 'LeNet-5 / MNIST', seeds, targets: lenetTargets, dense: { ...lenetDense, epochs: 20 }, search: { pop: 40, phase1Gens: 30, phase2Gens: 60, valSize: 5000, finetuneEpochs: 3, pick: picks } },
      { key: 'resnet20', title: 'ResNet-20 / MNIST', seeds, targets: resnetTargets, dense: { ...resnetDense, epochs: 15 }, search: { pop: 40, phase1Gens: 30, phase2Gens: 60, valSize: 5000, finetuneEpochs: 3, pick: picks } },
    ];
  }
  if (level === 'reduced') {
    return [
      { key: 'lenet5', title: 'LeNet-5 / MNIST', seeds, targets: lenetTargets, dense: { ...lenetDense, epochs: 8 }, search: { pop: 20, phase1Gens: 12, phase2Gens: 24, valSize: 1000, finetuneEpochs: 2, pick: picks } },
      { key: 'resnet20', title: 'ResNet-20 / MNIST', seeds, targets: resnetTargets, dense: { ...resnetDense, epochs: 3 }, search: { pop: 20, phase1Gens: 15, phase2Gens: 20, valSize: 1000, bnBatches: 2, finetuneEpochs: 1, pick: [0.5] } },
    ];
  }
  return [
    { key: 'lenet5', title: 'LeNet-5 / MNIST', seeds: 1, targets: lenetTargets, dense: { ...lenetDense, epochs: 1, subset: 6000 }, search: { pop: 8, phase1Gens: 3, phase2Gens: 3, valSize: 300, finetuneEpochs: 1, pick: [0.5] } },
    { key: 'resnet20', title: 'ResNet-20 / MNIST', seeds: 1, targets: resnetTargets, dense: { ...resnetDense, epochs: 1, subset: 3000 }, search: { pop: 4, phase1Gens: 2, phase2Gens: 2, valSize: 100, bnBatches: 1, bnBatchSize: 64, finetuneEpochs: 1, pick: [] } },
  ];
}

/**
 * HIER_MOEA_ONLY=lenet5 (a comma-separated list of case keys) runs some models only, to spread a
 * budget over sessions; an unknown key is refused, naming the known ones.
 */
export function selectCases(cases: Case[], only: string | undefined): Case[] {
  if (only === undefined) return cases;
  const keys = only.split(',').map((k) => k.trim()).filter(Boolean);
  const unknown = keys.filter((k) => !cases.some((c) => c.key === k));
  if (!keys.length || unknown.length) {
    throw new ConfigError(`HIER_MOEA_ONLY: unknown model ${unknown.length ? unknown.map((k) => `'${k}'`).join(', ') : "''"} (known: ${cases.map((c) => c.key).join(', ')})`);
  }
  return cases.filter((c) => keys.includes(c.key));
}

/** One model and seed of the reproduction: dense training (unless done), search, fine-tuning. */
export async function runCase(c: Case, seed: number, out: string, o: { dataDir?: string; progress: boolean; log: (l: string) => void; remote?: HierMoeaRunOptions['remote'] }): Promise<ReproRun> {
  const cfg = validate(SearchConfig, { ...c.search, seed, dense: { ...c.dense, seed } }, `hier-moea ${c.key} search`);
  o.log(`== ${c.title}, seed ${seed} -> ${out}`);
  const result = await runHierMoea(cfg, { out, dataDir: o.dataDir, progress: o.progress, log: o.log, title: c.title, remote: o.remote });
  return { key: c.key, title: c.title, seed, out, config: cfg, denseConfig: c.dense, result, targets: c.targets };
}

async function reproduce(o: ReproduceOptions): Promise<void> {
  const env = process.env.HIER_MOEA_BUDGET;
  if (env !== undefined && !['smoke', 'reduced', 'full'].includes(env)) throw new ConfigError(`HIER_MOEA_BUDGET: expected smoke, reduced or full, got '${env}'`);
  const level = (env as Level | undefined) ?? o.budget;
  const cases = selectCases(hierMoeaCases(level, o.seeds), process.env.HIER_MOEA_ONLY);
  const runs: ReproRun[] = [];
  const log = (l: string) => { if (o.progress) process.stderr.write(l + '\n'); };
  for (const c of cases) {
    const run = o.workers ? { ...c, search: { ...c.search, workers: o.workers } } : c;
    for (let seed = 0; seed < c.seeds; seed++) runs.push(await runCase(run, seed, join(o.out, level, c.key, `seed_${seed}`), { dataDir: o.dataDir, progress: o.progress, log, remote: o.remote }));
  }
  mkdirSync(dirname(o.doc), { recursive: true });
  const plots: Record<string, string[]> = {};
  for (const r of runs.filter((x) => x.seed === 0)) {
    for (const what of ['fronts', 'hypervolume']) {
      // Named after the document, so another budget's document (--doc) keeps its own plots.
      const name = `${basename(o.doc, '.md')}-${r.key}-${what}.svg`;
      const src = join(r.out, `${what}.svg`);
      if (existsSync(src)) { copyFileSync(src, join(dirname(o.doc), name)); (plots[r.key] ??= []).push(name); }
    }
  }
  // The environment variable overrides --budget, so the recorded command leaves --budget out.
  const only = process.env.HIER_MOEA_ONLY ? `HIER_MOEA_ONLY=${process.env.HIER_MOEA_ONLY} ` : '';
  const command = only + (env ? `HIER_MOEA_BUDGET=${env} ${o.command.replace(/ --budget \w+/, '')}` : o.command);
  writeFileSync(o.doc, renderResultsDoc({ runs, level, command, plots, versions: versions(), date: new Date().toISOString().slice(0, 10) }));
}

registerReproduction({
  name: 'hier-moea',
  description: 'HIER-MOEA on LeNet-5 / MNIST and ResNet-20 / MNIST: fronts, hypervolumes, fine-tuned picks against one-shot global magnitude',
  run: reproduce,
});
