/** SNIP (Lee et al. 2019): prune at initialization by |g * w| on one batch, then train with the mask fixed. */
import { z } from 'zod';
import { oneShotMethod } from './one-shot.js';

export const snip = oneShotMethod({
  name: 'snip',
  description: 'SNIP at initialization: |g * w| on one batch (100 examples), then training with the mask fixed',
  criterion: 'snip',
  from: 'forbidden',
  hparams: { samples: z.number().int().positive().default(100) },
  criterionHp: (o) => ({ samples: o.samples }),
});
