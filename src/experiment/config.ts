/**
 * Hyperparameters as zod schemas with defaults: CLI flags and recipe files are validated by the
 * same schema, and a bad value is rejected before any work with the field's path in the message.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { LIMITS, readTextFile } from '../core/safe-fs.js';
import { MODEL_NAMES } from '../models/registry.js';
import { ONNX_MODEL } from '../graph/onnx-import.js';
import { INIT_NAMES } from '../nn/init.js';
import { SCHEDULE_NAMES } from '../optim/schedule.js';
import { AppliedDefaults } from './defaults.js';

const DATASETS = ['mnist', 'fashion_mnist', 'cifar10', 'cifar100'] as const;

export const AugmentConfig = z.object({
  /** Random rotation, degrees (uniform in [-r, r]). */
  rotation: z.number().min(0).max(180).default(0),
  /** Random translation, fraction of the image size. */
  translation: z.number().min(0).max(0.5).default(0),
  /** Random crop after zero padding by this many pixels. */
  cropPadding: z.number().int().min(0).default(0),
  /** Random horizontal flip. */
  flip: z.boolean().default(false),
  /**
   * Resampling of rotated images: bilinear when unset; `nearest` is torchvision's RandomAffine
   * default, which the PMP authors' code used.
   */
  interpolation: z.enum(['bilinear', 'nearest']).optional(),
}).strict();

export const TrainConfig = z.object({
  model: z.string().refine((m) => MODEL_NAMES.includes(m) || m === ONNX_MODEL, { // 'onnx': imported from prune --from <file.onnx>
    message: `unknown model (known: ${MODEL_NAMES.join(', ')})` }),
  dataset: z.enum(DATASETS),
  widths: z.array(z.number().int().positive()).optional(),
  init: z.enum(INIT_NAMES as [string, ...string[]]).default('default'),
  epochs: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  optimizer: z.enum(['sgd', 'adam', 'adamw']).default('sgd'),
  lr: z.number().positive(),
  momentum: z.number().min(0).max(1).default(0),
  nesterov: z.boolean().default(false),
  weightDecay: z.number().min(0).default(0),
  schedule: z.enum(SCHEDULE_NAMES as [string, ...string[]]).default('constant'),
  warmupEpochs: z.number().int().min(0).default(0),
  milestones: z.array(z.number().int().min(0)).optional(),
  gamma: z.number().positive().optional(),
  labelSmoothing: z.number().min(0).max(1).default(0),
  valFraction: z.number().min(0).max(0.5).default(0.1),
  /** Use only the first n training examples (after a seeded shuffle): quick runs. */
  subset: z.number().int().positive().optional(),
  augment: AugmentConfig.default({ rotation: 0, translation: 0, cropPadding: 0, flip: false }),
  seed: z.number().int().min(0).default(0),
  device: z.string().regex(/^(cpu|cuda(:\d{1,2})?)$/, { message: 'unknown device (expected cpu, cuda or cuda:N)' }).default('cpu'),
  threads: z.number().int().positive().optional(),
  /** The fields filled from the model's default recipe (experiment/defaults.ts), not a setting: a record. */
  defaults: AppliedDefaults.optional(),
}).strict().superRefine((c, ctx) => {
  if (c.warmupEpochs >= c.epochs && c.warmupEpochs > 0) ctx.addIssue({ code: 'custom', path: ['warmupEpochs'], message: `must be less than epochs (${c.epochs})` });
  if (c.nesterov && c.momentum === 0) ctx.addIssue({ code: 'custom', path: ['nesterov'], message: 'needs momentum > 0' });
});
export type TrainConfig = z.infer<typeof TrainConfig>;

/** Validate with a schema; a failure becomes one ConfigError naming every bad field. */
export function validate<S extends z.ZodType>(schema: S, raw: unknown, source = 'config'): z.infer<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
  const text = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  throw new ConfigError(`invalid ${source}: ${text}`, issues);
}

/** Read a YAML (or JSON) recipe file into a plain object. */
export function readRecipe(path: string): Record<string, unknown> {
  // A regular file of at most 1 MB: /dev/zero or a FIFO is refused unread, nothing hangs or grows.
  const text = readTextFile(path, { maxBytes: LIMITS.recipe, what: 'recipe', error: (m) => new ConfigError(m) });
  let v: unknown;
  try {
    v = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`recipe ${path}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`recipe ${path}: expected a mapping of fields at the top level`);
  return v as Record<string, unknown>;
}
