/**
 * Pruning during training, as TF-MOT's wrapper plus UpdatePruningStep: `pmp(model, ...)` and
 * `gmp(model, ...)` return a Callback for `train()` that prunes on the method's schedule and
 * enforces the masks at the three points (weights before the forward pass, gradients after
 * backward, weights after the optimizer step). The pruning itself is the CLI's own callback
 * (prune/methods/pmp.ts, gmp.ts), composed after the masks' callback in the CLI's order, so the
 * same model, data and seed give the same masks.
 *
 * For a hand-written loop, call `step(epoch, step)` before each forward pass, `maskGrads()` after
 * backward and `maskWeights()` after the optimizer step: the same three points.
 */
import { z } from 'zod';
import { ArgumentError, ConfigError } from '../core/errors.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { Callback, EpochRecord, StepContext } from '../train/loop.js';
import { gmpCallback, gmpSchedule, type GmpUpdate } from '../prune/methods/gmp.js';
import { pmpCallback, type PmpEpoch } from '../prune/methods/pmp.js';
import { getSchedule, type Schedule } from '../prune/schedules.js';
import { PruneTarget, type Scope, type TargetOptions } from '../prune/target.js';
import { checkSparsity } from './one-shot.js';

/** A Callback for `train()` that prunes `model` during training; also drives a hand-written loop. */
export interface PruningCallback extends Callback {
  /** The model it was made for (using it with another throws). */
  readonly model: Module;
  /** The prunable weights and their masks (free them with `dispose()`). */
  readonly target: PruneTarget;
  /** Every pruning step so far (epoch, step, requested and achieved sparsity, threshold). */
  readonly updates: (PmpEpoch | GmpUpdate)[];
  /** Hand-written loops, before each forward pass: prunes when the schedule says so, then masks the weights. */
  step(epoch: number, step: number): void;
  /** Hand-written loops, after backward: zero the gradients of pruned weights. */
  maskGrads(): void;
  /** Hand-written loops, after the optimizer step: zero the pruned weights again. */
  maskWeights(): void;
  /** Achieved sparsity now. */
  sparsity(): number;
  dispose(): void;
}

function makeTarget(model: Module, o: TargetOptions): PruneTarget {
  if (!model || typeof (model as Module).namedParameters !== 'function') throw new ArgumentError('model: expected a Module');
  return new PruneTarget(model, { prunable: o.prunable, granularity: o.granularity, inputShape: o.inputShape });
}

/** Hooks of several callbacks, in order, as one callback bound to `model`. */
function compose(name: string, model: Module, target: PruneTarget, cbs: Callback[], updates: (PmpEpoch | GmpUpdate)[], key: 'pmp' | 'gmp'): PruningCallback {
  const own = (ctx: StepContext) => {
    if (ctx.model !== model) throw new ArgumentError(`${name}: model: this callback was made for another model`);
  };
  const run = (hook: 'onEpochStart' | 'beforeForward' | 'afterBackward' | 'afterStep', ctx: StepContext) => {
    own(ctx);
    for (const c of cbs) c[hook]?.(ctx);
  };
  let lastEpoch = -1;
  const fake = (epoch: number, step: number): StepContext => ({ model, optimizer: undefined as unknown as Optimizer, epoch, step });
  return {
    name,
    model,
    target,
    updates,
    onEpochStart: (ctx) => run('onEpochStart', ctx),
    beforeForward: (ctx) => run('beforeForward', ctx),
    afterBackward: (ctx) => run('afterBackward', ctx),
    afterStep: (ctx) => run('afterStep', ctx),
    onEpochEnd: (ctx: StepContext, rec: EpochRecord) => {
      own(ctx);
      for (const c of cbs) c.onEpochEnd?.(ctx, rec);
      const u = rec.extra[key];
      if (u) updates.push(...(Array.isArray(u) ? u : [u as PmpEpoch]));
    },
    stateDict: () => ({ tensors: target.masks.stateDict(), json: { updates } }),
    loadStateDict: (s) => {
      target.masks.loadStateDict(s.tensors);
      const j = s.json as { updates?: (PmpEpoch | GmpUpdate)[] } | null;
      updates.splice(0, updates.length, ...(j?.updates ?? []));
    },
    step: (epoch, step) => {
      if (!(Number.isInteger(epoch) && epoch >= 0)) throw new ArgumentError(`${name}.step: epoch must be a non-negative integer, got ${epoch}`);
      if (!(Number.isInteger(step) && step >= 0)) throw new ArgumentError(`${name}.step: step must be a non-negative integer, got ${step}`);
      const ctx = fake(epoch, step);
      const fresh = epoch !== lastEpoch;
      if (fresh) for (const c of cbs) c.onEpochStart?.(ctx);
      lastEpoch = epoch;
      for (const c of cbs) c.beforeForward?.(ctx);
      // What train() collects at the end of an epoch, collected as it happens (no epoch end here).
      if (fresh || key === 'gmp') {
        const rec = { extra: {} } as EpochRecord;
        for (const c of cbs) c.onEpochEnd?.(ctx, rec);
        const u = rec.extra[key];
        if (u) updates.push(...(Array.isArray(u) ? u : [u as PmpEpoch]));
      }
    },
    maskGrads: () => target.masks.applyToGrads(),
    maskWeights: () => target.masks.applyToWeights(),
    sparsity: () => target.sparsity(),
    dispose: () => target.dispose(),
  };
}

/** Options of `pmp`: the final sparsity, the phase, and which weights. */
export interface PmpOptions extends TargetOptions {
  /** Final sparsity s_f, in [0, 1). */
  sparsity: number;
  /** Pruning phase P in epochs: s(e) = s_f min(1, (e + 1) / P). */
  phase: number;
  /** 'global' (default, the authors') or 'layer'. */
  scope?: Scope;
  /**
   * The per-epoch schedule (default 'linear', PMP's): a registered name or a Schedule value, called
   * as sparsityAt(epoch, hparams) with hparams = its schema's parse of { final: sparsity, phase, ...scheduleOptions }.
   */
  schedule?: string | Schedule<any>;
  scheduleOptions?: Record<string, unknown>;
}

/**
 * PMP, progressive magnitude pruning: once per epoch, before its batches, prune the still-active
 * weights by magnitude to s(e) = s_f min(1, (e + 1) / P).
 * @example
 * const p = pmp(model, { sparsity: 0.9, phase: 3 });
 * train({ model, optimizer, epochs: 4, trainBatches: (e) => loader.epoch(e), callbacks: [p] });
 * console.log(p.sparsity()); // 0.9
 */
export function pmp(model: Module, o: PmpOptions): PruningCallback {
  const final = checkSparsity(o?.sparsity);
  if (!(Number.isInteger(o.phase) && o.phase > 0)) throw new ArgumentError(`phase: must be a positive integer (epochs), got ${String(o.phase)}`);
  const scope = o.scope ?? 'global';
  const target = makeTarget(model, o);
  const updates: PmpEpoch[] = [];
  let sparsityAt: ((e: number) => number) | undefined;
  if (o.schedule !== undefined) {
    const sch = typeof o.schedule === 'string' ? getSchedule(o.schedule) : o.schedule;
    const r = sch.hparams.safeParse({ final, phase: o.phase, ...(o.scheduleOptions ?? {}) });
    if (!r.success) { target.dispose(); throw new ConfigError(`schedule '${sch.name}': ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, [{ path: 'scheduleOptions', message: 'invalid' }]); }
    sparsityAt = (e) => {
      const s = sch.sparsityAt(e, r.data);
      if (!(s >= 0 && s < 1)) throw new ArgumentError(`schedule '${sch.name}': sparsity at epoch ${e} is ${s}, not in [0, 1)`);
      return s;
    };
  }
  return compose('pmp', model, target, [target.callback(), pmpCallback(target, { final, phase: o.phase, scope, sparsityAt })], updates, 'pmp');
}

/** gmp's schedule fields, checked with defaults (the CLI's gmp options, plus the steps per epoch). */
export const GmpOptionsSchema = z.object({
  sparsity: z.number().min(0).lt(1),
  initialSparsity: z.number().min(0).lt(1).default(0),
  startEpoch: z.number().int().min(0).default(0),
  endEpoch: z.number().int().positive(),
  frequency: z.number().int().positive().default(100),
  stepsPerEpoch: z.number().int().positive(),
  scope: z.enum(['global', 'layer']).default('global'),
});

/** Options of `gmp`: Zhu and Gupta's cubic schedule, in epochs and steps. */
export interface GmpOptions extends TargetOptions {
  /** Final sparsity s_f, in [0, 1). */
  sparsity: number;
  /** s_i (default 0). */
  initialSparsity?: number;
  /** First epoch of the schedule (default 0). */
  startEpoch?: number;
  /** The schedule reaches s_f at the last step of epoch endEpoch - 1. */
  endEpoch: number;
  /** Steps between mask updates (default 100). */
  frequency?: number;
  /** Batches per epoch (the loader's length). */
  stepsPerEpoch: number;
  scope?: Scope;
}

/**
 * GMP (Zhu & Gupta 2017): every `frequency` steps from epoch startEpoch to the end of epoch
 * endEpoch - 1, prune by magnitude to s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3.
 * @example
 * const g = gmp(model, { sparsity: 0.9, endEpoch: 3, frequency: 20, stepsPerEpoch: loader.length });
 * train({ model, optimizer, epochs: 4, trainBatches: (e) => loader.epoch(e), callbacks: [g] });
 */
export function gmp(model: Module, o: GmpOptions): PruningCallback {
  checkSparsity(o?.sparsity);
  const r = GmpOptionsSchema.safeParse({ ...o, prunable: undefined, granularity: undefined, inputShape: undefined });
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
    throw new ConfigError(`gmp: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  const h = r.data;
  if (h.endEpoch <= h.startEpoch) throw new ConfigError(`gmp: endEpoch: the schedule must end after it starts (${h.endEpoch} <= startEpoch ${h.startEpoch})`, [{ path: 'endEpoch', message: 'not after startEpoch' }]);
  if (h.initialSparsity > h.sparsity) throw new ConfigError(`gmp: initialSparsity: must not exceed the final sparsity ${h.sparsity}`, [{ path: 'initialSparsity', message: 'above sparsity' }]);
  const target = makeTarget(model, o);
  const hp = gmpSchedule({ initial: h.initialSparsity, final: h.sparsity, startEpoch: h.startEpoch, endEpoch: h.endEpoch, frequency: h.frequency }, h.stepsPerEpoch);
  const updates: GmpUpdate[] = [];
  return compose('gmp', model, target, [target.callback(), gmpCallback(target, hp, h.scope)], updates, 'gmp');
}
