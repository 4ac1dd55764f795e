/**
 * Physical removal for EVO-POP over channel groups (graph-populations.ts), and the model EVO-POP
 * trains for a run. Removal folds every kept mass into the points where it acts (a BatchNorm's
 * weight and bias, or a producer's rows and bias: m BN(x) and m (Wx + b) are exact that way),
 * zeroes the removed groups there, masks their producer rows, and lets src/graph/shrink.ts take the
 * removed channels out of every tensor. The result is a plain GraphModule that computes what the
 * population model computes with the removed masses at zero (tested to 1e-5), saved as
 * model.shrunk.graph.json + model.shrunk.safetensors (what `topiary export --from <folder>` reads).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArgumentError, ConfigError } from '../../core/errors.js';
import { importOnnxFor, ONNX_MODEL } from '../../graph/onnx-import.js';
import { GraphModule, graphFromJSONWithData, saveGraphModule } from '../../graph/run.js';
import { shrinkGraph } from '../../graph/shrink.js';
import { trace } from '../../graph/trace.js';
import { createModel } from '../../models/registry.js';
import type { Module } from '../../nn/module.js';
import { noGrad } from '../../tensor/autograd.js';
import { tensor } from '../../tensor/creation.js';
import { keep, tidy } from '../../tensor/scope.js';
import type { Tensor } from '../../tensor/tensor.js';
import { populationModelFor } from './heads.js';
import { ChannelPopulation, ChannelPopulationModel } from './graph-populations.js';

export interface GraphArchitecture {
  format: 'topiary-graph-populations/1';
  /** The population layers (`channels.<layer>`), and the populations each keeps, in order. */
  layers: string[];
  kept: number[];
  /** Dependency groups removed (ids of depgroups.ts's analysis of the trained model's graph). */
  removedGroups: number[];
}

const all = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * The smaller GraphModule for `model` keeping `keepIdx` per population layer path (all of a layer
 * not in the map), masses folded in. The model is not changed.
 */
export function physicalPruneGraph(model: ChannelPopulationModel, keepIdx: Map<string, number[]>): { model: GraphModule; architecture: GraphArchitecture } {
  const layers = model.namedModules().filter((e): e is [string, ChannelPopulation] => e[1] instanceof ChannelPopulation);
  const scale: number[] = [];
  const removed: number[] = [];
  const kept: number[] = [];
  for (const [path, l] of layers) {
    const k = [...new Set(keepIdx.get(path) ?? all(l.size))];
    if (k.length === 0 || k.some((i) => !(Number.isInteger(i) && i >= 0 && i < l.size))) throw new ArgumentError(`physical removal: layer '${path}' must keep 1..${l.size} valid indices, got [${k.slice(0, 8)}${k.length > 8 ? ', ...' : ''}]`);
    const keepSet = new Set(k), m = l.mass.dataSync();
    l.groups.forEach((g, i) => { scale.push(keepSet.has(i) ? m[i] : 0); if (!keepSet.has(i)) removed.push(g); });
    kept.push(k.length);
  }
  scale.push(1); // channels that are no population
  const g = model.graph;
  const own = model.stateDict();
  const state = new Map<string, Tensor>(g.state.map((v) => [v.name, own[v.name]]));
  const made: Tensor[] = [];
  const masks = new Map<string, Tensor>();
  try {
    tidy(() => noGrad(() => {
      const folded = new Set<string>();
      const fold = (name: string | undefined, s: number[], rows: boolean) => {
        if (!name) return;
        const v = g.value(name);
        if (folded.has(name) || v.users.length !== 1) throw new ArgumentError(`physical removal: '${name}' is read by ${v.users.length} nodes; a mass cannot be folded into a shared tensor`);
        folded.add(name);
        const t = state.get(name)!;
        const f = tensor(Float32Array.from(s), { dtype: t.dtype, device: t.device });
        const y = keep(t.detach().mul(rows ? f.view([s.length, ...Array<number>(t.ndim - 1).fill(1)]) : f));
        made.push(y);
        state.set(name, y);
      };
      for (const p of model.points) {
        const s = p.columns.map((c) => scale[c]);
        if (s.every((x) => x === 1)) continue;
        const n = g.nodes[p.node];
        if (n.op === 'batchNorm') {
          if (!n.inputs[1] || !n.inputs[2]) throw new ArgumentError(`physical removal: the BatchNorm at '${n.module}' has no affine parameters to fold a mass into`);
          fold(n.inputs[1].name, s, false);
          fold(n.inputs[2].name, s, false);
        } else {
          fold(n.inputs[1]?.name, s, true);
          fold(n.inputs[2]?.name, s, false);
        }
      }
      // The removed groups' producer rows, masked: what tells shrink which channels go.
      const gone = new Set(removed);
      const host = new Map<string, Float32Array>();
      for (const grp of model.dep.groups) {
        if (!gone.has(grp.id)) continue;
        for (const r of grp.rows) {
          const shape = state.get(r.param)!.shape;
          let mk = host.get(r.param);
          if (!mk) host.set(r.param, (mk = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1)));
          const per = mk.length / shape[0];
          mk.fill(0, r.start * per, (r.start + r.length) * per);
        }
      }
      for (const [name, mk] of host) masks.set(name, keep(tensor(mk, { shape: state.get(name)!.shape })));
    }));
    const r = shrinkGraph(model.dep, state, masks);
    try {
      const out = new GraphModule(graphFromJSONWithData(r.graph), r.state);
      return { model: out, architecture: { format: 'topiary-graph-populations/1', layers: layers.map(([p]) => p), kept, removedGroups: r.removedGroups } };
    } finally {
      for (const t of Object.values(r.state)) t.dispose();
    }
  } finally {
    for (const t of made) t.dispose();
    for (const t of masks.values()) t.dispose();
  }
}

/** model.shrunk.graph.json + model.shrunk.safetensors + populations.json in `dir`. */
export function saveGraphPruned(dir: string, model: GraphModule, architecture: GraphArchitecture): void {
  mkdirSync(dir, { recursive: true });
  saveGraphModule(model, join(dir, 'model.shrunk'));
  writeFileSync(join(dir, 'populations.json'), JSON.stringify(architecture, null, 2) + '\n');
}

/** A ChannelPopulationModel over a copy of a GraphModule's graph and state (the GraphModule is not changed). */
export function channelPopulationsOf(gm: GraphModule, modelName = 'model'): ChannelPopulationModel {
  const g = graphFromJSONWithData(gm.graph.toJSON());
  try {
    return new ChannelPopulationModel(g, gm.stateDict(), modelName);
  } catch (e) {
    g.dispose();
    throw e;
  }
}

/** Channel populations for a zoo model: traced, then wrapped (the model is freed). */
export function channelPopulationsFor(model: Module, inputShape: number[], modelName = 'model'): ChannelPopulationModel {
  try {
    const g = trace(model, { inputShape });
    try {
      return new ChannelPopulationModel(g, model.stateDict(), modelName);
    } catch (e) {
      g.dispose();
      throw e;
    }
  } finally {
    model.dispose();
  }
}

const bad = (path: string, msg: string) => new ConfigError(`${path}: ${msg}`, [{ path, message: msg }]);

/**
 * The population model an EVO-POP run trains: an imported ONNX model's channel groups (model
 * 'onnx', `from` its file), a zoo model's channel groups (`populations: ['channels']`), or the
 * Sequential / transformer populations of populationModelFor.
 */
export function evoModelFor(c: { model: string; widths?: number[]; init?: string; dataset?: string }, e: { populations?: readonly string[]; from?: string }, data: { inputShape: readonly number[]; numClasses: number }): Module {
  const kinds = e.populations;
  const channelsOnly = () => {
    if (kinds && !(kinds.length === 1 && kinds[0] === 'channels')) throw bad('populations', `'${c.model === ONNX_MODEL ? e.from : c.model}': channel populations (channels) cannot be combined with ${kinds.filter((k) => k !== 'channels').join(', ')}`);
  };
  if (c.model === ONNX_MODEL || e.from !== undefined) {
    if (c.model !== ONNX_MODEL || !e.from) throw bad('from', 'an ONNX model needs --from <file.onnx> (and no --model)');
    if (kinds && kinds.some((k) => k !== 'channels')) throw bad('populations', `${e.from} is an imported graph: its populations are its channel groups (channels), not ${kinds.filter((k) => k !== 'channels').join(', ')}`);
    const gm = importOnnxFor(e.from, { inputShape: [...data.inputShape], numClasses: data.numClasses, dataset: c.dataset });
    try {
      return channelPopulationsOf(gm, e.from);
    } finally {
      gm.dispose();
    }
  }
  const m = createModel(c.model, { inputShape: [...data.inputShape], numClasses: data.numClasses, widths: c.widths, init: c.init });
  if (kinds?.includes('channels')) {
    channelsOnly();
    return channelPopulationsFor(m, [...data.inputShape], c.model);
  }
  try {
    return populationModelFor(m, c.model, kinds);
  } catch (err) {
    m.dispose();
    if (err instanceof ConfigError && /not a plain Sequential/.test(err.message)) throw new ConfigError(`${err.message}; --populations channels makes its channel groups the populations (any model)`, err.issues, { cause: err });
    throw err;
  }
}
