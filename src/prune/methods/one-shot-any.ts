/**
 * `one_shot`: one-shot pruning with any registered criterion by name (a built-in one, or a user's,
 * registered by a plugin: `topiary --plugin my-criterion.ts prune --method one_shot --criterion mine`),
 * of a trained model (--from) or at initialization, then fine-tuning (or not: --no-finetune).
 * The criterion's own hyperparameters come from the recipe's `prune.criterionOptions`, validated by
 * its zod schema before any work.
 */
import { z } from 'zod';
import { criterionNames, getCriterion } from '../criteria.js';
import { oneShotMethod } from './one-shot.js';
import type { MethodIssue } from './types.js';

export const oneShotAny = oneShotMethod({
  name: 'one_shot',
  description: 'one-shot pruning with a registered criterion (--criterion, built-in or from a --plugin), then fine-tuning',
  criterion: (o) => o.criterion as string,
  from: 'optional',
  optionalFinetune: true,
  hparams: {
    criterion: z.string({ message: 'required: the name of a registered criterion' }),
    criterionOptions: z.record(z.string(), z.unknown()).default({}),
  },
  criterionHp: (o) => o.criterionOptions as Record<string, unknown>,
  check: (o) => {
    const name = o.criterion as string;
    if (!criterionNames().includes(name)) return [{ path: 'criterion', message: `unknown criterion '${name}' (known: ${criterionNames().join(', ')})` }];
    const r = getCriterion(name).hparams.safeParse(o.criterionOptions ?? {});
    return r.success ? [] : r.error.issues.map((i): MethodIssue => ({ path: `criterionOptions.${i.path.join('.')}`.replace(/\.$/, ''), message: i.message }));
  },
});
