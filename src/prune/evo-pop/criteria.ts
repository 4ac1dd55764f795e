/**
 * Which populations to remove after training. Every criterion gives each population a score; all
 * populations of all scaled layers are ranked together and the lowest fraction is removed, except
 * that each layer keeps at least one population (a layer with none would cut the network).
 *   mass:       m_i (the method).
 *   random:     a seeded uniform draw (control).
 *   l2:         ||W_i||_2 of the population's incoming weights (its row, or its filter; for a head its
 *               rows of q, k, v and its columns of the output projection) (control).
 *   activation: mean |h_i| = mean |m_i a_i| over calibration batches of the training split (control).
 *   importance: Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"): with a gate xi_i = 1
 *               on each population's output, I_i = mean over calibration examples x of |dl(x)/dxi_i|
 *               = m_i mean_x |dl(x)/dm_i|, normalized by its layer's L2 norm (their Sec. 4.1) (control).
 */
import { ArgumentError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import type { Module } from '../../nn/module.js';
import { noGrad } from '../../tensor/autograd.js';
import { tensor } from '../../tensor/creation.js';
import { tidy } from '../../tensor/scope.js';
import { crossEntropy } from '../../tensor/nn-ops.js';
import type { BatchLike } from '../../train/evaluate.js';
import type { Criterion } from './config.js';
import { allPopulations, TokenPopulation } from './heads.js';

/** Scores per layer path, each of the layer's size. */
export type Scores = Map<string, Float64Array>;

/** Mean |h| per population over the batches (disposes them). The model runs in eval mode. */
export function meanActivations(model: Module, batches: Iterable<BatchLike>): Scores {
  const layers = allPopulations(model);
  const sums = new Map(layers.map(([n, l]) => [n, new Float64Array(l.size)]));
  let count = 0;
  const add = (n: string, v: number[], b: number) => {
    const s = sums.get(n)!;
    for (let i = 0; i < v.length; i++) s[i] += v[i] * b;
  };
  const removers = layers.map(([n, l]) => {
    if (l instanceof TokenPopulation) {
      // Heads' outputs are not the layer's output: the layer reports mean |m a| itself.
      l.onActivation = (v, b) => add(n, v.dataSync(), b);
      return () => { l.onActivation = null; };
    }
    return l.registerForwardHook((_m, _x, y) => {
      add(n, noGrad(() => y.abs().mean(y.ndim === 2 ? [0] : [0, 2, 3])).dataSync(), y.shape[0]); // [n], mean over batch and positions
    });
  });
  const was = model.training;
  model.eval();
  try {
    for (const b of batches) {
      tidy(() => noGrad(() => { model.call(b.x); }));
      count += b.x.shape[0];
      b.x.dispose();
      b.y.dispose();
    }
  } finally {
    removers.forEach((r) => r());
    model.train(was);
  }
  if (count === 0) throw new ArgumentError('meanActivations: no calibration batches');
  for (const s of sums.values()) for (let i = 0; i < s.length; i++) s[i] /= count;
  return sums;
}

/**
 * Head (and neuron, filter) importance, Michel et al. 2019, over the batches (disposes them). The
 * rest of the model runs in eval mode; only the population layers record per-example gradients of
 * their masses (the 'grad' probe). Parameter gradients made on the way are cleared.
 */
export function headImportance(model: Module, batches: Iterable<BatchLike>): Scores {
  const layers = allPopulations(model);
  const sums = new Map(layers.map(([n, l]) => [n, new Float64Array(l.size)]));
  let count = 0;
  const was = model.training;
  model.eval();
  try {
    for (const [, l] of layers) { l.training = true; l.probe = 'grad'; }
    for (const b of batches) {
      tidy(() => {
        crossEntropy(model.call(b.x), b.y, { reduction: 'sum' }).backward();
        for (const [n, l] of layers) {
          const g = noGrad(() => l.lastLeaf!.grad!.flatten(1).abs().sum(0)).dataSync(); // sum over examples of |dl_x/dm_i|
          const s = sums.get(n)!;
          for (let i = 0; i < g.length; i++) s[i] += g[i];
          l.lastLeaf = null;
        }
      });
      count += b.x.shape[0];
      b.x.dispose();
      b.y.dispose();
    }
  } finally {
    for (const [, l] of layers) { l.probe = null; l.lastLeaf = null; }
    model.zeroGrad();
    model.train(was);
  }
  if (count === 0) throw new ArgumentError('headImportance: no calibration batches');
  for (const [n, l] of layers) {
    const s = sums.get(n)!, m = l.mass.dataSync();
    let norm = 0;
    for (let i = 0; i < s.length; i++) { s[i] = (m[i] * s[i]) / count; norm += s[i] * s[i]; }
    norm = Math.sqrt(norm);
    if (norm > 0) for (let i = 0; i < s.length; i++) s[i] /= norm;
  }
  return sums;
}

export function scorePopulations(model: Module, criterion: Criterion, o: { seed?: number; activations?: Scores; importance?: Scores } = {}): Scores {
  const layers = allPopulations(model);
  const out: Scores = new Map();
  const rng = new Rng(o.seed ?? 0);
  for (const [name, l] of layers) {
    let s: Float64Array;
    if (criterion === 'mass') s = Float64Array.from(l.mass.dataSync());
    else if (criterion === 'random') s = Float64Array.from({ length: l.size }, () => rng.random());
    else if (criterion === 'l2') s = Float64Array.from(tidy(() => noGrad(() => (l instanceof TokenPopulation ? l.incomingNorms() : l.unit.weight.flatten(1).norm(2, 1))).dataSync())); // read inside the scope, which frees the norms
    else if (criterion === 'activation') {
      const a = o.activations?.get(name);
      if (!a) throw new ArgumentError(`criterion 'activation' needs mean activations for layer '${name}' (meanActivations)`);
      s = a;
    } else if (criterion === 'importance') {
      const a = o.importance?.get(name);
      if (!a) throw new ArgumentError(`criterion 'importance' needs head importances for layer '${name}' (headImportance)`);
      s = a;
    } else throw new ArgumentError(`unknown removal criterion '${criterion as string}'`);
    out.set(name, s);
  }
  return out;
}

/**
 * Indices kept per layer (ascending) after removing round(fraction * total) populations with the
 * lowest scores, ties broken by layer order then index (stable), at least one kept per layer.
 */
export function selectKeep(scores: Scores, fraction: number): Map<string, number[]> {
  if (!(fraction >= 0 && fraction < 1)) throw new ArgumentError(`removal fraction must be in [0, 1), got ${fraction}`);
  const all: { layer: string; i: number; s: number }[] = [];
  for (const [layer, s] of scores) for (let i = 0; i < s.length; i++) all.push({ layer, i, s: s[i] });
  const order = all.map((e, k) => k).sort((a, b) => all[a].s - all[b].s || a - b);
  const left = new Map([...scores].map(([n, s]) => [n, s.length]));
  const removed = new Set<number>();
  let need = Math.round(fraction * all.length);
  for (const k of order) {
    if (need === 0) break;
    const e = all[k];
    if (left.get(e.layer)! <= 1) continue;
    removed.add(k);
    left.set(e.layer, left.get(e.layer)! - 1);
    need--;
  }
  const keepIdx = new Map<string, number[]>([...scores.keys()].map((n) => [n, []]));
  all.forEach((e, k) => { if (!removed.has(k)) keepIdx.get(e.layer)!.push(e.i); });
  return keepIdx;
}

/** Zero the masses of the removed populations in place: the masked model that physical removal must match. */
export function maskRemoved(model: Module, keepIdx: Map<string, number[]>): void {
  for (const [name, l] of allPopulations(model)) {
    const m = new Float32Array(l.size);
    for (const i of keepIdx.get(name) ?? []) m[i] = 1;
    tidy(() => noGrad(() => { l.mass.mul_(tensor(m, { dtype: l.mass.dtype, device: l.mass.device })); }));
  }
}
