/** Fully connected networks: mlp (784-512-256-10 by default) and LeNet-300-100. */
import { ArgumentError } from '../core/errors.js';
import { Flatten, Linear, ReLU, Sequential } from '../nn/layers.js';
import type { ModelSpec } from './types.js';

/** Flatten, then Linear+ReLU per hidden width, then a Linear head. Layers: `layers.1`, `layers.3`, ... */
export function buildMlp(inFeatures: number, widths: number[], numClasses: number): Sequential {
  if (!widths.every((w) => Number.isInteger(w) && w > 0)) throw new ArgumentError(`mlp: widths must be positive integers, got [${widths}]`);
  const seq = new Sequential(new Flatten());
  let prev = inFeatures;
  for (const w of widths) {
    seq.append(new Linear(prev, w));
    seq.append(new ReLU());
    prev = w;
  }
  seq.append(new Linear(prev, numClasses));
  return seq;
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

export const mlp: ModelSpec = {
  name: 'mlp',
  description: 'MLP with ReLU, hidden widths 512-256 by default (EVO-POP)',
  build: (c) => buildMlp(prod(c.inputShape), c.widths ?? [512, 256], c.numClasses),
};

export const lenet300100: ModelSpec = {
  name: 'lenet_300_100',
  description: 'LeNet-300-100 (LeCun et al. 1998): 784-300-100-10, 266,610 parameters on MNIST',
  build: (c) => buildMlp(prod(c.inputShape), [300, 100], c.numClasses),
};
