/**
 * GMP, gradual magnitude pruning (Zhu and Gupta 2017): every `frequency` steps from the first step
 * of `startEpoch` to the last step of epoch `endEpoch - 1`, prune by magnitude to the cubic
 * schedule's sparsity s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3; then train on at s_f.
 */
import { z } from 'zod';
import { dispose } from '../../tensor/scope.js';
import type { Callback } from '../../train/loop.js';
import { magnitude } from '../criteria.js';
import { cubic, type CubicHp } from '../schedules.js';
import { pruneTo, type StepRecord } from '../step.js';
import type { PruneTarget, Scope } from '../target.js';
import { runPruneStage, scopeOf } from './stage.js';
import type { PruneMethod, TrainSettings } from './types.js';

export interface GmpUpdate extends StepRecord { step: number; epoch: number }

/** Steps of the schedule: t0 = startEpoch * B, the end = endEpoch * B - 1 (the last step of epoch endEpoch - 1). */
export function gmpSchedule(o: { initial: number; final: number; startEpoch: number; endEpoch: number; frequency: number }, stepsPerEpoch: number): CubicHp & { end: number } {
  const start = o.startEpoch * stepsPerEpoch;
  const end = Math.max(start, o.endEpoch * stepsPerEpoch - 1);
  return { initial: o.initial, final: o.final, start, every: o.frequency, updates: Math.max(1e-9, (end - start) / o.frequency), end };
}

export function gmpCallback(target: PruneTarget, hp: CubicHp & { end: number }, scope: Scope): Callback {
  let updates: GmpUpdate[] = [];
  return {
    name: 'gmp',
    beforeForward: (ctx) => {
      const t = ctx.step;
      if (t < hp.start || t > hp.end || ((t - hp.start) % hp.every !== 0 && t !== hp.end)) return;
      const s = cubic.sparsityAt(t, hp);
      const scores = magnitude.score({ model: ctx.model, target }, {});
      try {
        updates.push({ step: t, epoch: ctx.epoch, ...pruneTo(target, scores, { sparsity: s, scope }) });
      } finally {
        dispose([...scores.values()]);
      }
    },
    onEpochEnd: (_ctx, rec) => {
      if (updates.length) rec.extra.gmp = updates;
      updates = [];
    },
  };
}

function endEpochOf(o: Record<string, unknown>, train: TrainSettings): number {
  return (o.endEpoch as number | undefined) ?? Math.max((o.startEpoch as number) + 1, Math.round(0.75 * train.epochs));
}

export const gmp: PruneMethod = {
  name: 'gmp',
  description: 'gradual magnitude pruning, cubic schedule (Zhu & Gupta), updated every N steps',
  hparams: {
    initialSparsity: z.number().min(0).lt(1).default(0),
    startEpoch: z.number().int().min(0).default(0),
    /** Sparsity reaches its final value at the end of epoch endEpoch - 1 (default: 3/4 of the epochs). */
    endEpoch: z.number().int().positive().optional(),
    frequency: z.number().int().positive().default(100),
  },
  from: 'optional',
  defaultScope: 'global',
  check: (o, train) => {
    const issues = [];
    const start = o.startEpoch as number, end = endEpochOf(o, train);
    if (end <= start) issues.push({ path: 'endEpoch', message: `the schedule must end after it starts: endEpoch ${end} <= startEpoch ${start}` });
    if (end > train.epochs) issues.push({ path: 'endEpoch', message: `must be at most epochs (${train.epochs}), got ${end}` });
    if ((o.initialSparsity as number) > o.sparsity) issues.push({ path: 'initialSparsity', message: `must not exceed the final sparsity ${o.sparsity}` });
    return issues;
  },
  run: (job, env) => {
    const scope = scopeOf(job, 'global');
    const o = { initial: job.prune.initialSparsity as number, final: job.prune.sparsity, startEpoch: job.prune.startEpoch as number,
      endEpoch: endEpochOf(job.prune, job.train), frequency: job.prune.frequency as number };
    let hp: (CubicHp & { end: number }) | undefined;
    return runPruneStage(job, env, scope, {
      setup: (s) => {
        hp = gmpSchedule(o, s.data.trainLoader.length);
        return [gmpCallback(s.target, hp, scope)];
      },
      record: (history) => ({
        schedule: cubic.name, ...o, scope, steps: hp,
        followed: history.flatMap((h) => (h.extra.gmp as GmpUpdate[] | undefined) ?? []),
      }),
    });
  },
};
