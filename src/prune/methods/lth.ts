/**
 * LTH, iterative magnitude pruning with rewinding (Frankle and Carbin 2019). Round 0 trains the
 * dense network from θ0; round r removes `rate` of each hidden layer's remaining weights and
 * `outputRate` of the output layer's (by the magnitudes of round r-1's trained weights), rewinds
 * the survivors to θ0 (or to their values after `rewindIteration` steps of round 0) and trains
 * again. Rounds run until the requested sparsity is reached.
 *
 * Each round is a stage with its own folder (round_<r>/: result.json, model.safetensors,
 * masks.safetensors; the last round's two files are copied to the run's top level, the ticket
 * `topiary export --from <run>` takes); a finished round is skipped, so an interrupted run resumes (mid-round too,
 * from the round's checkpoint). Controls on chosen rounds: `reinit` (the same mask, a fresh random
 * initialization) and `random_mask` (a random mask with the same per-layer counts, from θ0).
 */
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../../core/errors.js';
import { manualSeed } from '../../core/runtime.js';
import { getDatasetSpec } from '../../data/sources.js';
import { createModel } from '../../models/registry.js';
import type { Module } from '../../nn/module.js';
import { loadSafetensors, saveSafetensors } from '../../tensor/safetensors.js';
import { dispose } from '../../tensor/scope.js';
import { writeJsonAtomic } from '../../train/checkpoint.js';
import type { Callback } from '../../train/loop.js';
import { iterativeRemaining, roundsFor } from '../schedules.js';
import { pruneTo, pruneWith, layerRateKeep } from '../step.js';
import { PruneTarget, type Scope } from '../target.js';
import { buildModel, finishedResult, loadWeights, runPruneStage, scopeOf, type StageContext } from './stage.js';
import type { DataLike, PruneEnv, PruneJob, PruneMethod } from './types.js';

const CONTROLS = ['reinit', 'random_mask'] as const;
type Control = (typeof CONTROLS)[number];

interface Plan { rounds: number; sizes: number[]; rates: number[]; scope: Scope; controlRounds: number[] }

interface RoundSummary { round: number; stage: string; remaining: number; sparsity: number; testAccuracy: number; bestValAccuracy: number | null; finalValAccuracy: number | null }

/** Rounds and per-layer rates, from a model built only to count its weights (before any training). */
function plan(job: PruneJob): Plan {
  const spec = getDatasetSpec(job.train.dataset);
  const model = createModel(job.train.model, { inputShape: [...spec.inputShape], numClasses: spec.numClasses, widths: job.train.widths });
  const t = new PruneTarget(model, { prunable: job.prune.prunable });
  const sizes = t.weights.map((n) => t.param(n).numel);
  t.dispose();
  model.dispose();
  const scope = scopeOf(job, 'layer');
  const rate = job.prune.rate as number, outRate = job.prune.outputRate as number;
  const rates = scope === 'layer' ? sizes.map((_, i) => (i === sizes.length - 1 ? outRate : rate)) : sizes.map(() => rate);
  const rounds = scope === 'layer' ? roundsFor(sizes, rates, job.prune.sparsity) : roundsFor([sizes.reduce((a, b) => a + b, 0)], [rate], job.prune.sparsity);
  const controlRounds = (job.prune.controlRounds as number[] | undefined) ?? [rounds];
  const bad = controlRounds.find((r) => r > rounds);
  if (bad !== undefined) throw new ConfigError(`controlRounds: round ${bad} is past the last round (${rounds})`, [{ path: 'controlRounds', message: `at most ${rounds}` }]);
  return { rounds, sizes, rates, scope, controlRounds };
}

/** Load a stage's masks (and, optionally, its trained weights' magnitudes as scores). */
function loadMasks(target: PruneTarget, dir: string): void {
  const { tensors } = loadSafetensors(join(dir, 'masks.safetensors'));
  try { target.masks.loadStateDict(tensors); } finally { dispose(tensors); }
}

function roundMask(s: StageContext, root: string, r: number, p: Plan, rate: number): void {
  const prev = join(root, `round_${r - 1}`);
  loadMasks(s.target, prev);
  const { tensors } = loadSafetensors(join(prev, 'model.safetensors'));
  const scores = new Map(s.target.weights.map((n) => [n, tensors[n].abs()]));
  try {
    if (p.scope === 'layer') pruneTo(s.target, scores, { sparsity: 0, scope: 'layer', keep: layerRateKeep(s.target, p.rates[0], p.rates[p.rates.length - 1]) });
    else {
      const c = s.target.counts();
      const keep = c.kept - Math.round(rate * c.kept);
      pruneTo(s.target, scores, { sparsity: 1 - keep / c.total, scope: 'global' });
    }
  } finally {
    dispose([...scores.values()]);
    dispose(tensors);
  }
}

export const lth: PruneMethod = {
  name: 'lth',
  description: 'lottery tickets: iterative magnitude pruning with rewinding (20% of hidden layers, 10% of the output per round)',
  hparams: {
    rate: z.number().gt(0).lt(1).default(0.2),
    outputRate: z.number().gt(0).lt(1).default(0.1),
    /** Rewind to the weights after this many steps of round 0 (0: to the initialization). */
    rewindIteration: z.number().int().min(0).default(0),
    controls: z.array(z.enum(CONTROLS)).default([]),
    /** Rounds that get the controls (default: the last round). */
    controlRounds: z.array(z.number().int().positive()).optional(),
  },
  from: 'forbidden',
  defaultScope: 'layer',
  check: (o) => (o.granularity === 'structured' ? [{ path: 'granularity', message: 'lth prunes unstructured weights' }] : []),
  run: async (job, env) => runLth(job, env),
};

async function runLth(job: PruneJob, env: PruneEnv): Promise<Record<string, unknown>> {
  const p = plan(job);
  const root = job.run.out;
  const rate = job.prune.rate as number;
  const k = job.prune.rewindIteration as number;
  const initFile = join(root, 'init.safetensors'), rewindFile = join(root, 'rewind.safetensors');
  const rewound = (data: DataLike): Module => {
    const m = buildModel(job.train, data);
    const f = k > 0 ? rewindFile : initFile;
    if (!existsSync(f)) throw new ConfigError(`rewindIteration: ${f} was not written by round 0 (is rewindIteration ${k} beyond round 0's steps?)`, [{ path: 'rewindIteration', message: 'no rewind point' }]);
    loadWeights(m, f);
    return m;
  };
  const rounds: RoundSummary[] = [], controls: (RoundSummary & { control: Control })[] = [];
  const stage = async (name: string, requested: number, model: (d: DataLike) => Module, setup: (s: StageContext) => Callback[]) => {
    const out = join(root, name);
    const done = finishedResult(out);
    if (done) return done;
    const res = await runPruneStage({ ...job, run: { ...job.run } }, env, p.scope, {
      out, kind: 'prune_lth_round', requested, model, setup, record: () => ({ stage: name }),
    });
    if (res.completed) rmSync(join(out, 'checkpoints'), { recursive: true, force: true });
    return res;
  };
  const summary = (name: string, round: number, r: Record<string, unknown>): RoundSummary => ({
    round, stage: name, remaining: 1 - (r.achievedSparsity as number), sparsity: r.achievedSparsity as number,
    testAccuracy: r.testAccuracy as number, bestValAccuracy: (r.bestValAccuracy as number) ?? null, finalValAccuracy: (r.finalValAccuracy as number) ?? null,
  });
  let last: Record<string, unknown> = {};
  for (let r = 0; r <= p.rounds; r++) {
    const requested = 1 - iterativeRemaining(p.scope === 'layer' ? p.sizes : [p.sizes.reduce((a, b) => a + b, 0)], p.scope === 'layer' ? p.rates : [rate], r);
    const res = await stage(`round_${r}`, requested,
      r === 0 ? (data) => {
        const m = buildModel(job.train, data);
        if (!existsSync(initFile)) saveSafetensors(initFile, m.stateDict(), { stage: 'lth init' });
        return m;
      } : rewound,
      (s) => {
        if (r > 0) roundMask(s, root, r, p, rate);
        return r === 0 && k > 0 ? [rewindSaver(s.model, rewindFile, k)] : [];
      });
    if (!res.completed) return writeSummary(root, job, p, rounds, controls, res, false);
    rounds.push(summary(`round_${r}`, r, res));
    last = res;
    if (!p.controlRounds.includes(r)) continue;
    for (const c of job.prune.controls as Control[]) {
      const ticket = join(root, `round_${r}`);
      const cres = await stage(`round_${r}_${c}`, requested,
        c === 'reinit' ? (data) => { manualSeed(job.train.seed + 100_003); return buildModel(job.train, data); } : rewound,
        (s) => {
          if (c === 'reinit') loadMasks(s.target, ticket);
          else {
            const probe = new PruneTarget(s.model, { prunable: job.prune.prunable });
            loadMasks(probe, ticket);
            const keep = new Map(probe.counts().layers.map((l) => [l.name, l.kept]));
            probe.dispose();
            pruneWith('random', { model: s.model, target: s.target }, { sparsity: 0, scope: 'layer', keep });
          }
          return [];
        });
      if (!cres.completed) return writeSummary(root, job, p, rounds, controls, cres, false);
      controls.push({ ...summary(`round_${r}_${c}`, r, cres), control: c });
    }
  }
  // The winning ticket (the last round's trained, masked network) at the run's top level, as the other methods leave theirs.
  for (const f of ['model.safetensors', 'masks.safetensors']) copyFileSync(join(root, `round_${p.rounds}`, f), join(root, f));
  return writeSummary(root, job, p, rounds, controls, last, true);
}

/** Save the weights after k optimizer steps of round 0 (the rewind point). */
function rewindSaver(model: Module, file: string, k: number): Callback {
  return {
    name: 'lth_rewind',
    afterStep: (ctx) => { if (ctx.step + 1 === k && !existsSync(file)) saveSafetensors(file, model.stateDict(), { stage: `lth rewind ${k}` }); },
  };
}

function writeSummary(root: string, job: PruneJob, p: Plan, rounds: RoundSummary[], controls: RoundSummary[], last: Record<string, unknown>, completed: boolean): Record<string, unknown> {
  const { history: _h, record: _r, ...fields } = last;
  const result = {
    ...fields, kind: 'prune_lth', completed, requestedSparsity: job.prune.sparsity, method: 'lth', pruneOptions: job.prune,
    record: {
      rounds: p.rounds, scope: p.scope, rates: { hidden: job.prune.rate, output: job.prune.outputRate }, rewindIteration: job.prune.rewindIteration,
      perRound: rounds, controls,
    },
  };
  writeJsonAtomic(join(root, 'result.json'), result);
  return result;
}
