/** One-shot magnitude pruning of a trained model (global or per layer), with optional fine-tuning. */
import { oneShotMethod } from './one-shot.js';

export const magnitude = oneShotMethod({
  name: 'magnitude',
  description: 'one-shot magnitude pruning of a trained model (--from), then fine-tuning',
  criterion: 'magnitude',
  from: 'required',
  optionalFinetune: true,
});
