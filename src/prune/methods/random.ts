/** Random pruning: a uniformly random mask at initialization, or of a trained model (--from), with optional training. */
import { oneShotMethod } from './one-shot.js';

export const random = oneShotMethod({
  name: 'random',
  description: 'random mask at initialization (or of a --from model), then training',
  criterion: 'random',
  from: 'optional',
  optionalFinetune: true,
});
