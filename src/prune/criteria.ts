/**
 * Pruning criteria: each a value (name, zod hyperparameters, score function) in a registry.
 * A criterion returns an importance per prunable weight, higher meaning keep; selection
 * (select.ts) turns importances into masks. A user adds one with `registerCriterion` or
 * `userCriterion`, and every method that takes a criterion by name can use it.
 */
import { z } from 'zod';
import { ArgumentError, RegistryError, ShapeError } from '../core/errors.js';
import type { Module } from '../nn/module.js';
import { randLike } from '../tensor/creation.js';
import { dispose, tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { BatchLike } from '../train/evaluate.js';
import { graspScores, snipScores } from './saliency.js';
import { headImportance, unitSnipScores } from './heads-importance.js';
import type { GroupReduce } from './group-select.js';
import type { PruneTarget } from './target.js';

export interface ScoreContext {
  model: Module;
  target: PruneTarget;
  /** A scoring batch of n examples (class-balanced when asked), normalized, not augmented; the caller of score() owns it. */
  batch?: (n: number, classBalanced: boolean) => BatchLike;
}

export interface Criterion<H = Record<string, unknown>> {
  name: string;
  description: string;
  hparams: z.ZodType<H>;
  /** Needs ctx.batch (data-driven criteria). */
  needsData: boolean;
  /** Structured pruning: how a channel group's scores combine (default 'norm', the mean magnitude; see group-select.ts). */
  groupReduce?: GroupReduce;
  /** Importance of each prunable weight (target.weights), higher = keep. The caller owns the tensors. */
  score(ctx: ScoreContext, hp: H): Map<string, Tensor>;
}

const NoHp = z.object({}).strict();

export const magnitude: Criterion<z.infer<typeof NoHp>> = {
  name: 'magnitude',
  description: '|w|',
  hparams: NoHp,
  needsData: false,
  score: ({ target }) => tidy(() => new Map(target.weights.map((n) => [n, target.param(n).detach().abs()]))),
};

export const random: Criterion<z.infer<typeof NoHp>> = {
  name: 'random',
  description: 'uniform random scores (libtorch generator: seeded by the run seed)',
  hparams: NoHp,
  needsData: false,
  groupReduce: 'first',
  score: ({ target }) => tidy(() => new Map(target.weights.map((n) => [n, randLike(target.param(n), { requiresGrad: false })]))),
};

export const SnipHp = z.object({ samples: z.number().int().positive().default(100) }).strict();
export const snip: Criterion<z.infer<typeof SnipHp>> = {
  name: 'snip',
  description: 'SNIP: |g * w| / sum, on one batch at initialization',
  hparams: SnipHp,
  needsData: true,
  groupReduce: 'sum',
  // Structured over transformer units (--unit heads / neurons): the gates' sensitivity (heads-importance.ts).
  score: (ctx, hp) => (ctx.target.unit !== 'channels' ? unitSnipScores(ctx, hp.samples)
    : withBatch(ctx, hp.samples, false, (b) => snipScores(ctx.model, ctx.target.weights, b))),
};

export const GraspHp = z.object({
  samples: z.number().int().positive().default(100),
  temperature: z.number().positive().default(200),
  classBalanced: z.boolean().default(true),
}).strict();
/** GraSP's score is -w * Hg with the highest removed; as an importance (higher = keep) it is negated. */
export const grasp: Criterion<z.infer<typeof GraspHp>> = {
  name: 'grasp',
  description: 'GraSP: -w * Hg (Hg by double backprop, logits / T), highest removed',
  hparams: GraspHp,
  needsData: true,
  groupReduce: 'sum',
  score: (ctx, hp) => withBatch(ctx, hp.samples, hp.classBalanced, (b) => {
    const s = graspScores(ctx.model, ctx.target.weights, b, hp.temperature);
    const out = tidy(() => new Map([...s].map(([n, t]) => [n, t.neg()])));
    dispose([...s.values()]);
    return out;
  }),
};

function withBatch(ctx: ScoreContext, n: number, balanced: boolean, fn: (b: BatchLike) => Map<string, Tensor>): Map<string, Tensor> {
  if (!ctx.batch) throw new ArgumentError('this criterion needs training data (a scoring batch), and none was given');
  const b = ctx.batch(n, balanced);
  try {
    return fn(b);
  } finally {
    b.x.dispose();
    b.y.dispose();
  }
}

const REGISTRY = new Map<string, Criterion<any>>([magnitude, random, snip, grasp, headImportance].map((c) => [c.name, c]));

export function registerCriterion(c: Criterion<any>): void {
  if (REGISTRY.has(c.name)) throw new RegistryError(`a criterion named '${c.name}' is already registered`);
  REGISTRY.set(c.name, c);
}

export function criterionNames(): string[] { return [...REGISTRY.keys()]; }

export function getCriterion(name: string): Criterion<any> {
  const c = REGISTRY.get(name);
  if (!c) throw new RegistryError(`unknown criterion '${name}' (known: ${criterionNames().join(', ')})`);
  return c;
}

/**
 * A criterion from a plain function of one weight: `fn(w, name, ctx)` returns a tensor of w's shape
 * (higher = keep). Registered under `name` unless `register` is false.
 */
export function userCriterion(name: string, fn: (w: Tensor, param: string, ctx: ScoreContext) => Tensor, register = true): Criterion<Record<string, never>> {
  const c: Criterion<Record<string, never>> = {
    name,
    description: 'user-supplied score',
    hparams: NoHp as unknown as z.ZodType<Record<string, never>>,
    needsData: false,
    score: (ctx) => tidy(() => new Map(ctx.target.weights.map((n) => {
      const w = ctx.target.param(n);
      const s = fn(w.detach(), n, ctx);
      if (s.shape.join(',') !== w.shape.join(',')) throw new ShapeError(`criterion '${name}': score for '${n}' has shape [${s.shape}], the weight [${w.shape}]`);
      return [n, s.detach()];
    }))),
  };
  if (register) registerCriterion(c);
  return c;
}

/** Score with a registered criterion by name, validating its hyperparameters. */
export function scoreWith(name: string, ctx: ScoreContext, hp: Record<string, unknown> = {}): Map<string, Tensor> {
  const c = getCriterion(name);
  const parsed = c.hparams.safeParse(hp);
  if (!parsed.success) throw new ArgumentError(`criterion '${name}': ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return c.score(ctx, parsed.data);
}
