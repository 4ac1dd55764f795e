/** Helpers for the pruning tests: tensors from fixture records, small nets, MNIST subsets. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import type { Module } from '../../src/nn/module.js';
import { tensor, type Tensor } from '../../src/tensor/index.js';

export interface Rec { dtype: 'float32' | 'int64' | 'bool'; shape: number[]; data: number[] }

export function fromRec(r: Rec): Tensor {
  return tensor(r.data, { dtype: r.dtype, shape: r.shape });
}

/** A Sequential from the fixture script's layer list (same child indices as PyTorch's). */
export function buildNet(layers: (string | number | boolean)[][]): Sequential {
  return new Sequential(...layers.map((l): Module => {
    switch (l[0]) {
      case 'conv': return new Conv2d(l[1] as number, l[2] as number, l[3] as number, { bias: l[4] as boolean });
      case 'linear': return new Linear(l[1] as number, l[2] as number);
      case 'bn2d': return new BatchNorm2d(l[1] as number);
      case 'relu': return new ReLU();
      case 'flatten': return new Flatten();
      default: throw new Error(`unknown layer ${String(l[0])}`);
    }
  }));
}

/** Largest |a - b| over |b|'s largest value (a scale-free error for score maps). */
export function relErr(a: Tensor, b: number[]): number {
  const x = a.dataSync();
  let maxB = 0, maxD = 0;
  b.forEach((v, i) => { maxB = Math.max(maxB, Math.abs(v)); maxD = Math.max(maxD, Math.abs(x[i] - v)); });
  return maxB === 0 ? maxD : maxD / maxB;
}

export const DATA = process.env.TOPIARY_DATA ?? '/work/shared/datasets';
export const hasMnist = existsSync(join(DATA, 'mnist'));
export const NO_MNIST = hasMnist ? false : `MNIST not found under ${DATA} (set TOPIARY_DATA)`;

/** A short MNIST training config: LeNet-300-100 on a 5000-example subset (seconds on one core). */
export function quickTrain(over: Record<string, unknown> = {}) {
  return { model: 'lenet_300_100', dataset: 'mnist' as const, epochs: 3, batchSize: 64, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, schedule: 'constant', subset: 5000, valFraction: 0.1, threads: 1, ...over };
}
