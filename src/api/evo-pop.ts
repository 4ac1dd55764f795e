/**
 * EVO-POP from code: wrap a Sequential network's hidden units (or a vision transformer's attention
 * heads and MLP neurons) in populations with masses, train it with the selection dynamics as a
 * callback, then remove the lowest-mass populations physically. The pieces are the CLI's (prune/evo-pop/), so the same training gives the same
 * smaller model as `topiary evo`, tensor for tensor.
 */
import { z } from 'zod';
import { ArgumentError, ConfigError } from '../core/errors.js';
import type { Module } from '../nn/module.js';
import type { Sequential } from '../nn/layers.js';
import type { StepContext } from '../train/loop.js';
import { EvoConfig } from '../prune/evo-pop/config.js';
import { scorePopulations, selectKeep } from '../prune/evo-pop/criteria.js';
import { DYNAMICS } from '../prune/evo-pop/dynamics.js';
import { FITNESS } from '../prune/evo-pop/fitness.js';
import { physicalPrune, type Architecture } from '../prune/evo-pop/physical.js';
import { allPopulations, isTransformerPopulation, physicalPruneTransformer, toTransformerPopulationModel, type VitArchitecture } from '../prune/evo-pop/heads.js';
import { toPopulationModel } from '../prune/evo-pop/population-layer.js';
import { VisionTransformer } from '../models/vit.js';
import { EvoPop, type MassTrajectory } from '../prune/evo-pop/selection.js';
import type { Callback } from '../train/loop.js';

/** What a population is: a Linear layer's neuron, a Conv2d layer's filter, or a transformer's attention head (its MLP neurons are 'neurons'). */
export type Units = 'neurons' | 'filters' | 'heads';

/** The built-in and registered selection dynamics, by name (a live view of the registry). */
export const dynamics = DYNAMICS;
/** The built-in and registered fitness definitions, by name (a live view of the registry). */
export const fitness = FITNESS;

/**
 * The model with each hidden neuron (Linear) and/or filter (Conv2d) a population with a mass
 * (the output layer stays plain); for a VisionTransformer (vit_tiny), each attention head (its
 * output scaled by its mass before the output projection) and/or each block's MLP neuron. The unit
 * modules move into the returned model (same tensors). Default units: neurons and filters, or for a
 * transformer heads and neurons.
 * @example
 * const pop = populationModel(createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10 }), { units: 'neurons' });
 * const vit = populationModel(createModel('vit_tiny', { inputShape: [1, 28, 28], numClasses: 10 }), { units: 'heads' });
 */
export function populationModel(model: VisionTransformer, o?: { units?: Units | readonly Units[] }): VisionTransformer;
/** A Sequential network's neurons and / or filters as populations (see the first signature). */
export function populationModel(model: Module, o?: { units?: Units | readonly Units[] }): Sequential;
/** The implementation of both signatures. */
export function populationModel(model: Module, o: { units?: Units | readonly Units[] } = {}): Sequential | VisionTransformer {
  const vit = model instanceof VisionTransformer;
  const units = o.units === undefined ? (vit ? ['heads', 'neurons'] : ['neurons', 'filters']) : Array.isArray(o.units) ? o.units : [o.units];
  for (const u of units) {
    if (u !== 'neurons' && u !== 'filters' && u !== 'heads') throw new ConfigError(`units: unknown unit '${String(u)}' (known: neurons, filters, heads)`, [{ path: 'units', message: 'unknown unit' }]);
  }
  if (vit) {
    if (units.includes('filters')) throw new ConfigError("units: a vision transformer has no filters to scale (its units are 'heads' and 'neurons')", [{ path: 'units', message: 'filters on a transformer' }]);
    return toTransformerPopulationModel(model, { heads: units.includes('heads'), neurons: units.includes('neurons') });
  }
  if (units.includes('heads')) throw new ConfigError("units: 'heads' needs a transformer with attention heads (a VisionTransformer such as vit_tiny); this model has none", [{ path: 'units', message: 'heads on a model without attention' }]);
  return toPopulationModel(model, 'model', { linear: units.includes('neurons'), conv: units.includes('filters') });
}

const SelectionOptionsSchema = EvoConfig.pick({ dynamics: true, fitness: true, eta: true, beta: true, every: true, epsilon: true, mu: true, cost: true, mMax: true, recordEvery: true });
/** Options of `selection`: the dynamics and fitness by name, and their parameters (EvoConfig's, with its defaults). */
export type SelectionOptions = Partial<z.input<typeof SelectionOptionsSchema>>;

/** A Callback for `train()` that moves the masses; also holds the mass trajectory and extinctions. */
export interface SelectionCallback extends Callback {
  readonly model: Module;
  /** Masses over training (every `recordEvery` steps). */
  readonly trajectory: MassTrajectory;
  /** Extinct populations (mass exactly 0) per layer now. */
  extinct(): Record<string, number>;
}

/**
 * The selection dynamics as a training callback: after every `every`-th optimizer step, each
 * population's fitness (smoothed, normalized within its layer) moves its mass; masses below
 * `epsilon` go extinct. Options and defaults are `topiary evo`'s (EvoConfig).
 * @example
 * const sel = selection(pop, { dynamics: 'replicator', fitness: 'gradient', eta: 0.01 });
 * train({ model: pop, optimizer, epochs: 2, trainBatches: (e) => loader.epoch(e), callbacks: [sel] });
 */
export function selection(model: Module, o: SelectionOptions = {}): SelectionCallback {
  const r = SelectionOptionsSchema.safeParse(o);
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
    throw new ConfigError(`selection: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  if (r.data.dynamics === 'none') throw new ConfigError("selection: dynamics: 'none' trains without selection; leave the callback out instead", [{ path: 'dynamics', message: 'none' }]);
  if (allPopulations(model).length === 0) throw new ArgumentError('selection: model: has no population layer (make it with populationModel)');
  const evo = new EvoPop(model, r.data);
  const cb = evo.callback();
  const own = (ctx: StepContext) => { if (ctx.model !== model) throw new ArgumentError('selection: model: this callback was made for another model'); };
  return {
    ...cb,
    model,
    get trajectory() { return evo.trajectory; },
    extinct: () => evo.extinctCounts(),
    onEpochStart: (ctx) => { own(ctx); cb.onEpochStart?.(ctx); },
    beforeForward: (ctx) => { own(ctx); cb.beforeForward?.(ctx); },
    afterStep: (ctx) => { own(ctx); cb.afterStep?.(ctx); },
  };
}

/** What `removeByMass` returns. */
export interface Removal {
  /** The physically smaller plain model (a new model; the population model is unchanged): a Sequential, or a VisionTransformer whose blocks keep their own head counts and MLP widths. */
  model: Sequential | VisionTransformer;
  /** How to rebuild it: the layer list (an mlp's is createModel('mlp', { widths })), or the transformer's config ('topiary-vit/1'). */
  architecture: Architecture | VitArchitecture;
  /** Populations removed, of `total`. */
  removed: number;
  total: number;
}

/**
 * Remove the `fraction` of all populations with the lowest masses (each layer keeps at least one),
 * folding the kept masses into the next layer: the result computes what the masked model does.
 * @example
 * const { model: small, removed, total } = removeByMass(pop, 0.4);
 */
export function removeByMass(model: Module, fraction: number): Removal {
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction < 1)) throw new ArgumentError(`removeByMass: fraction: must be a number in [0, 1), got ${String(fraction)}`);
  if (allPopulations(model).length === 0) throw new ArgumentError('removeByMass: model: has no population layer (make it with populationModel)');
  const scores = scorePopulations(model, 'mass');
  const total = [...scores.values()].reduce((s, a) => s + a.length, 0);
  const keepIdx = selectKeep(scores, fraction);
  const { model: small, architecture } = isTransformerPopulation(model) ? physicalPruneTransformer(model, keepIdx) : physicalPrune(model, keepIdx);
  return { model: small, architecture, total, removed: total - architecture.kept.reduce((a, b) => a + b, 0) };
}
