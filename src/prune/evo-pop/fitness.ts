/**
 * Fitness of each population from local learning signals, one registry value per definition.
 * L is the training loss of the step (the batch mean), l_b the loss of example b, so dL/dh = dl_b/dh / B.
 * The 'grad' probe gives g[b, i] = dL/dm_i restricted to example b (summed over positions for convs):
 *   gradient:   f_i = -dL/dm_i = -sum_b g[b, i]                       (first-order gain of growing i)
 *   taylor:     f_i = mean_b |m_i a_bi dl_b/dh_bi| = m_i sum_b |g[b, i]| (first-order loss change if i vanished)
 *   activation: f_i = mean_b |m_i a_bi| = m_i * mean_b |a_bi|           (mean over positions too for convs)
 */
import { ArgumentError, RegistryError } from '../../core/errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Probe } from './population-layer.js';

/** What a fitness reads of a population layer (PopulationLayer, HeadPopulation, NeuronPopulation). */
export interface MeasuredLayer { readonly mass: Tensor; lastLeaf: Tensor | null; lastActMean: Tensor | null }

export interface Fitness {
  name: string;
  description: string;
  /** What the forward pass must record. */
  probe: Exclude<Probe, null>;
  /** Raw fitness of each population of a layer after backward, [n] (joins the current scope). */
  measure(layer: MeasuredLayer): Tensor;
}

function leafGrad(layer: MeasuredLayer, fitness: string): Tensor {
  const g = layer.lastLeaf?.grad ?? null;
  if (!g) throw new ArgumentError(`fitness '${fitness}': no gradient on the masses; the layer needs a training forward with probe 'grad' and a backward pass first`);
  return g.flatten(1); // [B, n] (convs: [B, C, 1, 1] -> [B, C])
}

export const gradient: Fitness = {
  name: 'gradient',
  description: 'f_i = -dL/dm_i, the first-order gain from growing population i',
  probe: 'grad',
  measure: (layer) => leafGrad(layer, 'gradient').sum(0).neg(),
};

export const taylor: Fitness = {
  name: 'taylor',
  description: 'f_i = mean over the batch of |m_i a_i dl/dh_i|, the first-order loss change if population i vanished',
  probe: 'grad',
  measure: (layer) => leafGrad(layer, 'taylor').abs().sum(0).mul(layer.mass),
};

export const activation: Fitness = {
  name: 'activation',
  description: 'f_i = mean over the batch of |m_i a_i|',
  probe: 'activation',
  measure: (layer) => {
    if (!layer.lastActMean) throw new ArgumentError(`fitness 'activation': no activations recorded; the layer needs a training forward with probe 'activation' first`);
    return layer.lastActMean.mul(layer.mass);
  },
};

export const FITNESS: Record<string, Fitness> = { gradient, taylor, activation };
export const FITNESS_NAMES = Object.keys(FITNESS) as ['gradient', 'taylor', 'activation'];

export function getFitness(name: string): Fitness {
  const f = FITNESS[name];
  if (!f) throw new RegistryError(`unknown fitness '${name}' (known: ${FITNESS_NAMES.join(', ')})`);
  return f;
}
