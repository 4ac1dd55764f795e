/**
 * PMP's overhead: the per-epoch mask work (scoring, exact global selection, intersecting the
 * masks) plus the per-step masking (weights before forward, gradients after backward, weights after
 * the step) as a fraction of a dense training epoch. Target: under 5%.
 *
 *   node --import tsx bench/prune-overhead.ts [--data-dir DIR] [--reps 3]
 *
 * LeNet-300-100 on MNIST: real epochs with the 98% recipe (batch 128, SGD momentum, augmentation),
 * one dense and one with PMP's callbacks, the time inside the callbacks measured directly (a
 * shared machine makes the difference of two epoch times too noisy; it is printed too).
 * ResNet-20 on CIFAR-10-shaped synthetic batches: a few timed steps stand for an epoch of 352
 * steps (45,000 images / 128), the per-epoch mask work timed once per repetition.
 */
import { setNumThreads } from '../src/core/runtime.js';
import { loadDataset, DataLoader, randomAffine, splitTrainVal } from '../src/data/index.js';
import { createModel } from '../src/models/registry.js';
import type { Module } from '../src/nn/module.js';
import { SGD } from '../src/optim/optimizer.js';
import { pmpCallback } from '../src/prune/methods/pmp.js';
import { PruneTarget } from '../src/prune/target.js';
import { manualSeed } from '../src/core/runtime.js';
import { randint, randn } from '../src/tensor/index.js';
import { train, type Callback } from '../src/train/loop.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const dataDir = arg('data-dir', process.env.TOPIARY_DATA ?? '/work/shared/datasets');
const reps = Number(arg('reps', '3'));
setNumThreads(1);

/** Wrap callbacks so the time spent inside them is summed, per hook kind. */
function timed(cbs: Callback[], acc: { epoch: number; step: number }): Callback[] {
  const wrap = <K extends keyof Callback>(c: Callback, k: K, bucket: 'epoch' | 'step') => {
    const f = c[k] as ((...a: unknown[]) => void) | undefined;
    if (!f) return undefined;
    return (...a: unknown[]) => { const t = performance.now(); f(...a); acc[bucket] += performance.now() - t; };
  };
  return cbs.map((c) => ({
    ...c,
    onEpochStart: wrap(c, 'onEpochStart', 'epoch'),
    beforeForward: wrap(c, 'beforeForward', 'step'),
    afterBackward: wrap(c, 'afterBackward', 'step'),
    afterStep: wrap(c, 'afterStep', 'step'),
  }) as Callback);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function pmpCallbacks(model: Module, epoch: number, acc: { epoch: number; step: number }): Callback[] {
  const target = new PruneTarget(model);
  // Epoch 40 of the 98% recipe (P = 80): half the weights already gone, the mask still shrinking.
  const pmp = pmpCallback(target, { final: 0.98, phase: 80, scope: 'global' });
  pmp.onEpochStart!({ model, epoch: epoch - 1 } as never);
  return timed([target.callback(), pmp], acc);
}

async function lenet(): Promise<Record<string, number>> {
  const tr = await loadDataset('mnist', { split: 'train', dataDir });
  const { train: tv } = splitTrainVal(tr, 0.11, 0);
  const loader = new DataLoader(tv, { batchSize: 128, shuffle: true, seed: 0, augment: [randomAffine({ degrees: 12, translate: 0.12 })] });
  const dense: number[] = [], pmp: number[] = [], inEpoch: number[] = [], inStep: number[] = [];
  for (let r = 0; r < reps; r++) {
    for (const kind of ['dense', 'pmp'] as const) {
      manualSeed(r);
      const model = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10, init: 'kaiming_normal_fan_out' });
      const opt = new SGD(model.namedParameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
      const acc = { epoch: 0, step: 0 };
      const callbacks = kind === 'pmp' ? pmpCallbacks(model, 40, acc) : [];
      acc.epoch = acc.step = 0;
      const t0 = performance.now();
      train({ model, optimizer: opt, epochs: 1, trainBatches: (e) => loader.epoch(e + r), callbacks });
      const ms = performance.now() - t0;
      if (kind === 'dense') dense.push(ms);
      else { pmp.push(ms); inEpoch.push(acc.epoch); inStep.push(acc.step); }
      opt.dispose();
      model.dispose();
    }
  }
  tr.dispose();
  const d = median(dense);
  // Per repetition: callback time in the PMP epoch over the dense epoch of the same repetition.
  const perRep = dense.map((x, i) => (inEpoch[i] + inStep[i]) / x);
  return { denseEpochMs: d, pmpEpochMs: median(pmp), maskEpochMs: median(inEpoch), maskStepsMs: median(inStep), steps: loader.length,
    overhead: median(perRep), overheadMin: Math.min(...perRep), overheadMax: Math.max(...perRep), wallDiff: (median(pmp) - d) / d };
}

function resnet20(): Record<string, number> {
  const steps = 5, stepsPerEpoch = 352;
  const stepMs: number[] = [], maskStepMs: number[] = [], epochWork: number[] = [];
  for (let r = 0; r < reps; r++) {
    manualSeed(r);
    const model = createModel('resnet20', { inputShape: [3, 32, 32], numClasses: 10 });
    const opt = new SGD(model.namedParameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
    const acc = { epoch: 0, step: 0 };
    const callbacks = pmpCallbacks(model, 40, acc);
    acc.epoch = acc.step = 0;
    const batches = () => Array.from({ length: steps }, () => ({ x: randn([128, 3, 32, 32]), y: randint(0, 10, [128]) }));
    train({ model, optimizer: opt, epochs: 1, trainBatches: batches, callbacks: [] }); // warm-up
    const t0 = performance.now();
    train({ model, optimizer: opt, epochs: 1, trainBatches: batches, callbacks });
    stepMs.push((performance.now() - t0 - acc.epoch - acc.step) / steps);
    maskStepMs.push(acc.step / steps);
    epochWork.push(acc.epoch);
    opt.dispose();
    model.dispose();
  }
  const epochMs = median(stepMs) * stepsPerEpoch;
  return { stepMs: median(stepMs), maskStepMs: median(maskStepMs), maskEpochMs: median(epochWork), estDenseEpochMs: epochMs,
    overhead: (median(epochWork) + median(maskStepMs) * stepsPerEpoch) / epochMs };
}

const l = await lenet();
const r = resnet20();
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
console.log(JSON.stringify({ lenet: l, resnet20: r }, null, 2));
console.log(`
| Model | Dense epoch | PMP mask work per epoch | Masking per step × steps | Overhead (target < 5%) |
| --- | --- | --- | --- | --- |
| LeNet-300-100, MNIST (${l.steps} steps of 128) | ${(l.denseEpochMs / 1000).toFixed(2)} s | ${l.maskEpochMs.toFixed(1)} ms | ${l.maskStepsMs.toFixed(1)} ms | ${pct(l.overhead)} (${reps} runs: ${pct(l.overheadMin)} to ${pct(l.overheadMax)}; epoch-time difference ${pct(l.wallDiff)}) |
| ResNet-20, CIFAR-10 shapes (352 steps of 128, from ${5} timed steps) | ${(r.estDenseEpochMs / 1000).toFixed(1)} s (est.) | ${r.maskEpochMs.toFixed(1)} ms | ${(r.maskStepMs * 352).toFixed(1)} ms | ${pct(r.overhead)} |`);
