/**
 * Fine-tuning one solution of the front: the dense weights times its mask, then a few epochs of SGD
 * with the mask held fixed by MaskSet's callback (weights masked before the forward pass and after
 * each step, gradients after backward), then validation and, once, the test set. Checkpointed per
 * epoch, so an interrupted fine-tuning resumes.
 */
import { join } from 'node:path';
import type { Module } from '../../nn/module.js';
import { SGD } from '../../optim/optimizer.js';
import { makeSchedule } from '../../optim/schedule.js';
import { noGrad } from '../../tensor/autograd.js';
import { tensor } from '../../tensor/creation.js';
import { dispose, keep, tidy } from '../../tensor/scope.js';
import { evaluate, type BatchLike } from '../../train/evaluate.js';
import { train } from '../../train/loop.js';
import { MaskSet } from '../masks.js';
import type { MaskedEvaluator } from './evaluator.js';
import type { LayerMasks } from './layout.js';

export interface FineTuneOptions {
  epochs: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  trainBatches: (epoch: number) => Iterable<BatchLike>;
  batchesPerEpoch?: number;
  valBatches: () => Iterable<BatchLike>;
  testBatches: () => Iterable<BatchLike>;
  /** Checkpoint folder of this fine-tuning. */
  dir: string;
  onEpoch?: (line: string) => void;
  /** Called with the fine-tuned (masked) network still in the model, before the dense weights return. */
  beforeRestore?: () => void;
}

export interface FineTuneResult {
  valAccuracy: number;
  testAccuracy: number;
  keptWeights: number;
  epochs: number;
  seconds: number;
}

/** The model's whole state (weights, biases, BatchNorm) is as before afterwards. */
export function fineTune(model: Module, evaluator: MaskedEvaluator, masks: LayerMasks, o: FineTuneOptions): FineTuneResult {
  const t0 = performance.now();
  // Fine-tuning moves biases and BatchNorm's affine parameters too, which the evaluator does not keep.
  const before = tidy(() => noGrad(() => Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, keep(t.detach().clone())]))));
  evaluator.apply(masks);
  const layout = evaluator.layout;
  // Structured granularity: the removed channels' biases and BatchNorm entries stay zero too (so the model still shrinks).
  const comps = evaluator.companions(masks);
  const names = new Set(layout.names);
  const ms = new MaskSet(model, (n) => names.has(n) || comps.has(n));
  let opt: SGD | null = null;
  try {
    layout.names.forEach((n, l) => ms.set(n, tensor(masks[l], { shape: layout.params[l].shape, dtype: 'bool', device: layout.params[l].device })));
    for (const [n, m] of comps) { const p = ms.params.get(n)!; ms.set(n, tensor(m, { shape: p.shape, dtype: 'bool', device: p.device })); }
    if (o.epochs > 0) {
      opt = new SGD(model.namedParameters(), { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay });
      train({
        model, optimizer: opt, epochs: o.epochs, schedule: makeSchedule({ name: 'cosine', epochs: o.epochs }),
        trainBatches: o.trainBatches, batchesPerEpoch: o.batchesPerEpoch, callbacks: [ms.callback()],
        checkpointDir: join(o.dir, 'checkpoints'),
        onEpoch: (r) => o.onEpoch?.(`  fine-tune epoch ${r.epoch + 1}/${o.epochs}  loss ${r.trainLoss.toFixed(4)}  train ${(100 * r.trainAccuracy).toFixed(2)}%`),
      });
    }
    const kept = ms.counts().layers.filter((c) => names.has(c.name)).reduce((s, c) => s + c.kept, 0);
    const val = evaluate(model, o.valBatches());
    const test = evaluate(model, o.testBatches());
    o.beforeRestore?.();
    return { valAccuracy: val.accuracy, testAccuracy: test.accuracy, keptWeights: kept, epochs: o.epochs, seconds: (performance.now() - t0) / 1000 };
  } finally {
    opt?.dispose();
    ms.dispose();
    model.loadStateDict(before);
    dispose(before);
    evaluator.restore();
  }
}
