/**
 * One-shot methods: score once with a criterion (at initialization, or on a trained model given by
 * --from), prune to the sparsity, then train with the mask fixed (or, for the methods that allow
 * it, only evaluate: `finetune: false`).
 */
import { z } from 'zod';
import { pruneWith, type StepRecord } from '../step.js';
import { evaluateStage, runPruneStage, scopeOf, type StageSpec } from './stage.js';
import type { FromPolicy, PruneMethod, PruneOptions } from './types.js';

export interface OneShotSpec {
  name: string;
  description: string;
  /** The criterion's registered name (or, for `one_shot`, read from the options). */
  criterion: string | ((o: PruneOptions) => string);
  from: FromPolicy;
  /** The method's options besides the common ones. */
  hparams?: z.ZodRawShape;
  /** The criterion's hyperparameters, picked from the method's options. */
  criterionHp?: (o: PruneOptions) => Record<string, unknown>;
  /** Offer `finetune` (default true); without it the method always trains. */
  optionalFinetune?: boolean;
  check?: PruneMethod['check'];
}

export function oneShotMethod(spec: OneShotSpec): PruneMethod {
  const hparams: Record<string, z.core.$ZodType> = { ...(spec.hparams ?? {}) };
  if (spec.optionalFinetune) hparams.finetune = z.boolean().default(true);
  const criterionOf = (o: PruneOptions) => (typeof spec.criterion === 'string' ? spec.criterion : spec.criterion(o));
  return {
    name: spec.name,
    description: spec.description,
    hparams,
    from: spec.from,
    defaultScope: 'global',
    check: spec.check,
    run: async (job, env) => {
      const scope = scopeOf(job, 'global');
      const criterion = criterionOf(job.prune);
      const train = !spec.optionalFinetune || job.prune.finetune !== false;
      let step: StepRecord | undefined;
      const stage: StageSpec = {
        setup: (s) => {
          step = pruneWith(criterion, { model: s.model, target: s.target, batch: s.batch }, {
            sparsity: job.prune.sparsity, scope, hparams: spec.criterionHp?.(job.prune) ?? {},
          });
          return [];
        },
        record: () => ({ criterion, prunedAt: job.prune.from ? 'trained model' : 'initialization', trained: train, step }),
      };
      return train ? runPruneStage(job, env, scope, stage) : evaluateStage(job, env, scope, stage);
    },
  };
}
