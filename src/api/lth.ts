/**
 * LTH (Frankle and Carbin 2019) as a small driver of rounds around the caller's own training:
 * round 0 trains the dense network; round r removes `rate` of each hidden layer's remaining weights
 * and `outputRate` of the output layer's (by the trained magnitudes), rewinds the survivors to θ0
 * (or to the weights after `rewindIteration` steps of round 0) and trains again, until the
 * sparsity is reached. The pruning step and the round plan are the CLI's (prune/methods/lth.ts),
 * so a `train` that trains as the CLI does (seeded by `manualSeed` at each round) gives its masks.
 */
import { ArgumentError } from '../core/errors.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { dispose, keep, tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Callback } from '../train/loop.js';
import { iterativeRemaining, roundsFor } from '../prune/schedules.js';
import { layerRateKeep, pruneTo } from '../prune/step.js';
import { PruneTarget, type Scope, type TargetOptions } from '../prune/target.js';
import { checkSparsity } from './one-shot.js';

/** Options of `lth`: the target sparsity and the per-round rates (the CLI's lth options). */
export interface LthOptions extends TargetOptions {
  /** Sparsity to reach, in [0, 1): the rounds run until the remaining fraction is at most 1 - sparsity. */
  sparsity: number;
  /** Fraction of each (hidden) layer's remaining weights removed per round (default 0.2). */
  rate?: number;
  /** Fraction of the output layer's removed per round, layer scope (default 0.1). */
  outputRate?: number;
  /** 'layer' (default, the paper's per-layer rates) or 'global'. */
  scope?: Scope;
  /** Rewind to the weights after this many optimizer steps of round 0 (default 0: to the initialization). */
  rewindIteration?: number;
}

/** One round: its requested (planned) and achieved sparsity, and the kept weights. */
export interface LthRound { round: number; requested: number; achieved: number; kept: number }

/** What `lth` returns. */
export interface LthResult {
  /** The final masks (the model holds the last round's trained, masked weights). Free with `target.dispose()`. */
  target: PruneTarget;
  rounds: LthRound[];
}

/**
 * Train one round: the callbacks given (the masks at the three points, and in round 0 the rewind
 * point's recorder) must be passed to `train()`.
 */
export type LthTrain = (round: number, callbacks: Callback[]) => void | Promise<void>;

/**
 * @example
 * const { target, rounds } = await lth(model, { sparsity: 0.5 }, (round, callbacks) => {
 *   manualSeed(0);
 *   const opt = new optim.SGD(model.namedParameters(), { lr: 0.05, momentum: 0.9 });
 *   train({ model, optimizer: opt, epochs: 1, trainBatches: (e) => loader.epoch(e), callbacks });
 *   opt.dispose();
 * });
 */
export async function lth(model: Module, o: LthOptions, trainRound: LthTrain): Promise<LthResult> {
  const sparsity = checkSparsity(o?.sparsity);
  if (typeof trainRound !== 'function') throw new ArgumentError('lth: train: expected a function (round, callbacks) that trains the model');
  const rate = o.rate ?? 0.2, outRate = o.outputRate ?? 0.1, k = o.rewindIteration ?? 0;
  if (!(rate > 0 && rate < 1)) throw new ArgumentError(`rate: must be in (0, 1), got ${rate}`);
  if (!(outRate > 0 && outRate < 1)) throw new ArgumentError(`outputRate: must be in (0, 1), got ${outRate}`);
  if (!(Number.isInteger(k) && k >= 0)) throw new ArgumentError(`rewindIteration: must be a non-negative integer, got ${k}`);
  if (o.granularity === 'structured') throw new ArgumentError("granularity: lth prunes unstructured weights");
  const scope = o.scope ?? 'layer';
  const target = new PruneTarget(model, { prunable: o.prunable });
  const sizes = target.weights.map((n) => target.param(n).numel);
  const total = sizes.reduce((a, b) => a + b, 0);
  const rates = scope === 'layer' ? sizes.map((_, i) => (i === sizes.length - 1 ? outRate : rate)) : [rate];
  const rounds = scope === 'layer' ? roundsFor(sizes, rates, sparsity) : roundsFor([total], [rate], sparsity);
  const snapshot = (): Record<string, Tensor> => tidy(() => noGrad(() => Object.fromEntries(Object.entries(model.stateDict()).map(([n, t]) => [n, keep(t.detach().clone())]))));
  const init = snapshot();
  let rewind: Record<string, Tensor> | null = null;
  const out: LthRound[] = [];
  try {
    for (let r = 0; r <= rounds; r++) {
      const requested = 1 - iterativeRemaining(scope === 'layer' ? sizes : [total], rates, r);
      if (r > 0) {
        const scores = tidy(() => noGrad(() => new Map(target.weights.map((n) => [n, keep(target.param(n).detach().abs())]))));
        try {
          model.loadStateDict(k > 0 ? rewind! : init);
          if (scope === 'layer') pruneTo(target, scores, { sparsity: 0, scope: 'layer', keep: layerRateKeep(target, rates[0], rates[rates.length - 1]) });
          else {
            const c = target.counts();
            pruneTo(target, scores, { sparsity: 1 - (c.kept - Math.round(rate * c.kept)) / c.total, scope: 'global' });
          }
        } finally {
          dispose([...scores.values()]);
        }
      }
      const cbs: Callback[] = [target.callback()];
      if (r === 0 && k > 0) cbs.push({ name: 'lth_rewind', afterStep: (ctx) => { if (ctx.step + 1 === k && !rewind) rewind = snapshot(); } });
      await trainRound(r, cbs);
      if (r === 0 && k > 0 && !rewind) throw new ArgumentError(`rewindIteration: round 0 ran fewer than ${k} optimizer steps`);
      const c = target.counts();
      out.push({ round: r, requested, achieved: 1 - c.kept / c.total, kept: c.kept });
    }
    return { target, rounds: out };
  } catch (e) {
    target.dispose();
    throw e;
  } finally {
    dispose(Object.values(init));
    if (rewind) dispose(Object.values(rewind));
  }
}
