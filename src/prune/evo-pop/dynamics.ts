/**
 * Selection dynamics: how a layer's masses move given its (smoothed, normalized) fitness. One
 * registry value per rule; each maps (m, f, alive) to the new masses and leaves extinction and
 * conservation to `selectionStep`, so every rule gets the same, tested treatment of both.
 * Extinct populations (m = 0) stay at 0 under every rule: all terms are proportional to m except
 * the mutation flow, which is applied to living populations only.
 *
 * The vectors are a layer's populations (hundreds, a few thousand at most), so the rules run on
 * plain Float64Arrays: one read of the masses and one write per layer and step, instead of some
 * thirty native calls on tiny tensors, which is what keeps the dynamics' overhead on an epoch small
 * (bench/evo-pop.ts). The masses themselves stay a tensor buffer of the layer.
 */
import { RegistryError } from '../../core/errors.js';

export interface DynamicsParams {
  /** Step size. */
  eta: number;
  /** replicator_mutator: mutation rate. */
  mu: number;
  /** growth_decay: baseline cost, a number or 'mean' (the layer's mean fitness over living populations). */
  cost: number | 'mean';
  /** growth_decay: upper clip of masses. */
  mMax: number;
}

export type Vec = Float64Array;

export interface Dynamics {
  name: string;
  description: string;
  /** Total mass of the layer is an invariant (restored after extinction). */
  conserves: boolean;
  /** New masses (a new array). f is 0 where not alive; alive[i] = m[i] > 0. */
  update(m: Vec, f: Vec, alive: Uint8Array, p: DynamicsParams): Vec;
}

function sum(x: Vec): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s;
}
/** Mass-weighted mean fitness of the layer: fbar = sum m f / sum m. */
function massMean(m: Vec, f: Vec): number {
  let mf = 0, s = 0;
  for (let i = 0; i < m.length; i++) { mf += m[i] * f[i]; s += m[i]; }
  return s > 0 ? mf / s : 0;
}
/** Plain mean over living populations. */
function aliveMean(x: Vec, alive: Uint8Array): number {
  let s = 0, n = 0;
  for (let i = 0; i < x.length; i++) if (alive[i]) { s += x[i]; n++; }
  return n ? s / n : 0;
}
/** A new vector of m's length from fn(i) (a plain loop: Float64Array.from with a mapper is many times slower). */
function map(m: Vec, fn: (i: number) => number): Vec {
  const out = new Float64Array(m.length);
  for (let i = 0; i < out.length; i++) out[i] = fn(i);
  return out;
}

export const replicator: Dynamics = {
  name: 'replicator',
  description: 'm_i += eta m_i (f_i - fbar), fbar the mass-weighted mean fitness',
  conserves: true,
  update: (m, f, _alive, p) => {
    const fbar = massMean(m, f);
    return map(m, (i) => m[i] + p.eta * m[i] * (f[i] - fbar));
  },
};

export const exponential: Dynamics = {
  name: 'exponential',
  description: 'multiplicative weights: m_i = M m_i exp(eta f_i) / sum_j m_j exp(eta f_j), M the total mass (n at the start)',
  conserves: true,
  update: (m, f, alive, p) => {
    // exp(eta (f - max f)): the common factor cancels in the ratio and keeps exp from overflowing.
    let top = -Infinity;
    for (let i = 0; i < f.length; i++) if (alive[i] && f[i] > top) top = f[i];
    const w = map(m, (i) => (alive[i] ? m[i] * Math.exp(p.eta * (f[i] - top)) : 0));
    const sw = sum(w), total = sum(m);
    return sw > 0 ? map(w, (i) => (total * w[i]) / sw) : w;
  },
};

export const growthDecay: Dynamics = {
  name: 'growth_decay',
  description: 'm_i += eta m_i (f_i - c), c a fixed cost or the layer mean fitness; masses clipped to [0, m_max]',
  conserves: false,
  update: (m, f, alive, p) => {
    const c = p.cost === 'mean' ? aliveMean(f, alive) : p.cost;
    return map(m, (i) => Math.min(p.mMax, Math.max(0, m[i] + p.eta * m[i] * (f[i] - c))));
  },
};

export const replicatorMutator: Dynamics = {
  name: 'replicator_mutator',
  description: 'replicator + mu (mbar - m_i), mbar the mean mass of living populations (mutation keeps rare populations alive)',
  conserves: true,
  update: (m, f, alive, p) => {
    const fbar = massMean(m, f), mbar = aliveMean(m, alive);
    return map(m, (i) => (alive[i] ? m[i] + p.eta * m[i] * (f[i] - fbar) + p.mu * (mbar - m[i]) : 0));
  },
};

export const DYNAMICS: Record<string, Dynamics> = {
  replicator, exponential, growth_decay: growthDecay, replicator_mutator: replicatorMutator,
};
export const DYNAMICS_NAMES = Object.keys(DYNAMICS) as ['replicator', 'exponential', 'growth_decay', 'replicator_mutator'];

export function getDynamics(name: string): Dynamics {
  const d = DYNAMICS[name];
  if (!d) throw new RegistryError(`unknown dynamics '${name}' (known: ${DYNAMICS_NAMES.join(', ')})`);
  return d;
}

/**
 * One selection step on a layer's masses, in place: the rule's update, then negative masses to 0,
 * then extinction (m < epsilon -> 0, for good), then, for conserving rules, the survivors are
 * rescaled so that the layer's total mass is what it was before the step (the mass of the newly
 * extinct is shared out in proportion to mass, as on the replicator's simplex). Returns the
 * indices of the populations that went extinct in this step.
 */
export function selectionStep(mass: Vec, f: Vec, d: Dynamics, p: DynamicsParams & { epsilon: number }): number[] {
  const n = mass.length;
  const alive = new Uint8Array(n);
  for (let i = 0; i < n; i++) alive[i] = mass[i] > 0 ? 1 : 0;
  const total = sum(mass);
  const fa = map(f, (i) => (alive[i] && Number.isFinite(f[i]) ? f[i] : 0)); // the dead's fitness enters no mean
  const next = d.update(mass, fa, alive, p);
  const died: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = alive[i] && next[i] > 0 ? next[i] : 0;
    next[i] = v >= p.epsilon ? v : 0;
    if (alive[i] && next[i] === 0) died.push(i);
  }
  if (d.conserves) {
    const s = sum(next);
    if (s > 0) for (let i = 0; i < n; i++) next[i] *= total / s;
  }
  mass.set(next);
  return died;
}
