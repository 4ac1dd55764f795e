/**
 * EVO-POP hyperparameters as one zod schema with defaults (CLI flags, recipes and the reproduction
 * use it alike; a bad value is rejected with the field's name). The defaults are the values tuned
 * on MNIST in docs/methods/evo-pop.md.
 */
import { z } from 'zod';
import { DYNAMICS } from './dynamics.js';
import { FITNESS } from './fitness.js';

/** A registered name (the built-in ones, or one added with registerDynamics / registerFitness), checked when parsed. */
const registered = (kind: string, table: () => Record<string, unknown>, extra: string[] = []) => z.string().superRefine((v, ctx) => {
  if (!extra.includes(v) && !Object.hasOwn(table(), v)) ctx.addIssue({ code: 'custom', message: `unknown ${kind} '${v}' (known: ${[...Object.keys(table()), ...extra].join(', ')})` });
});

/**
 * Kinds of populations: attention heads, neurons (Linear units, MLP neurons of a block), filters (Conv2d),
 * channels (the channel dependency groups of any traced or imported graph: graph-populations.ts).
 */
export const POPULATION_KINDS = ['heads', 'neurons', 'filters', 'channels'] as const;
export type PopulationKind = (typeof POPULATION_KINDS)[number];

/**
 * Removal criteria after training: 'mass' is the method; the others are controls. 'importance' is
 * Michel et al. 2019's head importance (the gradient of the loss with respect to a unit's gate,
 * accumulated over calibration batches), not in the default list.
 */
export const CRITERIA = ['mass', 'random', 'l2', 'activation', 'importance'] as const;
/** The criteria a run evaluates unless told otherwise. */
export const DEFAULT_CRITERIA = ['mass', 'random', 'l2', 'activation'] as const;
export type Criterion = (typeof CRITERIA)[number];

export const EvoConfig = z.object({
  /** 'none' trains the same network with masses fixed at 1 (the dense control). */
  dynamics: registered('dynamics', () => DYNAMICS, ['none']).default('replicator'),
  fitness: registered('fitness', () => FITNESS).default('gradient'),
  eta: z.number().positive().default(0.01),
  /** EMA factor of the fitness: ema = beta ema + (1 - beta) f. */
  beta: z.number().min(0).lt(1).default(0.9),
  /** Measure fitness and apply the dynamics every k optimizer steps. */
  every: z.number().int().positive().default(1),
  /** Extinction threshold: a mass below it becomes 0 for good. */
  epsilon: z.number().min(0).default(1e-3),
  mu: z.number().min(0).default(1e-3),
  cost: z.union([z.literal('mean'), z.number()]).default('mean'),
  mMax: z.number().positive().default(4),
  /** Record every population's mass every this many steps (for the trajectory plot). */
  recordEvery: z.number().int().positive().default(50),
  /** Fractions of all populations removed after training, each in (0, 1). */
  pruneAt: z.array(z.number().gt(0).lt(1)).min(1).default([0.35, 0.4, 0.45, 0.5]),
  criteria: z.array(z.enum(CRITERIA)).min(1).default([...DEFAULT_CRITERIA]),
  /** Epochs of fine-tuning after removal (0: none, the paper's setting). */
  finetuneEpochs: z.number().int().min(0).default(0),
  /** Fine-tuning learning rate as a fraction of the training lr. */
  finetuneLrScale: z.number().positive().default(0.1),
  /** Examples of the training split used to measure mean activations for the 'activation' control. */
  calibrationExamples: z.number().int().positive().default(2048),
  /**
   * Which units are populations: heads and neurons of a transformer (vit_tiny), neurons and filters
   * of a Sequential network. Unset: every kind the model has.
   */
  populations: z.array(z.enum(POPULATION_KINDS)).min(1).optional(),
  /** An ONNX file to train from (its weights are the start; its populations are its channel groups). */
  from: z.string().min(1).optional(),
}).strict();
export type EvoConfig = z.infer<typeof EvoConfig>;

/** The flags of EvoConfig (camelCase keys), for separating them from the training flags. */
export const EVO_KEYS = Object.keys(EvoConfig.shape);
