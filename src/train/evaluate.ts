/** Evaluation: accuracy and mean loss over batches, in eval mode, without gradients. */
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { crossEntropy } from '../tensor/nn-ops.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

export interface BatchLike { x: Tensor; y: Tensor }
export interface EvalResult { accuracy: number; loss: number; n: number }

/** Accuracy and mean cross-entropy; disposes the batches it consumes. The model's mode is restored. */
export function evaluate(model: Module, batches: Iterable<BatchLike>): EvalResult {
  const was = model.training;
  model.eval();
  let correct = 0, lossSum = 0, n = 0;
  try {
    for (const b of batches) {
      tidy(() => noGrad(() => {
        const logits = model.call(b.x);
        const bs = b.y.shape[0];
        lossSum += crossEntropy(logits, b.y, { reduction: 'sum' }).item();
        correct += logits.argmax(1).eq(b.y).sum().item();
        n += bs;
      }));
      b.x.dispose();
      b.y.dispose();
    }
  } finally {
    model.train(was);
  }
  return { accuracy: n ? correct / n : 0, loss: n ? lossSum / n : 0, n };
}
