/**
 * The training loop. Pruning methods hook in through callbacks at five points: before each epoch,
 * before the forward pass, after backward, after the optimizer step, and after each epoch.
 * Checkpoints every epoch; a run given the same checkpoint folder resumes where it stopped and ends
 * with the same result as an uninterrupted run (same seed, CPU).
 */
import { ArgumentError } from '../core/errors.js';
import { getRngState, setRngState } from '../core/runtime.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { LrSchedule } from '../optim/schedule.js';
import { crossEntropy } from '../tensor/nn-ops.js';
import { dispose, tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { evaluate, type BatchLike, type EvalResult } from './evaluate.js';

export interface StepContext {
  model: Module;
  optimizer: Optimizer;
  epoch: number;
  /** Global step, counted from 0 over the whole run. */
  step: number;
  x?: Tensor;
  y?: Tensor;
  loss?: Tensor;
  logits?: Tensor;
}

export interface EpochRecord {
  epoch: number;
  lr: number;
  trainLoss: number;
  trainAccuracy: number;
  val?: EvalResult;
  seconds: number;
  /** Anything a callback adds (sparsity, masses...). */
  extra: Record<string, unknown>;
}

export interface Callback {
  name: string;
  onEpochStart?(ctx: StepContext): void;
  beforeForward?(ctx: StepContext): void;
  afterBackward?(ctx: StepContext): void;
  afterStep?(ctx: StepContext): void;
  onEpochEnd?(ctx: StepContext, record: EpochRecord): void;
  /** State to checkpoint (masks, schedules); restored before training resumes. */
  stateDict?(): { tensors: Record<string, Tensor>; json: unknown };
  loadStateDict?(s: { tensors: Record<string, Tensor>; json: unknown }): void;
}

export interface ProgressEvent { epoch: number; epochs: number; batch: number; batches?: number; loss: number; accuracy: number; samplesPerSec: number }

export interface TrainOptions {
  model: Module;
  optimizer: Optimizer;
  epochs: number;
  /** The batches of epoch e (the loop disposes them). */
  trainBatches: (epoch: number) => Iterable<BatchLike>;
  batchesPerEpoch?: number;
  /** Validation batches, evaluated after every epoch. */
  valBatches?: () => Iterable<BatchLike>;
  schedule?: LrSchedule;
  labelSmoothing?: number;
  callbacks?: Callback[];
  /** Folder for per-epoch checkpoints; when it holds one, training resumes from it. */
  checkpointDir?: string;
  onProgress?: (e: ProgressEvent) => void;
  onEpoch?: (r: EpochRecord) => void;
  /** Stop after this many epochs of this call (to test resuming); the checkpoint is written first. */
  stopAfterEpochs?: number;
}

export interface TrainResult {
  history: EpochRecord[];
  bestVal: EvalResult | null;
  bestEpoch: number;
  finalVal: EvalResult | null;
  resumedFrom: number | null;
  completed: boolean;
}

export function train(o: TrainOptions): TrainResult {
  if (!(Number.isInteger(o.epochs) && o.epochs > 0)) throw new ArgumentError(`train: epochs must be a positive integer, got ${o.epochs}`);
  const cbs = o.callbacks ?? [];
  const model = o.model, opt = o.optimizer;
  let history: EpochRecord[] = [];
  let start = 0, resumedFrom: number | null = null, step = 0;

  if (o.checkpointDir) {
    const ck = loadCheckpoint(o.checkpointDir, ['model', 'optimizer', ...cbs.map((c) => `cb_${c.name}`)]);
    if (ck) {
      const st = ck.json as { epoch: number; step: number; history: EpochRecord[]; optimizer: { lr: number; stepCount: number }; rng: string; callbacks: Record<string, unknown> };
      model.loadStateDict(ck.tensors.model);
      opt.loadStateDict({ tensors: ck.tensors.optimizer ?? {}, meta: st.optimizer });
      for (const c of cbs) c.loadStateDict?.({ tensors: ck.tensors[`cb_${c.name}`] ?? {}, json: st.callbacks[c.name] });
      setRngState(Buffer.from(st.rng, 'base64'));
      for (const ts of Object.values(ck.tensors)) dispose(ts);
      history = st.history;
      start = st.epoch + 1;
      step = st.step;
      resumedFrom = st.epoch;
    }
  }

  let ran = 0;
  for (let epoch = start; epoch < o.epochs; epoch++) {
    if (o.stopAfterEpochs !== undefined && ran >= o.stopAfterEpochs) break;
    const t0 = performance.now();
    if (o.schedule) opt.lr = opt.baseLr * o.schedule(epoch);
    model.train();
    const ctx: StepContext = { model, optimizer: opt, epoch, step };
    for (const c of cbs) c.onEpochStart?.(ctx);
    let lossSum = 0, correct = 0, seen = 0, batch = 0;
    for (const b of o.trainBatches(epoch)) {
      tidy(() => {
        ctx.x = b.x; ctx.y = b.y; ctx.step = step;
        for (const c of cbs) c.beforeForward?.(ctx);
        const logits = model.call(b.x);
        const loss = crossEntropy(logits, b.y, { labelSmoothing: o.labelSmoothing ?? 0 });
        ctx.logits = logits; ctx.loss = loss;
        opt.zeroGrad();
        loss.backward();
        for (const c of cbs) c.afterBackward?.(ctx);
        opt.step();
        for (const c of cbs) c.afterStep?.(ctx);
        const n = b.y.shape[0];
        lossSum += loss.item() * n;
        correct += logits.argmax(1).eq(b.y).sum().item();
        seen += n;
      });
      b.x.dispose();
      b.y.dispose();
      ctx.x = ctx.y = ctx.loss = ctx.logits = undefined;
      step++;
      batch++;
      o.onProgress?.({ epoch, epochs: o.epochs, batch, batches: o.batchesPerEpoch, loss: lossSum / seen, accuracy: correct / seen,
        samplesPerSec: seen / ((performance.now() - t0) / 1000) });
    }
    const rec: EpochRecord = { epoch, lr: opt.lr, trainLoss: seen ? lossSum / seen : NaN, trainAccuracy: seen ? correct / seen : NaN, seconds: 0, extra: {} };
    if (o.valBatches) rec.val = evaluate(model, o.valBatches());
    ctx.step = step;
    for (const c of cbs) c.onEpochEnd?.(ctx, rec);
    rec.seconds = (performance.now() - t0) / 1000;
    history.push(rec);
    o.onEpoch?.(rec);
    if (o.checkpointDir) {
      const sd = opt.stateDict();
      const tensors: Record<string, Record<string, Tensor>> = { model: model.stateDict(), optimizer: sd.tensors };
      const cbJson: Record<string, unknown> = {};
      for (const c of cbs) {
        const s = c.stateDict?.();
        if (s) { tensors[`cb_${c.name}`] = s.tensors; cbJson[c.name] = s.json; }
      }
      saveCheckpoint(o.checkpointDir, epoch, {
        tensors,
        json: { epoch, step, history, optimizer: sd.meta, rng: Buffer.from(getRngState()).toString('base64'), callbacks: cbJson },
      });
    }
    ran++;
  }
  const withVal = history.filter((h) => h.val);
  let bestEpoch = -1, bestVal: EvalResult | null = null;
  for (const h of withVal) if (!bestVal || h.val!.accuracy > bestVal.accuracy) { bestVal = h.val!; bestEpoch = h.epoch; }
  const last = history[history.length - 1];
  return { history, bestVal, bestEpoch, finalVal: last?.val ?? null, resumedFrom, completed: last?.epoch === o.epochs - 1 };
}
