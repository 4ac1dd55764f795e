/**
 * Pruning options: the common fields every method takes, merged with the method's own zod shape
 * into one strict schema, so a recipe or the command line is checked field by field before any
 * work, and a bad value is rejected with its field's name.
 */
import { z } from 'zod';
import { checkDevice } from '../core/device.js';
import { ConfigError } from '../core/errors.js';
import { checkOutDir, withRunLock } from '../core/run-lock.js';
import { getDatasetSpec } from '../data/sources.js';
import { createModel } from '../models/registry.js';
import { importOnnxFor, isOnnxFile } from '../graph/onnx-import.js';
import { getMethod, METHOD_NAMES } from './methods/index.js';
import type { PruneEnv, PruneJob, PruneOptions, TrainSettings } from './methods/types.js';
import { PruneTarget } from './target.js';
import { PRUNE_UNITS, type PruneUnit } from './heads.js';

export const CommonPruneShape = {
  method: z.string(),
  /** Fraction of the prunable weights removed, in [0, 1). */
  sparsity: z.number().min(0, 'must be at least 0').lt(1, 'must be below 1 (a fraction of the weights, in [0, 1))'),
  scope: z.enum(['global', 'layer']).optional(),
  granularity: z.enum(['unstructured', 'structured']).default('unstructured'),
  /** Structured magnitude: a channel group's importance is its mean |w| (l1, the default) or root mean square (l2). */
  groupNorm: z.enum(['l1', 'l2']).optional(),
  prunable: z.string().optional(),
  from: z.string().optional(),
  /** Structured: what a removed group is (heads.ts): channels (the default), heads, neurons (a transformer block's MLP), or heads,neurons. */
  unit: z.enum(PRUNE_UNITS as [PruneUnit, ...PruneUnit[]], { message: `must be one of ${PRUNE_UNITS.join(', ')}` }).optional(),
};

function fail(source: string, issues: { path: string; message: string }[]): never {
  throw new ConfigError(`invalid ${source}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

/**
 * Validate raw prune options (a recipe's `prune:` mapping merged with flags) for a training config:
 * the method's schema, whether it needs a trained model (--from), and its cross-field checks.
 */
export function validatePruneOptions(raw: Record<string, unknown>, train: TrainSettings, source = 'prune options'): PruneOptions {
  const name = raw.method;
  if (typeof name !== 'string' || !METHOD_NAMES.includes(name)) {
    fail(source, [{ path: 'method', message: `${name === undefined ? 'required' : `unknown method '${String(name)}'`} (known: ${METHOD_NAMES.join(', ')})` }]);
  }
  const m = getMethod(name);
  const schema = z.object({ ...CommonPruneShape, ...m.hparams }).strict();
  const r = schema.safeParse(raw);
  if (!r.success) {
    fail(source, r.error.issues.map((i) => (i.code === 'unrecognized_keys'
      ? { path: i.keys.join(', '), message: `not an option of method '${name}'` }
      : { path: i.path.join('.') || '(root)', message: i.message })));
  }
  const o = r.data as PruneOptions;
  const issues: { path: string; message: string }[] = [];
  if (m.from === 'required' && !o.from) issues.push({ path: 'from', message: `method '${name}' prunes a trained model: give one with --from <model.safetensors or run folder>` });
  if (m.from === 'forbidden' && o.from) issues.push({ path: 'from', message: `method '${name}' starts from initialization and takes no trained model` });
  if (o.unit && o.unit !== 'channels' && o.granularity !== 'structured') issues.push({ path: 'unit', message: `'${o.unit}' removes whole units: needs --granularity structured` });
  issues.push(...(m.check?.(o, train) ?? []));
  if (issues.length) fail(source, issues);
  return o;
}

/**
 * Checks that need the model, run before any work: the prunable filter matches something, and a
 * structured granularity finds rows to prune. Builds the model on the CPU and frees it.
 */
export function preflight(train: TrainSettings, o: PruneOptions): void {
  const spec = getDatasetSpec(train.dataset);
  const model = isOnnxFile(o.from) ? importOnnxFor(o.from, { inputShape: [...spec.inputShape], numClasses: spec.numClasses, dataset: train.dataset })
    : createModel(train.model, { inputShape: [...spec.inputShape], numClasses: spec.numClasses, widths: train.widths });
  try {
    new PruneTarget(model, { prunable: o.prunable, granularity: o.granularity, inputShape: [...spec.inputShape], unit: o.unit }).dispose();
  } finally {
    model.dispose();
  }
}

/** Run a validated job with its method, its output folder locked throughout (a second process on it is refused, named). */
export function runPrune(job: PruneJob, env: PruneEnv): Promise<Record<string, unknown>> {
  checkDevice(job.train.device ?? 'cpu');
  checkOutDir(job.run.out);
  return withRunLock(job.run.out, () => getMethod(job.prune.method).run(job, env));
}
