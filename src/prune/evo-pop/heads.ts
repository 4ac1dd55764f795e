/**
 * EVO-POP on transformers: every attention head and every MLP neuron of every block is a population.
 *
 * - HeadPopulation wraps a block's MultiheadAttention: head h's output o_h [B, L, dh] (its attention
 *   weights times its values) is scaled by m_h before the heads are merged and projected, so the
 *   block adds W_o [m_1 o_1; ...; m_H o_H] + b_o.
 * - NeuronPopulation wraps a block's linear1 and activation: neuron i's activation a_i is scaled by
 *   m_i before linear2 (exactly the PopulationLayer of an MLP, over tokens).
 *
 * Both record what the fitness functions need the way PopulationLayer does (the 'grad' probe: the
 * masses repeated per example as a leaf, [B, H, 1, 1] or [B, 1, n], whose grad is dL/dm per example
 * summed over tokens; the 'activation' probe: mean |a| per population over batch and tokens), so the
 * dynamics, fitness signals, extinction and controls run unchanged. The l2 control of a head is the
 * L2 norm of its rows of q, k and v and its columns of the output projection.
 *
 * Physical removal (physicalPruneTransformer): a removed head's rows of q, k and v (in_proj_weight
 * and in_proj_bias) and its columns of out_proj leave the model, a removed neuron's row of linear1
 * and column of linear2 too, and the kept masses are folded into those columns:
 * W_o diag(m) o = (W_o diag(m)) o. The result is a plain VisionTransformer whose blocks may have
 * different head counts and MLP widths, described by a 'topiary-vit/1' architecture JSON.
 */
import { ArgumentError, ConfigError, SerializationError } from '../../core/errors.js';
import { VisionTransformer, type VitConfig } from '../../models/vit.js';
import { Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { MultiheadAttention } from '../../nn/transformer.js';
import { noGrad } from '../../tensor/autograd.js';
import { ones, tensor } from '../../tensor/creation.js';
import { tidy } from '../../tensor/scope.js';
import type { Tensor } from '../../tensor/tensor.js';
import { POPULATION_KINDS, type PopulationKind } from './config.js';
import { loadWithArchitecture, savePruned } from './physical.js';
import { PopulationLayer, toPopulationModel, type Probe } from './population-layer.js';

/** Populations over tokens: heads of an attention layer, or neurons of a block's MLP. */
export abstract class TokenPopulation extends Module {
  abstract readonly kind: 'heads' | 'neurons' | 'channels';
  probe: Probe = null;
  /** 'grad' probe: the masses per example as a leaf ([B, H, 1, 1] heads, [B, 1, n] neurons). */
  lastLeaf: Tensor | null = null;
  /** 'activation' probe: mean |a| per population over the batch and tokens, [n]. */
  lastActMean: Tensor | null = null;
  /** Calibration (meanActivations): called in any mode with mean |m a| per population [n] and the batch size. */
  onActivation: ((meanAbs: Tensor, batch: number) => void) | null = null;

  protected initMass(n: number): void { this.registerBuffer('mass', ones([n])); }
  get mass(): Tensor { return this._buffers.get('mass')!; }
  get size(): number { return this.mass.shape[0]; }
  /** The l2 control's score of each population, [n]. */
  abstract incomingNorms(): Tensor;

  /** Scale a [B, ..., n, ...] activation by the masses along `dim`, recording for the probes. */
  protected scale(a: Tensor, dim: number): Tensor {
    const n = this.size, nd = a.ndim;
    const bshape = Array.from({ length: nd }, (_, i) => (i === dim ? n : 1));
    const reduce = Array.from({ length: nd }, (_, i) => i).filter((i) => i !== dim);
    if (this.training && this.probe === 'grad') {
      const rep = bshape.map((v, i) => (i === 0 ? a.shape[0] : 1));
      const leaf = noGrad(() => this.mass.view(bshape).repeat(rep)).requiresGrad_(true);
      this.lastLeaf = leaf;
      return a.mul(leaf);
    }
    if (this.training && this.probe === 'activation') this.lastActMean = noGrad(() => a.abs().mean(reduce));
    const y = a.mul(this.mass.view(bshape));
    if (this.onActivation) this.onActivation(noGrad(() => y.abs().mean(reduce)), a.shape[0]);
    return y;
  }
}

export class HeadPopulation extends TokenPopulation {
  readonly kind = 'heads' as const;
  constructor(attn: MultiheadAttention) {
    super();
    this.registerModule('attn', attn);
    this.initMass(attn.numHeads);
    attn.headGate = (heads) => this.scale(heads, 1); // [B, H, L, dh]
  }
  get attn(): MultiheadAttention { return this._children.get('attn') as MultiheadAttention; }
  forward(x: Tensor): Tensor { return this.attn.call(x); }
  incomingNorms(): Tensor {
    const a = this.attn, H = a.numHeads, dh = a.headDim, D = a.embedDim;
    const qkv = a.inProjWeight.view(3, H, dh, D).square().sum([0, 2, 3]);
    const o = a.outProj.weight.view(D, H, dh).square().sum([0, 2]);
    return qkv.add(o).sqrt();
  }
}

export class NeuronPopulation extends TokenPopulation {
  readonly kind = 'neurons' as const;
  constructor(unit: Linear, activation: Module) {
    super();
    this.registerModule('unit', unit);
    this.registerModule('act', activation);
    this.initMass(unit.outFeatures);
  }
  get unit(): Linear { return this._children.get('unit') as Linear; }
  get activation(): Module { return this._children.get('act')!; }
  forward(x: Tensor): Tensor {
    const a = this.activation.call(this.unit.call(x));
    return this.scale(a, a.ndim - 1);
  }
  incomingNorms(): Tensor { return this.unit.weight.norm(2, 1); }
}

/** Any population layer EVO-POP acts on. */
export type AnyPopulation = PopulationLayer | TokenPopulation;

/** Every population layer of a model (neurons, filters, heads), with its path, in forward order. */
export function allPopulations(model: Module): [string, AnyPopulation][] {
  return model.namedModules().filter((e): e is [string, AnyPopulation] => e[1] instanceof PopulationLayer || e[1] instanceof TokenPopulation);
}

export interface TransformerUnits { heads?: boolean; neurons?: boolean }

/**
 * Make every block of a VisionTransformer population-scaled, in place (the same tensors): heads
 * (`blocks.i.self_attn`, a HeadPopulation) and MLP neurons (`blocks.i.linear1`, a NeuronPopulation).
 */
export function toTransformerPopulationModel(model: VisionTransformer, units: TransformerUnits = {}): VisionTransformer {
  const heads = units.heads ?? true, neurons = units.neurons ?? true;
  if (!heads && !neurons) throw new ConfigError('populations: choose heads, neurons or both', [{ path: 'populations', message: 'empty' }]);
  for (const b of model.blocks) {
    if (b.selfAttn instanceof TokenPopulation || b.isHiddenWrapped) throw new ArgumentError('toTransformerPopulationModel: the model is population-scaled already');
    if (heads) b.wrapAttention((a) => new HeadPopulation(a as MultiheadAttention));
    if (neurons) b.wrapHidden((lin, act) => new NeuronPopulation(lin, act));
  }
  return model;
}

export { POPULATION_KINDS, type PopulationKind };

/**
 * The population model EVO-POP trains, for any supported model: a Sequential network's neurons and
 * filters (toPopulationModel), a ViT's heads and MLP neurons. `kinds` restricts which; asking for
 * heads on a model without attention is refused naming 'populations'.
 */
export function populationModelFor(model: Module, modelName = 'model', kinds?: readonly string[]): Module {
  const want = new Set(kinds ?? []);
  for (const k of want) if (!(POPULATION_KINDS as readonly string[]).includes(k)) throw new ConfigError(`populations: unknown kind '${k}' (known: ${POPULATION_KINDS.join(', ')})`, [{ path: 'populations', message: `unknown '${k}'` }]);
  if (model instanceof VisionTransformer) {
    if (want.has('filters')) throw new ConfigError(`populations: '${modelName}' has no filters to scale (it has heads and neurons)`, [{ path: 'populations', message: 'filters on a transformer' }]);
    return toTransformerPopulationModel(model, kinds ? { heads: want.has('heads'), neurons: want.has('neurons') } : {});
  }
  if (want.has('heads')) throw new ConfigError(`populations: '${modelName}' has no attention heads (heads need a transformer such as vit_tiny)`, [{ path: 'populations', message: 'heads on a model without attention' }]);
  const m = toPopulationModel(model, modelName);
  if (kinds) {
    const has = new Set(allPopulations(m).map(([, l]) => ((l as PopulationLayer).kind === 'conv' ? 'filters' : 'neurons')));
    const missing = [...has].filter((k) => !want.has(k));
    if (missing.length) throw new ConfigError(`populations: '${modelName}' scales ${[...has].join(' and ')}; asking for ${[...want].join(', ')} alone is not supported`, [{ path: 'populations', message: 'subset of a Sequential model' }]);
  }
  return m;
}

/** The model is a population-scaled transformer (heads and/or neurons). */
export const isTransformerPopulation = (m: Module): m is VisionTransformer => m instanceof VisionTransformer && allPopulations(m).some(([, l]) => l instanceof TokenPopulation);

// ---- physical removal -----------------------------------------------------------------------------------

export interface VitArchitecture {
  format: 'topiary-vit/1';
  model: 'vit';
  config: VitConfig;
  /** Populations kept per scaled layer, in order. */
  kept: number[];
}

const idx = (a: number[]) => tensor(BigInt64Array.from(a, (v) => BigInt(v)), { shape: [a.length] });
const all = (n: number) => Array.from({ length: n }, (_, i) => i);

function keptOf(name: string, n: number, keepIdx: Map<string, number[]>): number[] {
  const k = [...(keepIdx.get(name) ?? all(n))].sort((a, b) => a - b);
  if (k.length === 0 || k.some((i) => !(Number.isInteger(i) && i >= 0 && i < n)) || new Set(k).size !== k.length) {
    throw new ArgumentError(`physical removal: layer '${name}' must keep 1..${n} distinct valid indices, got [${k.slice(0, 8)}${k.length > 8 ? ', ...' : ''}]`);
  }
  return k;
}

/**
 * The plain VisionTransformer for a population-scaled (or plain) one, keeping `keepIdx` per layer
 * path (`blocks.i.self_attn` heads, `blocks.i.linear1` neurons; all of a layer not in the map).
 * Masses are folded; the model is not changed.
 */
export function physicalPruneTransformer(model: Module, keepIdx: Map<string, number[]>): { model: VisionTransformer; architecture: VitArchitecture } {
  if (!(model instanceof VisionTransformer)) throw new ConfigError('physical removal: not a transformer population model', [{ path: 'model', message: 'not a ViT' }]);
  const c = model.config, blocks = model.blocks;
  const plan = blocks.map((b, i) => {
    const sa = b.selfAttn, l1 = b.linear1;
    const attn = sa instanceof HeadPopulation ? sa.attn : sa as MultiheadAttention;
    const unit = l1 instanceof NeuronPopulation ? l1.unit : l1 as Linear;
    // Plain layers may be given keep indices too (structured head pruning's masks, prune/heads-shrink.ts).
    const heads = keptOf(`blocks.${i}.self_attn`, attn.numHeads, keepIdx);
    const neurons = keptOf(`blocks.${i}.linear1`, unit.outFeatures, keepIdx);
    return { b, attn, unit, heads, neurons, headMass: sa instanceof HeadPopulation ? sa.mass : null, neuronMass: l1 instanceof NeuronPopulation ? l1.mass : null };
  });
  const config: VitConfig = { ...c, heads: plan.map((p) => p.heads.length), mlp: plan.map((p) => p.neurons.length) };
  const plain = new VisionTransformer(config);
  const kept: number[] = [];
  for (const p of plan) {
    if (p.headMass) kept.push(p.heads.length);
    if (p.neuronMass) kept.push(p.neurons.length);
  }
  const sd: Record<string, Tensor> = {};
  tidy(() => noGrad(() => {
    const own = Object.fromEntries([...model.namedParameters(), ...model.namedBuffers()]);
    // Everything outside the blocks keeps its name and value.
    for (const name of Object.keys(plain.stateDict())) if (!name.startsWith('blocks.')) sd[name] = own[name];
    plan.forEach((p, i) => {
      const pre = `blocks.${i}`, a = p.attn, dh = a.headDim, inner = a.innerDim;
      const rows: number[] = [];
      for (let part = 0; part < 3; part++) for (const h of p.heads) for (let j = 0; j < dh; j++) rows.push(part * inner + h * dh + j);
      const cols = p.heads.flatMap((h) => all(dh).map((j) => h * dh + j));
      const hm = p.headMass ? p.headMass.dataSync() : null;
      const colScale = p.heads.flatMap((h) => all(dh).map(() => (hm ? hm[h] : 1)));
      sd[`${pre}.self_attn.in_proj_weight`] = a.inProjWeight.indexSelect(0, idx(rows));
      if (a.inProjBias) sd[`${pre}.self_attn.in_proj_bias`] = a.inProjBias.indexSelect(0, idx(rows));
      const ow = a.outProj.weight;
      sd[`${pre}.self_attn.out_proj.weight`] = ow.indexSelect(1, idx(cols)).mul(tensor(colScale, { dtype: ow.dtype }).view(1, cols.length));
      if (a.outProj.bias) sd[`${pre}.self_attn.out_proj.bias`] = a.outProj.bias;
      const ni = idx(p.neurons), nm = p.neuronMass ? p.neuronMass.indexSelect(0, ni) : null;
      sd[`${pre}.linear1.weight`] = p.unit.weight.indexSelect(0, ni);
      if (p.unit.bias) sd[`${pre}.linear1.bias`] = p.unit.bias.indexSelect(0, ni);
      const w2 = p.b.linear2.weight.indexSelect(1, ni);
      sd[`${pre}.linear2.weight`] = nm ? w2.mul(nm.view(1, p.neurons.length)) : w2;
      if (p.b.linear2.bias) sd[`${pre}.linear2.bias`] = p.b.linear2.bias;
      for (const n of ['norm1', 'norm2']) for (const leaf of ['weight', 'bias']) {
        const t = own[`${pre}.${n}.${leaf}`];
        if (t) sd[`${pre}.${n}.${leaf}`] = t;
      }
    });
    plain.loadStateDict(sd);
  }));
  return { model: plain, architecture: { format: 'topiary-vit/1', model: 'vit', config, kept } };
}

export function buildTransformerFromArchitecture(a: VitArchitecture): VisionTransformer {
  if (a.format !== 'topiary-vit/1') throw new SerializationError(`architecture: unknown format '${a.format as string}'`);
  return new VisionTransformer(a.config);
}

/** model.safetensors + architecture.json in `dir`. */
export function saveTransformer(dir: string, model: Module, architecture: VitArchitecture, metadata: Record<string, string> = {}): void {
  savePruned(dir, model, architecture, metadata);
}

/** Rebuild a saved pruned transformer from its folder. */
export function loadPrunedTransformer(dir: string): { model: VisionTransformer; architecture: VitArchitecture } {
  return loadWithArchitecture(dir, buildTransformerFromArchitecture);
}
