/** GraSP (Wang et al. 2020): prune at initialization by -w * Hg, highest removed, then train with the mask fixed. */
import { z } from 'zod';
import { oneShotMethod } from './one-shot.js';

export const grasp = oneShotMethod({
  name: 'grasp',
  description: 'GraSP at initialization: -w * Hg on a class-balanced batch (logits / T), highest removed, then training',
  criterion: 'grasp',
  from: 'forbidden',
  hparams: {
    samples: z.number().int().positive().default(100),
    temperature: z.number().positive().default(200),
    classBalanced: z.boolean().default(true),
  },
  criterionHp: (o) => ({ samples: o.samples, temperature: o.temperature, classBalanced: o.classBalanced }),
});
