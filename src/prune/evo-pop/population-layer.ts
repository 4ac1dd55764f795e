/**
 * Population-scaled layers (EVO-POP): each unit of a Linear (a neuron) or a Conv2d (a filter) is a
 * population with a mass m_i >= 0, and the layer outputs h = m * post(unit(x)), post being the
 * channel-wise layers that follow the unit (activation, BatchNorm). Masses are a buffer, not a
 * parameter: the optimizer never sees them, the selection dynamics move them, and they travel with
 * the model's state dict (checkpoints, model.safetensors).
 */
import { ConfigError } from '../../core/errors.js';
import { BatchNorm, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, AvgPool2d, ReLU, Sequential, Sigmoid, Tanh } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { noGrad } from '../../tensor/autograd.js';
import { ones } from '../../tensor/creation.js';
import type { Tensor } from '../../tensor/tensor.js';

/** What a training forward pass records for the fitness functions. */
export type Probe = 'grad' | 'activation' | null;

export class PopulationLayer extends Module {
  readonly unit: Linear | Conv2d;
  readonly post: Module[];
  /** Set by the EVO-POP callback before a training forward pass; ignored in eval mode. */
  probe: Probe = null;
  /**
   * 'grad' probe: the masses repeated per example, a leaf that requires grad ([B, n] or [B, C, 1, 1]),
   * so that after backward its grad holds dL/dm per example (summed over positions for convs).
   * It lives in the training step's scope; the callback reads it before the scope ends.
   */
  lastLeaf: Tensor | null = null;
  /** 'activation' probe: mean |post(unit(x))| per unit over the batch (and positions), [n]. */
  lastActMean: Tensor | null = null;

  constructor(unit: Linear | Conv2d, post: Module[] = []) {
    super();
    this.unit = this.registerModule('unit', unit);
    this.post = post.map((m, i) => this.registerModule(String(i), m));
    this.registerBuffer('mass', ones([this.size]));
  }

  get kind(): 'linear' | 'conv' { return this.unit instanceof Linear ? 'linear' : 'conv'; }
  /** Number of populations (neurons or filters). */
  get size(): number { return this.unit instanceof Linear ? this.unit.outFeatures : this.unit.outChannels; }
  get mass(): Tensor { return this._buffers.get('mass')!; }

  forward(x: Tensor): Tensor {
    let a = this.unit.call(x);
    for (const m of this.post) a = m.call(a);
    const n = this.size;
    const bshape = this.kind === 'linear' ? [1, n] : [1, n, 1, 1];
    if (this.training && this.probe === 'grad') {
      const rep = this.kind === 'linear' ? [a.shape[0], 1] : [a.shape[0], 1, 1, 1];
      const leaf = noGrad(() => this.mass.view(bshape).repeat(rep)).requiresGrad_(true); // [B, n] or [B, n, 1, 1]
      this.lastLeaf = leaf;
      return a.mul(leaf);
    }
    if (this.training && this.probe === 'activation') {
      this.lastActMean = noGrad(() => a.abs().mean(this.kind === 'linear' ? [0] : [0, 2, 3])); // [n]
    }
    return a.mul(this.mass.view(bshape));
  }
}

/** The population layers of a model, with their module paths, in forward order. */
export function populationLayers(model: Module): [string, PopulationLayer][] {
  return model.namedModules().filter((e): e is [string, PopulationLayer] => e[1] instanceof PopulationLayer);
}

/** Layers that act per channel and may follow a unit inside its population layer. */
const isPost = (m: Module) => m instanceof ReLU || m instanceof Tanh || m instanceof Sigmoid || m instanceof BatchNorm;
/**
 * Layers through which a non-negative per-channel scale passes unchanged (f(m * x) = m * f(x) for
 * m >= 0, channel by channel), so masses can be folded into the next weighted layer.
 */
export const passesScale = (m: Module): boolean =>
  m instanceof ReLU || m instanceof MaxPool2d || m instanceof AvgPool2d || m instanceof Flatten || m instanceof Identity || m instanceof Dropout;

/**
 * Wrap every Linear and Conv2d of a Sequential model except the last (the output layer) in a
 * PopulationLayer, taking along the activation / BatchNorm that follows it. A unit is scaled only
 * when the layers between it and the next weighted layer let its masses fold into that layer
 * (what physical removal needs). The unit modules move into the new model (same tensors).
 * `units` leaves Linear (`linear: false`) or Conv2d (`conv: false`) layers plain.
 */
export function toPopulationModel(model: Module, modelName = 'model', units: { linear?: boolean; conv?: boolean } = {}): Sequential {
  const bad = (why: string) => new ConfigError(`model: '${modelName}' ${why}`, [{ path: 'model', message: why }]);
  if (!(model instanceof Sequential)) throw bad('is not a plain Sequential network, so it has no population-scalable layer (EVO-POP supports mlp, lenet_300_100, lenet5, vgg_like, vgg19)');
  const kids = model.children();
  const weighted = kids.map((m, i) => (m instanceof Linear || m instanceof Conv2d ? i : -1)).filter((i) => i >= 0);
  const out: Module[] = [];
  let scaled = 0;
  for (let i = 0; i < kids.length; i++) {
    const m = kids[i];
    const isUnit = ((m instanceof Linear && units.linear !== false) || (m instanceof Conv2d && units.conv !== false)) && i !== weighted[weighted.length - 1];
    if (!isUnit) { out.push(m); continue; }
    let j = i + 1;
    const post: Module[] = [];
    // Tanh and Sigmoid are not positively homogeneous, but inside the layer they act before the mass.
    while (j < kids.length && isPost(kids[j])) post.push(kids[j++]);
    let k = j;
    while (k < kids.length && passesScale(kids[k])) k++;
    const foldable = k < kids.length && (kids[k] instanceof Linear || kids[k] instanceof Conv2d);
    if (!foldable) { out.push(m, ...post); i = j - 1; continue; }
    out.push(new PopulationLayer(m as Linear | Conv2d, post));
    scaled++;
    i = j - 1;
  }
  if (scaled === 0) throw bad('has no population-scalable layer (it needs a hidden Linear or Conv2d before another weighted layer)');
  return new Sequential(...out);
}
