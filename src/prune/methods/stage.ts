/**
 * One pruning stage on top of runTraining: build the model (or load --from), make the masks, let
 * the method prune (at initialization, on the trained weights, or through callbacks during
 * training), train with the masks enforced at all three points, and write result.json with the
 * sparsity accounting and the method's own record, plus masks.safetensors beside model.safetensors.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, DivergenceError, SerializationError } from '../../core/errors.js';
import { manualSeed } from '../../core/runtime.js';
import { createModel } from '../../models/registry.js';
import { importOnnxFor, isOnnxFile } from '../../graph/onnx-import.js';
import { modelStats } from '../../models/stats.js';
import type { Module } from '../../nn/module.js';
import { firstNonFinite, loadSafetensors, saveSafetensors } from '../../tensor/safetensors.js';
import { dispose } from '../../tensor/scope.js';
import { writeJsonAtomic } from '../../train/checkpoint.js';
import { evaluate, type BatchLike } from '../../train/evaluate.js';
import type { Callback, EpochRecord } from '../../train/loop.js';
import { scoringBatch } from '../saliency.js';
import { writeShrunk, type ShrunkSummary } from '../shrink-run.js';
import { writeShrunkUnits } from '../heads-shrink.js';
import { PruneTarget, type Scope } from '../target.js';
import type { DataLike, PruneEnv, PruneJob, StageRun, TrainSettings } from './types.js';

export interface StageContext {
  model: Module;
  data: DataLike;
  target: PruneTarget;
  job: PruneJob;
  scope: Scope;
  /** A scoring batch from the training split (seeded by the run's seed); the caller disposes it. */
  batch(n: number, classBalanced: boolean): BatchLike;
}

export interface StageSpec {
  /** Prune before training (at init, or on --from weights) and/or return callbacks that prune during it. */
  setup(s: StageContext): Callback[];
  /** The method's record for result.json, from the epochs' history (restored on resume). */
  record(history: EpochRecord[]): unknown;
  /** Model factory (LTH rewinds); default: the registry's model, with --from loaded. */
  model?: (data: DataLike) => Module;
  /** Train settings for this stage (default the job's). */
  train?: TrainSettings;
  /** Output folder (default the job's). */
  out?: string;
  kind?: string;
  /** Requested sparsity reported in result.json (default the job's). */
  requested?: number;
}

/** Where a trained model lives: a .safetensors file, or a run folder with model.safetensors. */
export function resolveFrom(from: string): string {
  if (!existsSync(from)) throw new ConfigError(`from: '${from}' does not exist`, [{ path: 'from', message: 'not found' }]);
  const f = statSync(from).isDirectory() ? join(from, 'model.safetensors') : from;
  if (!existsSync(f)) throw new ConfigError(`from: '${from}' holds no model.safetensors`, [{ path: 'from', message: 'no model.safetensors' }]);
  return f;
}

/** Copy a state dict file into a model (strict: names and shapes must match). */
export function loadWeights(model: Module, file: string): void {
  const { tensors } = loadSafetensors(file);
  try {
    // A diverged model would be pruned and reported as if it were one.
    const bad = firstNonFinite(tensors);
    if (bad !== undefined) throw new DivergenceError(`${file}: tensor '${bad}' holds NaN or infinite values (a diverged training?); refusing to load it`);
    model.loadStateDict(tensors);
  } catch (e) {
    if (e instanceof DivergenceError) throw e;
    throw new SerializationError(`${file}: does not fit the model (${(e as Error).message})`, { cause: e });
  } finally {
    dispose(tensors);
  }
}

export function buildModel(train: TrainSettings, data: DataLike, from?: string): Module {
  if (isOnnxFile(from)) return importOnnxFor(from, { inputShape: data.inputShape, numClasses: data.numClasses, dataset: train.dataset });
  const m = createModel(train.model, { inputShape: data.inputShape, numClasses: data.numClasses, widths: train.widths, init: train.init });
  if (from) loadWeights(m, resolveFrom(from));
  return m;
}

export function scopeOf(job: PruneJob, fallback: Scope): Scope {
  return job.prune.scope ?? fallback;
}

export function makeTarget(job: PruneJob, model: Module, data: DataLike): PruneTarget {
  return new PruneTarget(model, { prunable: job.prune.prunable, granularity: job.prune.granularity, inputShape: data.inputShape, groupNorm: job.prune.groupNorm as 'l1' | 'l2' | undefined, unit: job.prune.unit });
}

/** The physically smaller model of a structured run: graph channel groups (shrink-run.ts) or transformer units (heads-shrink.ts). */
function writeShrunkFor(model: Module, target: PruneTarget, inputShape: number[], out: string): ShrunkSummary {
  return target.unit === 'channels' ? writeShrunk(model, target.masks, inputShape, out) : writeShrunkUnits(model, target, inputShape, out);
}

/** result.json fields: requested and achieved sparsity, the per-layer table. */
export function sparsityReport(target: PruneTarget, requested: number, scope: Scope): Record<string, unknown> {
  const c = target.counts();
  return {
    requestedSparsity: requested,
    achievedSparsity: c.total ? 1 - c.kept / c.total : 0,
    prunableWeights: c.total, keptWeights: c.kept, scope, granularity: target.granularity,
    sparsityLayers: c.layers.map((l) => ({ ...l, sparsity: +l.sparsity.toFixed(6) })),
  };
}

function context(job: PruneJob, model: Module, data: DataLike, target: PruneTarget, scope: Scope, seed: number): StageContext {
  return {
    model, data, target, job, scope,
    batch: (n, classBalanced) => scoringBatch(data.trainLoader, n, { seed, classBalanced, numClasses: data.numClasses }),
  };
}

/** A finished stage in `out` (its result.json says completed), or null. */
export function finishedResult(out: string): Record<string, unknown> | null {
  const f = join(out, 'result.json');
  if (!existsSync(f)) return null;
  const r = JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
  return r.completed ? r : null;
}

/** Merge extra fields into a finished result.json. */
export function amendResult(out: string, fields: Record<string, unknown>): Record<string, unknown> {
  const f = join(out, 'result.json');
  const r = { ...(JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>), ...fields };
  writeJsonAtomic(f, r);
  return r;
}

/** Train one pruning stage; returns its result (also in <out>/result.json). Frees what it made. */
export async function runPruneStage(job: PruneJob, env: PruneEnv, scope: Scope, spec: StageSpec): Promise<Record<string, unknown>> {
  const train = spec.train ?? job.train;
  const out = spec.out ?? job.run.out;
  let target: PruneTarget | undefined;
  let run: StageRun | undefined;
  try {
    run = await env.runTraining(train, { ...job.run, out }, {
      kind: spec.kind ?? `prune_${job.prune.method}`,
      identity: job.prune,
      model: spec.model ?? ((data) => buildModel(train, data, job.prune.from)),
      callbacks: (model, data) => {
        target = makeTarget(job, model, data);
        const cbs = spec.setup(context(job, model, data, target, scope, train.seed));
        target.apply();
        return [target.callback(), ...cbs];
      },
      report: () => ({ method: job.prune.method, pruneOptions: job.prune, ...sparsityReport(target!, spec.requested ?? job.prune.sparsity, scope) }),
    });
    if (!run.result.completed) return run.result;
    saveSafetensors(join(out, 'masks.safetensors'), target!.masks.stateDict(), { method: job.prune.method });
    // Structured: the physically smaller model beside the masked one.
    const shrunk = target!.granularity === 'structured' ? { shrunk: writeShrunkFor(run.model, target!, run.data.inputShape, out) } : {};
    return amendResult(out, { record: spec.record(run.history), ...shrunk });
  } finally {
    target?.dispose();
    run?.model.dispose();
    run?.data.dispose();
  }
}

/**
 * Prune and evaluate without training (one-shot methods without fine-tuning): the same result.json
 * fields as a trained stage, with the validation and test accuracy of the pruned network.
 */
/** The config an evaluated-only run records: no training ran, so 0 epochs (and none filled by a default). */
function untrainedConfig(train: PruneJob['train']): Record<string, unknown> {
  const c: Record<string, unknown> = { ...train, epochs: 0 };
  const d = train.defaults as { source: string; fields: string[] } | undefined;
  if (d) {
    const fields = d.fields.filter((f) => f !== 'epochs');
    if (fields.length) c.defaults = { ...d, fields };
    else delete c.defaults;
  }
  return c;
}

export async function evaluateStage(job: PruneJob, env: PruneEnv, scope: Scope, spec: StageSpec): Promise<Record<string, unknown>> {
  const train = job.train;
  const out = job.run.out;
  mkdirSync(out, { recursive: true });
  manualSeed(train.seed);
  const t0 = performance.now();
  const data = await env.setupData(train, { dataDir: job.run.dataDir });
  const model = buildModel(train, data, job.prune.from);
  const target = makeTarget(job, model, data);
  try {
    spec.setup(context(job, model, data, target, scope, train.seed));
    target.apply();
    const val = data.valLoader ? evaluate(model, data.valLoader.epoch(0)) : null;
    const test = evaluate(model, data.testLoader.epoch(0));
    const stats = modelStats(model, data.inputShape);
    const result: Record<string, unknown> = {
      kind: `prune_${job.prune.method}`, model: train.model, dataset: train.dataset, config: untrainedConfig(train), seed: train.seed,
      completed: true, resumedFrom: null, trained: false,
      finalValAccuracy: val?.accuracy ?? null, bestValAccuracy: val?.accuracy ?? null, bestEpoch: -1,
      testAccuracy: test.accuracy, testLoss: test.loss,
      params: stats.params, nonzeroParams: stats.nonzeroParams, flops: stats.flops, nonzeroFlops: stats.nonzeroFlops, layers: stats.layers,
      secondsPerEpoch: [], wallSeconds: +((performance.now() - t0) / 1000).toFixed(2), history: [], versions: env.versions(),
      method: job.prune.method, pruneOptions: job.prune, ...sparsityReport(target, job.prune.sparsity, scope),
      record: spec.record([]),
    };
    saveSafetensors(join(out, 'model.safetensors'), model.stateDict(), { model: train.model, dataset: train.dataset, config: JSON.stringify(train) });
    saveSafetensors(join(out, 'masks.safetensors'), target.masks.stateDict(), { method: job.prune.method });
    if (target.granularity === 'structured') result.shrunk = writeShrunkFor(model, target, data.inputShape, out);
    writeJsonAtomic(join(out, 'result.json'), result);
    return result;
  } finally {
    target.dispose();
    model.dispose();
    data.dispose();
  }
}
