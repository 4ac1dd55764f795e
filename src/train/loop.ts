/**
 * The training loop. Pruning methods hook in through callbacks at five points: before each epoch,
 * before the forward pass, after backward, after the optimizer step, and after each epoch.
 * Checkpoints every epoch; a run given the same checkpoint folder resumes where it stopped and ends
 * with the same result as an uninterrupted run (same seed, CPU).
 */
import { join } from 'node:path';
import { ArgumentError, DivergenceError, SerializationError } from '../core/errors.js';
import { getRngState, setRngState } from '../core/runtime.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { LrSchedule } from '../optim/schedule.js';
import { crossEntropy } from '../tensor/nn-ops.js';
import { firstNonFinite } from '../tensor/safetensors.js';
import { dispose, tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { cleanCheckpointDebris, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
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
  /** What else a diverged run may need lowered besides the learning rate (EVO-POP: its --eta); joined into the divergence error. */
  divergenceHint?: string;
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
  /**
   * Seconds the earlier pieces of a resumed run took (state.json's `elapsedSeconds` of the checkpoint
   * resumed); 0 for a fresh run, or a checkpoint written before the field existed.
   */
  priorSeconds: number;
}

export function train(o: TrainOptions): TrainResult {
  if (!(Number.isInteger(o.epochs) && o.epochs > 0)) throw new ArgumentError(`train: epochs must be a positive integer, got ${o.epochs}`);
  const cbs = o.callbacks ?? [];
  const model = o.model, opt = o.optimizer;
  let history: EpochRecord[] = [];
  let start = 0, resumedFrom: number | null = null, step = 0, priorSeconds = 0;
  const began = performance.now();

  if (o.checkpointDir) {
    cleanCheckpointDebris(o.checkpointDir);
    const withState = cbs.filter((c) => c.stateDict);
    const ck = loadCheckpoint(o.checkpointDir, ['model', 'optimizer', ...withState.map((c) => `cb_${c.name}`)], { required: ['model', 'optimizer'] });
    if (ck) {
      try {
        const st = checkState(ck.json, join(ck.path, 'state.json'), ck.epoch);
        for (const c of withState) {
          if (c.name in st.callbacks && !ck.tensors[`cb_${c.name}`]) {
            throw new SerializationError(`${join(ck.path, `cb_${c.name}.safetensors`)}: missing from the checkpoint; refusing to resume without it (remove the checkpoints folder to start over)`);
          }
        }
        for (const f of ['model', 'optimizer']) {
          const bad = firstNonFinite(ck.tensors[f]);
          if (bad !== undefined) throw new DivergenceError(`${join(ck.path, `${f}.safetensors`)}: tensor '${bad}' holds NaN or infinite values; refusing to resume a diverged run (remove the checkpoints folder and train with a lower learning rate)`);
        }
        try {
          model.loadStateDict(ck.tensors.model);
        } catch (e) {
          throw new SerializationError(`${join(ck.path, 'model.safetensors')}: does not fit the model (${(e as Error).message})`, { cause: e });
        }
        opt.loadStateDict({ tensors: ck.tensors.optimizer, meta: st.optimizer });
        for (const c of cbs) c.loadStateDict?.({ tensors: ck.tensors[`cb_${c.name}`] ?? {}, json: st.callbacks[c.name] });
        setRngState(Buffer.from(st.rng, 'base64'));
        history = st.history;
        start = st.epoch + 1;
        step = st.step;
        resumedFrom = st.epoch;
        priorSeconds = st.elapsedSeconds ?? 0;
      } finally {
        for (const ts of Object.values(ck.tensors)) dispose(ts);
      }
    }
  }

  const hints = cbs.flatMap((c) => (c.divergenceHint ? [c.divergenceHint] : []));
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
        const l = loss.item();
        if (!Number.isFinite(l)) {
          throw new DivergenceError(`training diverged: the loss is ${l} at epoch ${epoch + 1} of ${o.epochs}, batch ${batch + 1} (step ${step}), ` +
            `learning rate ${opt.lr}; nothing was saved for this epoch. Try a lower learning rate (--lr)${hints.map((h) => ` or ${h}`).join('')}`);
        }
        lossSum += l * n;
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
        // The run's time so far, all pieces: a resumed run's result adds it to its own.
        json: { epoch, step, history, elapsedSeconds: priorSeconds + (performance.now() - began) / 1000, optimizer: sd.meta, rng: Buffer.from(getRngState()).toString('base64'), callbacks: cbJson },
      });
    }
    ran++;
  }
  const withVal = history.filter((h) => h.val);
  let bestEpoch = -1, bestVal: EvalResult | null = null;
  for (const h of withVal) if (!bestVal || h.val!.accuracy > bestVal.accuracy) { bestVal = h.val!; bestEpoch = h.epoch; }
  const last = history[history.length - 1];
  return { history, bestVal, bestEpoch, finalVal: last?.val ?? null, resumedFrom, completed: last?.epoch === o.epochs - 1, priorSeconds };
}

interface SavedState { epoch: number; step: number; history: EpochRecord[]; elapsedSeconds?: number; optimizer: { lr: number; stepCount: number }; rng: string; callbacks: Record<string, unknown> }

/** state.json of a checkpoint, every field checked; a missing or mistyped one is named with the file. */
function checkState(json: Record<string, unknown>, file: string, epoch: number): SavedState {
  const bad = (field: string, why: string): never => {
    throw new SerializationError(`${file}: ${field} ${why}; refusing to resume from it (remove the checkpoints folder to start over)`);
  };
  const nat = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  const obj = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!nat(json.epoch)) bad('epoch', `is ${JSON.stringify(json.epoch)}, not a non-negative integer`);
  if (json.epoch !== epoch) bad('epoch', `is ${json.epoch as number}, but latest.json names epoch ${epoch}`);
  if (!nat(json.step)) bad('step', `is ${JSON.stringify(json.step)}, not a non-negative integer`);
  if (!Array.isArray(json.history) || !json.history.every(obj)) bad('history', 'is not a list of epoch records');
  const h = json.history as EpochRecord[];
  if (h.length > 0 && h[h.length - 1].epoch !== epoch) bad('history', `ends at epoch ${JSON.stringify(h[h.length - 1].epoch)}, not ${epoch}`);
  const el = json.elapsedSeconds;
  if (el !== undefined && !(typeof el === 'number' && Number.isFinite(el) && el >= 0)) bad('elapsedSeconds', `is ${JSON.stringify(el)}, not a non-negative number of seconds`);
  const op = json.optimizer as { lr?: unknown; stepCount?: unknown } | undefined;
  if (!obj(op) || !(typeof op!.lr === 'number' && Number.isFinite(op!.lr)) || !nat(op!.stepCount)) bad('optimizer', 'is not {lr: number, stepCount: integer}');
  if (typeof json.rng !== 'string' || json.rng.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(json.rng)) bad('rng', json.rng === undefined ? 'is missing' : 'is not a base64 generator state');
  if (!obj(json.callbacks)) bad('callbacks', json.callbacks === undefined ? 'is missing' : 'is not a mapping');
  return json as unknown as SavedState;
}
