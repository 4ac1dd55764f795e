/**
 * Parameter and FLOP counts, dense and nonzero. FLOPs are counted as multiply-accumulates of the
 * convolutions and linear layers for one input (the convention of the pruning literature: ResNet-56
 * is "125 M FLOPs"). Nonzero FLOPs scale each layer's count by its weight density.
 */
import { Conv2d, Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { zeros } from '../tensor/creation.js';
import { tidy } from '../tensor/scope.js';

export interface LayerStats { name: string; kind: 'linear' | 'conv'; params: number; nonzero: number; macs: number }
export interface ModelStats { params: number; nonzeroParams: number; flops: number; nonzeroFlops: number; layers: LayerStats[] }

export function countNonzero(t: { countNonzero(): { item(): number; dispose(): void } }): number {
  const c = t.countNonzero();
  const v = c.item();
  c.dispose();
  return v;
}

export function modelStats(model: Module, inputShape: number[]): ModelStats {
  const layers: LayerStats[] = [];
  const macs = new Map<Module, number>();
  const removers = model.namedModules().filter(([, m]) => m instanceof Linear || m instanceof Conv2d).map(([, m]) =>
    m.registerForwardHook((mod, _x, y) => {
      const w = (mod as Linear | Conv2d).weight;
      const perOut = w.shape.slice(1).reduce((a, b) => a * b, 1); // in (/groups) * kh * kw
      const outs = y.shape.slice(1).reduce((a, b) => a * b, 1); // outputs per example
      macs.set(mod, (macs.get(mod) ?? 0) + perOut * outs);
    }));
  const wasTraining = model.training;
  model.eval();
  try {
    // The block returns nothing, so tidy frees the output too (returning it would leak one tensor per call).
    tidy(() => { noGrad(() => model.call(zeros([1, ...inputShape]))); });
  } finally {
    removers.forEach((r) => r());
    model.train(wasTraining);
  }
  let params = 0, nonzeroParams = 0, flops = 0, nonzeroFlops = 0;
  for (const [, p] of model.namedParameters()) {
    params += p.numel;
    nonzeroParams += countNonzero(p);
  }
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof Linear || m instanceof Conv2d)) continue;
    const w = m.weight;
    const nz = countNonzero(w);
    const mac = macs.get(m) ?? 0;
    layers.push({ name, kind: m instanceof Linear ? 'linear' : 'conv', params: w.numel, nonzero: nz, macs: mac });
    flops += mac;
    nonzeroFlops += w.numel ? (mac * nz) / w.numel : 0;
  }
  return { params, nonzeroParams, flops, nonzeroFlops: Math.round(nonzeroFlops), layers };
}
