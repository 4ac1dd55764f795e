/**
 * PMP, progressive magnitude pruning ("Finding Sparse Subnetworks in One Training Cycle via
 * Progressive Magnitude-Based Pruning"), as its authors ran it: once per epoch, before the epoch's
 * batches, the target sparsity s(e) = s_f * min(1, (e + 1) / P); one global threshold over the
 * magnitudes of the still-active weights keeps k = round((1 - s(e)) * N) of them (capped at the
 * active count); new mask = kept AND old mask, so sparsity only grows and nothing regrows.
 *
 * The kept set is chosen by exact top-k (ties broken by position), the rule `|w| >= threshold`
 * without its ties: the count is exact, and where no magnitudes tie the two are the same.
 */
import { z } from 'zod';
import { dispose } from '../../tensor/scope.js';
import type { Callback } from '../../train/loop.js';
import { magnitude } from '../criteria.js';
import { linear } from '../schedules.js';
import { pruneTo, type StepRecord } from '../step.js';
import type { PruneTarget, Scope } from '../target.js';
import { runPruneStage, scopeOf } from './stage.js';
import type { PruneMethod } from './types.js';

export interface PmpEpoch extends StepRecord { epoch: number; seconds: number }

/** The per-epoch pruning callback; its record goes into each epoch's `extra.pmp`. */
export function pmpCallback(target: PruneTarget, o: { final: number; phase: number; scope: Scope; sparsityAt?: (epoch: number) => number }): Callback {
  let last: PmpEpoch | null = null;
  return {
    name: 'pmp',
    onEpochStart: (ctx) => {
      const t0 = performance.now();
      const s = o.sparsityAt ? o.sparsityAt(ctx.epoch) : linear.sparsityAt(ctx.epoch, { final: o.final, phase: o.phase });
      const scores = magnitude.score({ model: ctx.model, target }, {});
      try {
        last = { epoch: ctx.epoch, ...pruneTo(target, scores, { sparsity: s, scope: o.scope }), seconds: 0 };
      } finally {
        dispose([...scores.values()]);
      }
      last.seconds = (performance.now() - t0) / 1000;
    },
    onEpochEnd: (_ctx, rec) => { if (last) rec.extra.pmp = last; },
  };
}

export const pmp: PruneMethod = {
  name: 'pmp',
  description: 'progressive magnitude pruning: s(e) = s_f min(1, (e+1)/P), one global threshold per epoch over active weights',
  hparams: {
    /** Pruning phase P in epochs (default: all epochs). */
    phase: z.number().int().positive().optional(),
  },
  from: 'optional',
  defaultScope: 'global',
  check: (o, train) => (typeof o.phase === 'number' && o.phase > train.epochs ? [{ path: 'phase', message: `must be at most epochs (${train.epochs}), got ${o.phase}` }] : []),
  run: (job, env) => {
    const scope = scopeOf(job, 'global');
    const phase = (job.prune.phase as number | undefined) ?? job.train.epochs;
    return runPruneStage(job, env, scope, {
      setup: (s) => [pmpCallback(s.target, { final: job.prune.sparsity, phase, scope })],
      record: (history) => ({
        schedule: linear.name, final: job.prune.sparsity, phase, scope,
        followed: history.map((h) => h.extra.pmp as PmpEpoch | undefined).filter(Boolean),
      }),
    });
  },
};
