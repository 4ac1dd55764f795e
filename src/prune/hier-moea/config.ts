/**
 * HIER-MOEA's options: one zod schema for the CLI flags and the recipes (docs/methods/hier-moea.md
 * explains each choice). A bad value is rejected before any work, naming its field.
 */
import { z } from 'zod';

export const IMPORTANCE_NAMES = ['magnitude', 'taylor'] as const;

export const SearchConfig = z.object({
  /** model.safetensors written by `topiary train` (its metadata names model, dataset, config). */
  from: z.string().min(1).optional(),
  /** Must match the checkpoint's when both are given. */
  model: z.string().optional(),
  dataset: z.string().optional(),
  /** Training options for the dense network when `from` is absent (a TrainConfig; recipes use it). */
  dense: z.record(z.string(), z.unknown()).optional(),
  /** Population of both phases. */
  pop: z.number().int().min(4, { message: 'must be at least 4' }).default(40),
  /** Generations of each phase; the initial population counts as the first (pop * gens evaluations). */
  phase1Gens: z.number().int().min(1).default(30),
  phase2Gens: z.number().int().min(0).default(60),
  /** Validation examples (the first of the held-out split of the training data) that score candidates. */
  valSize: z.number().int().positive().default(5000),
  /** Bit importance in phase 2: |w|, or |w * g| with g the gradient on training batches. */
  importance: z.enum(IMPORTANCE_NAMES).default('magnitude'),
  importanceBatches: z.number().int().positive().default(4),
  /**
   * Heavy anchor: the sparsest phase-1 solution whose validation error is within this of the dense one.
   * Default 0: no worse than the dense network, so phase 2's space loses nothing of the front's low-error end.
   */
  tolerance: z.number().min(0).max(1).default(0),
  /** Importance-aware sampling: temperature of the sigmoid over normalized importance. */
  temperature: z.number().positive().max(1).default(0.05),
  /** Initial per-bit base rate of the adaptive mutation (both directions). */
  mutationRate: z.number().positive().max(0.5).default(0.002),
  crossover: z.enum(['two_point', 'uniform']).default('two_point'),
  /**
   * Share of phase 2's initial population taken from the phase-1 front (each solution at most as
   * dense as the heavy anchor, projected onto its weights); the rest is importance-sampled. 0: none.
   */
  phase2Seeds: z.number().min(0).max(1).default(0.5),
  /**
   * Phase 1's first population holds one-shot global magnitude pruning at these sparsities (as
   * per-layer fractions), so the front starts no worse than that baseline at those sizes.
   */
  magnitudeSeeds: z.array(z.number().gt(0).lt(1)).default([0.5, 0.7, 0.9]),
  /** BatchNorm recalibration: this many training batches of this size per candidate (models with BatchNorm). */
  bnBatches: z.number().int().min(1).default(4),
  bnBatchSize: z.number().int().positive().default(128),
  /** 250 on CPU: a 1000-image LeNet-5 batch needs buffers over glibc's 32 MB mmap threshold, mapped and unmapped on every pass (about a third of the time). */
  evalBatchSize: z.number().int().positive().default(250),
  /** Fine-tuning of the knee and the picks, masks fixed (SGD with momentum, cosine schedule). */
  finetuneEpochs: z.number().int().min(0).default(3),
  finetuneLr: z.number().positive().default(0.01),
  finetuneMomentum: z.number().min(0).max(1).default(0.9),
  finetuneWeightDecay: z.number().min(0).default(0),
  /** Also fine-tune, for each target sparsity s here, the lowest-error solution with sparsity >= s. */
  pick: z.array(z.number().gt(0).lt(1)).default([]),
  seed: z.number().int().min(0).default(0),
  threads: z.number().int().positive().optional(),
  /**
   * Candidates of a generation evaluated in this many worker threads (1: in this thread, one after
   * another). Results are identical either way, so it is not part of the search's identity.
   */
  workers: z.number({ message: 'must be a positive integer' }).int({ message: 'must be a positive integer' })
    .positive({ message: 'must be a positive integer' }).default(1),
  device: z.string().default('cpu'),
  /**
   * structured: phase 1's per-layer thresholds remove whole channel groups (structured.ts), by
   * their L1 or L2 norm (groupNorm); the picks are also written physically shrunk. Phase 2 flips
   * single weights, so a structured search runs phase 1 only (phase2Gens 0).
   */
  granularity: z.enum(['unstructured', 'structured']).default('unstructured'),
  /**
   * Racing (racing.ts): a candidate's evaluation stops once it is strictly dominated by the phase's
   * archive whatever its remaining images give (validation images put hardest first). The front is
   * the full evaluation's; NSGA-II sees a lower bound for the stopped candidates' errors.
   */
  racing: z.boolean().default(false),
  groupNorm: z.enum(['l1', 'l2']).default('l1'),
}).strict();

export type SearchConfig = z.infer<typeof SearchConfig>;

/**
 * The fields that shape the search itself: a resumed search must agree on all of them. `workers`
 * and `threads` are not among them: they change the speed, not the result.
 */
export const SEARCH_IDENTITY: (keyof SearchConfig)[] = [
  'pop', 'phase1Gens', 'phase2Gens', 'valSize', 'importance', 'importanceBatches', 'tolerance', 'temperature',
  'mutationRate', 'crossover', 'bnBatches', 'bnBatchSize', 'seed', 'phase2Seeds', 'magnitudeSeeds', 'granularity', 'groupNorm', 'racing',
];

/** What a search saved before an option existed ran with (its identity lacks the key). */
export const LEGACY_IDENTITY: Partial<Record<keyof SearchConfig, unknown>> = { phase2Seeds: 0, magnitudeSeeds: [], granularity: 'unstructured', groupNorm: 'l1', racing: false };
