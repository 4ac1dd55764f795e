/** `topiary train`: build everything from a validated TrainConfig, train, evaluate, write result.json. */
import { existsSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { checkDevice } from '../core/device.js';
import { ConfigError } from '../core/errors.js';
import { checkOutDir, lockRunFolder } from '../core/run-lock.js';
import { manualSeed, setNumThreads } from '../core/runtime.js';
import { createModel } from '../models/registry.js';
import { modelStats } from '../models/stats.js';
import type { Module } from '../nn/module.js';
import { Adam, AdamW, SGD, type Optimizer } from '../optim/optimizer.js';
import { makeSchedule, type ScheduleName } from '../optim/schedule.js';
import { saveSafetensors } from '../tensor/safetensors.js';
import { evaluate } from '../train/evaluate.js';
import { train, type Callback, type EpochRecord } from '../train/loop.js';
import { writeJsonAtomic } from '../train/checkpoint.js';
import { assertInside, readJsonFile } from '../core/safe-fs.js';
import { makeProgress } from '../report/progress.js';
import { epochTags, TensorBoardWriter } from '../report/tensorboard.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import type { TrainConfig } from './config.js';
import { setupData, type DataBundle } from './data-setup.js';
import { versions } from './env.js';
import { canonicalJson } from './hash.js';

export interface RunOptions {
  out: string;
  dataDir?: string;
  /** Progress bar and per-epoch lines on stderr. */
  progress?: boolean;
  /** Stop after n epochs of this invocation (tests of resuming). */
  stopAfterEpochs?: number;
  /** Folder for TensorBoard event files: scalars per epoch (loss, accuracies, lr, sparsity). */
  tensorboard?: string;
}

export function makeOptimizer(model: Module, c: TrainConfig): Optimizer {
  const params = model.namedParameters();
  if (c.optimizer === 'sgd') return new SGD(params, { lr: c.lr, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay });
  if (c.optimizer === 'adam') return new Adam(params, { lr: c.lr, weightDecay: c.weightDecay });
  return new AdamW(params, { lr: c.lr, weightDecay: c.weightDecay });
}

export interface TrainedRun {
  model: Module;
  data: DataBundle;
  history: EpochRecord[];
  result: Record<string, unknown>;
}

/**
 * Train a model as the config says, with extra callbacks (pruning hooks in here), and write
 * result.json plus the final weights (model.safetensors) into `out`. Resumes from out/checkpoints.
 */
export async function runTraining(c: TrainConfig, o: RunOptions, extra: {
  callbacks?: (model: Module, data: DataBundle) => Callback[];
  kind?: string;
  /** Fields merged into result.json. */
  report?: (model: Module, data: DataBundle) => Record<string, unknown>;
  model?: (data: DataBundle) => Module;
  /** What else defines the run besides the training config (a method's options); checked on resume. */
  identity?: Record<string, unknown>;
} = {}): Promise<TrainedRun> {
  // Everything is checked before anything is written: the device, the folder's run, the data.
  checkDevice(c.device);
  checkOutDir(o.out);
  if (o.tensorboard !== undefined) checkTensorboardDir(o.tensorboard);
  const kind = extra.kind ?? 'train';
  checkRunFolder(o.out, kind, c, extra.identity);
  if (c.threads) setNumThreads(c.threads);
  manualSeed(c.seed);
  const data = await setupData(c, { dataDir: o.dataDir });
  // Held for the whole run (re-entrant: the caller may hold it already).
  const release = lockRunFolder(o.out);
  try {
    return await trainIn(c, o, { ...extra, kind }, data);
  } catch (e) {
    data.dispose();
    throw e;
  } finally {
    release();
  }
}

async function trainIn(c: TrainConfig, o: RunOptions, extra: Parameters<typeof runTraining>[2] & object, data: DataBundle): Promise<TrainedRun> {
  const model = extra.model ? extra.model(data) : createModel(c.model, { inputShape: data.inputShape, numClasses: data.numClasses, widths: c.widths, init: c.init });
  if (c.device !== 'cpu') model.to(c.device);
  const opt = makeOptimizer(model, c);
  const schedule = makeSchedule({ name: c.schedule as ScheduleName, epochs: c.epochs, warmupEpochs: c.warmupEpochs, milestones: c.milestones, gamma: c.gamma });
  const callbacks = extra.callbacks ? extra.callbacks(model, data) : [];
  // run.json is written only now, with the data, the device, the model (and a --from it loads) all
  // accepted: a run refused before this point leaves nothing that would block a corrected command.
  let wrote: boolean;
  try {
    wrote = claimRunFolder(o.out, extra.kind!, c, extra.identity);
  } catch (e) {
    opt.dispose();
    model.dispose();
    throw e;
  }
  try {
    return trainClaimed(c, o, extra, data, model, opt, schedule, callbacks);
  } catch (e) {
    // A fresh run that failed before its first checkpoint (diverged, say) leaves no run.json behind:
    // the corrected command (a lower --lr) may use the same folder.
    if (wrote && !existsSync(join(o.out, 'checkpoints', 'latest.json'))) {
      rmSync(join(o.out, 'run.json'), { force: true });
      try { rmdirSync(join(o.out, 'checkpoints')); } catch { /* absent or holds something */ }
    }
    model.dispose();
    throw e;
  }
}

function trainClaimed(c: TrainConfig, o: RunOptions, extra: Parameters<typeof runTraining>[2] & object, data: DataBundle,
  model: Module, opt: Optimizer, schedule: ReturnType<typeof makeSchedule>, callbacks: Callback[]): TrainedRun {
  // A checkpoints folder that is a symlink out of the run would let a resume read, and the next
  // save delete, files elsewhere.
  assertInside(o.out, join(o.out, 'checkpoints'), join(o.out, 'checkpoints'));
  const bar = makeProgress({ enabled: o.progress ?? false });
  // A resumed run adds a new event file beside the first piece's (TensorBoard reads them as one run).
  // LTH's rounds each train from epoch 0: one TensorBoard run (subfolder) per round, named as its folder.
  const tb = o.tensorboard ? new TensorBoardWriter(extra.kind === 'prune_lth_round' ? join(o.tensorboard, basename(o.out)) : o.tensorboard) : null;
  const t0 = performance.now();
  let res: ReturnType<typeof train>;
  try {
    res = train({
      model, optimizer: opt, epochs: c.epochs, schedule, labelSmoothing: c.labelSmoothing, callbacks,
      trainBatches: (e) => { bar.start(data.trainLoader.length, `epoch ${e + 1}/${c.epochs}`); return data.trainLoader.epoch(e); },
      batchesPerEpoch: data.trainLoader.length,
      valBatches: data.valLoader ? () => data.valLoader!.epoch(0) : undefined,
      checkpointDir: join(o.out, 'checkpoints'),
      stopAfterEpochs: o.stopAfterEpochs,
      onProgress: (p) => bar.update(p.batch, { loss: p.loss.toFixed(4), acc: (100 * p.accuracy).toFixed(2), ips: Math.round(p.samplesPerSec) }),
      onEpoch: (r) => {
        tb?.scalars(r.epoch, epochTags({ epoch: r.epoch, lr: r.lr, trainLoss: r.trainLoss, trainAccuracy: r.trainAccuracy, valLoss: r.val?.loss, valAccuracy: r.val?.accuracy, sparsity: weightSparsity(model) }));
        bar.log(`epoch ${r.epoch + 1}/${c.epochs}  lr ${r.lr.toPrecision(3)}  loss ${r.trainLoss.toFixed(4)}  train ${(100 * r.trainAccuracy).toFixed(2)}%` +
          `${r.val ? `  val ${(100 * r.val.accuracy).toFixed(2)}%` : ''}  ${r.seconds.toFixed(1)}s`);
      },
    });
  } finally {
    tb?.close();
  }
  bar.stop();
  // The optimizer's state (momentum, Adam moments) is in the checkpoint; nothing returned needs it.
  opt.dispose();
  // A resumed run: the earlier pieces' time (from the checkpoint) plus this one's.
  const wall = res.priorSeconds + (performance.now() - t0) / 1000;
  const result: Record<string, unknown> = {
    kind: extra.kind ?? 'train', model: c.model, dataset: c.dataset, config: c, seed: c.seed,
    completed: res.completed, resumedFrom: res.resumedFrom,
  };
  if (res.completed) {
    const test = evaluate(model, data.testLoader.epoch(0));
    const stats = modelStats(model, data.inputShape);
    Object.assign(result, {
      finalValAccuracy: res.finalVal?.accuracy ?? null, bestValAccuracy: res.bestVal?.accuracy ?? null, bestEpoch: res.bestEpoch,
      testAccuracy: test.accuracy, testLoss: test.loss,
      params: stats.params, nonzeroParams: stats.nonzeroParams, flops: stats.flops, nonzeroFlops: stats.nonzeroFlops,
      layers: stats.layers,
      secondsPerEpoch: res.history.map((h) => +h.seconds.toFixed(3)), wallSeconds: +wall.toFixed(2),
      loaderShare: data.trainLoader.stats.ms / 1000 / Math.max(1e-9, res.history.filter((h) => h.epoch >= (res.resumedFrom ?? -1) + 1).reduce((s, h) => s + h.seconds, 0)),
      history: res.history, versions: versions(),
      ...(extra.report ? extra.report(model, data) : {}),
    });
    saveSafetensors(join(o.out, 'model.safetensors'), model.stateDict(), { model: c.model, dataset: c.dataset, config: JSON.stringify(c) });
  }
  writeJsonAtomic(join(o.out, 'result.json'), result);
  return { model, data, history: res.history, result };
}

/** --tensorboard must name a folder (or a path to create one at): a file there is refused before anything is written. */
export function checkTensorboardDir(dir: string): void {
  if (typeof dir !== 'string' || dir.trim() === '') throw new ConfigError('tensorboard: give a folder for the event files', [{ path: 'tensorboard', message: 'empty' }]);
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new ConfigError(`tensorboard: ${dir} is a file, not a folder`, [{ path: 'tensorboard', message: 'not a folder' }]);
}

/** Zeros among the weights of more than one dimension (pruning's default prunable set), 0 for a dense model. */
export function weightSparsity(model: Module): number {
  let zeros = 0, total = 0;
  noGrad(() => tidy(() => {
    for (const [n, p] of model.namedParameters()) {
      if (p.ndim < 2 || !n.endsWith('weight')) continue;
      zeros += p.eq(0).sum().item();
      total += p.numel;
    }
  }));
  return total ? zeros / total : 0;
}

/** A finished run in `out` (result.json says completed), or null. */
export function finishedResult(out: string): Record<string, unknown> | null {
  const f = join(out, 'result.json');
  if (!existsSync(f)) return null;
  assertInside(out, f, f);
  const r = readJsonFile(f, { what: 'result' }) as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new ConfigError(`${f}: not a result object; remove it or use another --out`);
  return r.completed ? r : null;
}

/**
 * Settings that change how fast a run goes, not what it computes: a run may resume with others.
 * `defaults` records which fields came from the default recipe: the same values given as flags are the same run.
 */
const NOT_IDENTITY = new Set(['threads', 'device', 'defaults']);

/**
 * Writes <out>/run.json naming what runs there (kind, training config, method options), or checks
 * an existing one: a folder resumes only the run it holds. Without this, a second command with other
 * settings and the same --out would silently continue (or just report) the first run.
 */
/** Returns true when it wrote run.json (the folder held no run yet). */
export function claimRunFolder(out: string, kind: string, c: TrainConfig, identity: Record<string, unknown> = {}): boolean {
  const mine = checkRunFolder(out, kind, c, identity);
  if (mine) writeJsonAtomic(join(out, 'run.json'), { format: 'topiary.run', version: 1, identity: mine });
  return mine !== null;
}

/**
 * The read-only half of claimRunFolder: refuses a folder holding another run, or checkpoints with
 * no run.json (deleted: their settings are unknown). Returns the identity to write when the folder
 * has no run.json yet, null when it already holds this run.
 */
export function checkRunFolder(out: string, kind: string, c: TrainConfig, identity: Record<string, unknown> = {}): Record<string, unknown> | null {
  const file = join(out, 'run.json');
  const strip = (x: Record<string, unknown>) => Object.fromEntries(Object.entries(x).filter(([k, v]) => !NOT_IDENTITY.has(k) && v !== undefined));
  const mine: Record<string, unknown> = { kind, ...strip(c as Record<string, unknown>), ...Object.fromEntries(Object.entries(identity).map(([k, v]) => [`prune.${k}`, v])) };
  if (existsSync(file)) {
    let theirs: Record<string, unknown>;
    try {
      assertInside(out, file, file);
      const v = readJsonFile(file, { maxBytes: 1 << 20 }) as { identity?: unknown } | null;
      if (typeof v?.identity !== 'object' || v.identity === null || Array.isArray(v.identity)) throw new Error('no identity mapping');
      theirs = v.identity as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`${file}: cannot read (${(e as Error).message}); remove it or use another --out`);
    }
    const keys = [...new Set([...Object.keys(mine), ...Object.keys(theirs ?? {})])].sort();
    const diff = keys.filter((k) => canonicalJson(mine[k]) !== canonicalJson(theirs?.[k]) && !NOT_IDENTITY.has(k));
    if (diff.length > 0) {
      const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));
      throw new ConfigError(`${out} holds another run (${diff.map((k) => `${k}: ${show(theirs?.[k])} there, ${show(mine[k])} here`).join('; ')}); ` +
        'use another --out, or the same settings to resume it', diff.map((k) => ({ path: k, message: 'differs from the run in the output folder' })));
    }
    return null;
  }
  const ck = join(out, 'checkpoints');
  if (existsSync(ck) && readdirSync(ck).some((n) => n === 'latest.json' || /^epoch_\d+$/.test(n))) {
    throw new ConfigError(`${out} holds checkpoints but no run.json (removed?), so the settings they were made with are unknown; ` +
      `refusing to resume them: remove ${ck} to start over, or use another --out`, [{ path: 'out', message: 'checkpoints without run.json' }]);
  }
  return mine;
}
