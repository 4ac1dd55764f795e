/**
 * Sparsity schedules: functions from time (an epoch, a step or a round, counted from 0) to the
 * sparsity a method should have reached by then. Each is a value with a zod schema of its
 * hyperparameters, registered by name (the names appear in recipes and run hashes).
 */
import { z } from 'zod';
import { RegistryError } from '../core/errors.js';

export interface Schedule<H> {
  name: string;
  description: string;
  hparams: z.ZodType<H>;
  /** Target sparsity at time t (an epoch, a step or a round, by schedule). */
  sparsityAt(t: number, hp: H): number;
}

const Fraction = z.number().min(0).lt(1);

export const OneShotHp = z.object({ final: Fraction, at: z.number().int().min(0).default(0) }).strict();
export type OneShotHp = z.infer<typeof OneShotHp>;

/** Everything at once at time `at` (0 before it). */
export const oneShot: Schedule<OneShotHp> = {
  name: 'one_shot',
  description: 'all the sparsity at once, at time `at`',
  hparams: OneShotHp,
  sparsityAt: (t, hp) => (t >= hp.at ? hp.final : 0),
};

export const LinearHp = z.object({ final: Fraction, phase: z.number().int().positive() }).strict();
export type LinearHp = z.infer<typeof LinearHp>;

/** PMP: s(e) = s_f * min(1, (e + 1) / P) for epoch e counted from 0; full sparsity from epoch P - 1 on. */
export const linear: Schedule<LinearHp> = {
  name: 'linear',
  description: 'PMP: s(e) = s_f * min(1, (e + 1) / P)',
  hparams: LinearHp,
  sparsityAt: (e, hp) => hp.final * Math.min(1, (e + 1) / hp.phase),
};

export const CubicHp = z.object({
  initial: Fraction.default(0),
  final: Fraction,
  /** First pruning step t0. */
  start: z.number().int().min(0),
  /** Steps between updates (dt). */
  every: z.number().int().positive(),
  /** Number of updates after the first (n): the schedule ends at t0 + n * dt. */
  updates: z.number().positive(),
}).strict();
export type CubicHp = z.infer<typeof CubicHp>;

/**
 * Zhu and Gupta (2017): s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3 for t0 <= t <= t0 + n dt;
 * 0 before t0 (no pruning yet), s_f after. Sparsity rises fast at first, when redundant weights
 * are plentiful, and slowly at the end.
 */
export const cubic: Schedule<CubicHp> = {
  name: 'cubic',
  description: 'GMP (Zhu & Gupta): s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3',
  hparams: CubicHp,
  sparsityAt: (t, hp) => {
    if (t < hp.start) return 0;
    const frac = Math.min(1, (t - hp.start) / (hp.updates * hp.every));
    return hp.final + (hp.initial - hp.final) * (1 - frac) ** 3;
  },
};

export const IterativeHp = z.object({
  /** Fraction of the remaining weights removed per round. */
  rate: z.number().gt(0).lt(1).default(0.2),
}).strict();
export type IterativeHp = z.infer<typeof IterativeHp>;

/** LTH: each round removes `rate` of what remains, so after round r the sparsity is 1 - (1 - rate)^r. */
export const iterative: Schedule<IterativeHp> = {
  name: 'iterative',
  description: 'LTH: 1 - (1 - rate)^round',
  hparams: IterativeHp,
  sparsityAt: (r, hp) => 1 - (1 - hp.rate) ** r,
};

/**
 * LTH with per-layer rates (Frankle and Carbin: 20% of each hidden layer, 10% of the output layer):
 * the remaining fraction of the network after `round` rounds.
 */
export function iterativeRemaining(sizes: number[], rates: number[], round: number): number {
  const total = sizes.reduce((a, b) => a + b, 0);
  let left = 0;
  sizes.forEach((n, i) => {
    let k = n;
    for (let r = 0; r < round; r++) k -= Math.round(rates[i] * k);
    left += k;
  });
  return left / total;
}

/** The fewest rounds whose remaining fraction is at most 1 - sparsity (capped at 100 rounds). */
export function roundsFor(sizes: number[], rates: number[], sparsity: number): number {
  for (let r = 0; r <= 100; r++) if (iterativeRemaining(sizes, rates, r) <= 1 - sparsity + 1e-12) return r;
  return 100;
}

export const SCHEDULES: Record<string, Schedule<any>> = Object.fromEntries([oneShot, linear, cubic, iterative].map((s) => [s.name, s]));
export const SCHEDULE_NAMES = Object.keys(SCHEDULES);

export function getSchedule(name: string): Schedule<any> {
  const s = SCHEDULES[name];
  if (!s) throw new RegistryError(`unknown pruning schedule '${name}' (known: ${SCHEDULE_NAMES.join(', ')})`);
  return s;
}
