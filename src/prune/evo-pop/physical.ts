/**
 * Physical removal: from a population-scaled Sequential and the populations to keep, a plain,
 * smaller Sequential computing what the masked model computes. A removed neuron's row of W and
 * entry of b leave its layer (a filter leaves a conv, with its BatchNorm entries); its column
 * leaves the next weighted layer (a conv's input channel, or after Flatten the block of a Linear's
 * input columns that came from that channel). The kept masses are folded into those columns:
 * W' x' = W (m * a) = (W diag(m)) a, valid through ReLU, pooling, Flatten and Dropout because
 * they commute with a non-negative per-channel scale.
 * The result is described by an architecture JSON (layer list; widths for an mlp) so that it can
 * be rebuilt and loaded without this code's classes: an mlp's is exactly createModel('mlp', {widths}).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArgumentError, ConfigError, SerializationError } from '../../core/errors.js';
import { AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, ReLU, Sequential, Sigmoid, Tanh } from '../../nn/layers.js';
import type { Module } from '../../nn/module.js';
import { noGrad } from '../../tensor/autograd.js';
import { tensor } from '../../tensor/creation.js';
import { loadSafetensors, saveSafetensors } from '../../tensor/safetensors.js';
import { keep, tidy } from '../../tensor/scope.js';
import type { Tensor } from '../../tensor/tensor.js';
import { PopulationLayer, passesScale } from './population-layer.js';

type P2 = [number, number];
export type LayerSpec =
  | { type: 'linear'; in: number; out: number; bias: boolean }
  | { type: 'conv2d'; in: number; out: number; kernel: P2; stride: P2; padding: P2; dilation: P2; bias: boolean }
  | { type: 'batchnorm'; dims: 1 | 2; n: number; eps: number; momentum: number; affine: boolean }
  | { type: 'maxpool2d' | 'avgpool2d'; kernel: P2 | number; stride: P2 | number; padding: P2 | number }
  | { type: 'dropout'; p: number }
  | { type: 'flatten'; startDim: number; endDim: number }
  | { type: 'relu' | 'tanh' | 'sigmoid' | 'identity' };

export interface Architecture {
  format: 'topiary-sequential/1';
  /** 'mlp' when the result is an mlp (then createModel('mlp', {widths}) rebuilds it). */
  model: string;
  widths?: number[];
  /** Populations kept per scaled layer, in order. */
  kept: number[];
  layers: LayerSpec[];
}

export function describe(m: Module): LayerSpec {
  if (m instanceof Linear) return { type: 'linear', in: m.inFeatures, out: m.outFeatures, bias: m.bias !== null };
  if (m instanceof Conv2d) {
    if (m.groups !== 1) throw new ArgumentError('describe: grouped convolutions are not supported');
    return { type: 'conv2d', in: m.inChannels, out: m.outChannels, kernel: m.kernelSize, stride: m.stride, padding: m.padding, dilation: m.dilation, bias: m.bias !== null };
  }
  if (m instanceof BatchNorm) return { type: 'batchnorm', dims: m.dims, n: m.numFeatures, eps: m.eps, momentum: m.momentum, affine: m.weight !== null };
  if (m instanceof MaxPool2d || m instanceof AvgPool2d) {
    return { type: m instanceof MaxPool2d ? 'maxpool2d' : 'avgpool2d', kernel: m.kernel, stride: m.stride ?? m.kernel, padding: m.padding };
  }
  if (m instanceof Dropout) return { type: 'dropout', p: m.p };
  if (m instanceof Flatten) return { type: 'flatten', startDim: m.startDim, endDim: m.endDim };
  if (m instanceof ReLU) return { type: 'relu' };
  if (m instanceof Tanh) return { type: 'tanh' };
  if (m instanceof Sigmoid) return { type: 'sigmoid' };
  if (m instanceof Identity) return { type: 'identity' };
  throw new ArgumentError(`describe: cannot describe a ${m.typeName} layer`);
}

export function build(s: LayerSpec): Module {
  switch (s.type) {
    case 'linear': return new Linear(s.in, s.out, s.bias);
    case 'conv2d': return new Conv2d(s.in, s.out, s.kernel, { stride: s.stride, padding: s.padding, dilation: s.dilation, bias: s.bias });
    case 'batchnorm': return new BatchNorm(s.n, s.dims, s.eps, s.momentum, s.affine);
    case 'maxpool2d': return new MaxPool2d(s.kernel, s.stride, s.padding);
    case 'avgpool2d': return new AvgPool2d(s.kernel, s.stride, s.padding);
    case 'dropout': return new Dropout(s.p);
    case 'flatten': return new Flatten(s.startDim, s.endDim);
    case 'relu': return new ReLU();
    case 'tanh': return new Tanh();
    case 'sigmoid': return new Sigmoid();
    case 'identity': return new Identity();
    default: throw new SerializationError(`architecture: unknown layer type '${(s as { type: string }).type}'`);
  }
}

export function buildFromArchitecture(a: Architecture): Sequential {
  if (a.format !== 'topiary-sequential/1') throw new SerializationError(`architecture: unknown format '${a.format}'`);
  return new Sequential(...a.layers.map(build));
}

/** What the next weighted layer must take from a scaled layer: its kept channels and their masses. */
interface Pending { keep: number[]; mass: number[]; channels: number }

const idx = (a: number[]) => tensor(BigInt64Array.from(a, (v) => BigInt(v)), { shape: [a.length] });

/** Select the kept input columns of W and multiply them by the kept masses. */
function foldIn(w: Tensor, p: Pending, layer: string): Tensor {
  const inDim = w.shape[1];
  if (w.ndim === 4) {
    if (inDim !== p.channels) throw new ConfigError(`physical removal: '${layer}' takes ${inDim} channels, the scaled layer before it has ${p.channels}`);
    return w.indexSelect(1, idx(p.keep)).mul(tensor(p.mass, { dtype: w.dtype }).view(1, p.keep.length, 1, 1));
  }
  if (inDim % p.channels !== 0) throw new ConfigError(`physical removal: '${layer}' has ${inDim} inputs, not a multiple of the ${p.channels} populations before it`);
  const hw = inDim / p.channels; // 1 for Linear -> Linear; H*W positions per channel after Flatten
  const cols: number[] = [], scale: number[] = [];
  for (let k = 0; k < p.keep.length; k++) for (let j = 0; j < hw; j++) { cols.push(p.keep[k] * hw + j); scale.push(p.mass[k]); }
  return w.indexSelect(1, idx(cols)).mul(tensor(scale, { dtype: w.dtype }).view(1, cols.length));
}

/** A fresh module like `m` with the given parameters and buffers (copied), the rest as built. */
function rebuilt(spec: LayerSpec, tensors: Record<string, Tensor | null | undefined>): Module {
  const m = build(spec);
  for (const [name, t] of Object.entries(tensors)) {
    if (!t) continue;
    const isParam = m.namedParameters().some(([n]) => n === name);
    const copy = keep(t.detach().clone());
    if (isParam) m.setParameter(name, copy);
    else m.setBuffer(name, copy);
  }
  return m;
}

/**
 * The plain Sequential for `model` (a population-scaled Sequential) keeping `keepIdx` per scaled
 * layer path (all populations of a layer not in the map). Masses are folded; the model is not changed.
 */
export function physicalPrune(model: Module, keepIdx: Map<string, number[]>): { model: Sequential; architecture: Architecture } {
  if (!(model instanceof Sequential)) throw new ConfigError('physical removal needs a Sequential population model', [{ path: 'model', message: 'not Sequential' }]);
  const out: Module[] = [];
  const kept: number[] = [];
  let pending: Pending | null = null;
  tidy(() => noGrad(() => {
    for (const [name, m] of model.namedChildren()) {
      if (m instanceof PopulationLayer) {
        const n = m.size;
        const k = [...(keepIdx.get(name) ?? Array.from({ length: n }, (_, i) => i))].sort((a, b) => a - b);
        if (k.length === 0 || k.some((i) => !(Number.isInteger(i) && i >= 0 && i < n))) throw new ArgumentError(`physical removal: layer '${name}' must keep 1..${n} valid indices, got [${k.slice(0, 8)}${k.length > 8 ? ', ...' : ''}]`);
        const u = m.unit, ki = idx(k);
        const w = (pending ? foldIn(u.weight, pending, name) : u.weight).indexSelect(0, ki);
        const spec = { ...describe(u), out: k.length, in: w.shape[1] } as LayerSpec;
        out.push(rebuilt(spec, { weight: w, bias: u.bias?.indexSelect(0, ki) }));
        for (const p of m.post) {
          if (p instanceof BatchNorm) {
            const sel = (t: Tensor | null | undefined) => t?.indexSelect(0, ki);
            const bufs = Object.fromEntries(p.namedBuffers());
            out.push(rebuilt({ ...describe(p), n: k.length } as LayerSpec, {
              weight: sel(p.weight), bias: sel(p.bias), running_mean: sel(bufs.running_mean), running_var: sel(bufs.running_var), num_batches_tracked: bufs.num_batches_tracked,
            }));
          } else out.push(build(describe(p)));
        }
        const mass = m.mass.indexSelect(0, ki).dataSync();
        pending = { keep: k, mass, channels: n };
        kept.push(k.length);
      } else if (m instanceof Linear || m instanceof Conv2d) {
        const w = pending ? foldIn(m.weight, pending, name) : m.weight;
        out.push(rebuilt({ ...describe(m), in: w.shape[1] } as LayerSpec, { weight: w, bias: m.bias }));
        pending = null;
      } else {
        if (pending && !passesScale(m)) throw new ConfigError(`physical removal: masses cannot be folded through '${name}' (${m.typeName})`, [{ path: 'model', message: `${m.typeName} after a scaled layer` }]);
        out.push(rebuilt(describe(m), Object.fromEntries([...m.namedParameters(), ...m.namedBuffers()])));
      }
    }
  }));
  if (pending) throw new ConfigError('physical removal: the last scaled layer has no weighted layer after it to fold its masses into', [{ path: 'model', message: 'scaled output layer' }]);
  const layers = out.map(describe);
  const plain = new Sequential(...out);
  const linearOnly = layers.every((l) => ['linear', 'relu', 'flatten'].includes(l.type)) && layers[0]?.type === 'flatten';
  const lin = layers.filter((l): l is Extract<LayerSpec, { type: 'linear' }> => l.type === 'linear');
  const isMlp = linearOnly && layers.length === 2 * lin.length && layers.slice(1).every((l, i) => l.type === (i % 2 === 0 ? 'linear' : 'relu'));
  const architecture: Architecture = {
    format: 'topiary-sequential/1', model: isMlp ? 'mlp' : 'sequential', kept, layers,
    ...(isMlp ? { widths: lin.slice(0, -1).map((l) => l.out) } : {}),
  };
  return { model: plain, architecture };
}

/** model.safetensors + architecture.json in `dir`. */
export function savePruned(dir: string, model: Module, architecture: object, metadata: Record<string, string> = {}): void {
  mkdirSync(dir, { recursive: true });
  saveSafetensors(join(dir, 'model.safetensors'), model.stateDict(), { ...metadata, architecture: JSON.stringify(architecture) });
  writeFileSync(join(dir, 'architecture.json'), JSON.stringify(architecture, null, 2) + '\n');
}

/** Rebuild a model saved by savePruned: `build` makes it from its architecture, then the weights load. */
export function loadWithArchitecture<A, M extends Module>(dir: string, build: (architecture: A) => M): { model: M; architecture: A } {
  let architecture: A;
  try {
    architecture = JSON.parse(readFileSync(join(dir, 'architecture.json'), 'utf8')) as A;
  } catch (e) {
    throw new SerializationError(`${join(dir, 'architecture.json')}: unreadable (${(e as Error).message})`, { cause: e });
  }
  const model = build(architecture);
  const { tensors } = loadSafetensors(join(dir, 'model.safetensors'));
  try {
    model.loadStateDict(tensors);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
  return { model, architecture };
}

/** Rebuild a saved pruned model from its folder. */
export function loadPruned(dir: string): { model: Sequential; architecture: Architecture } {
  return loadWithArchitecture(dir, buildFromArchitecture);
}
