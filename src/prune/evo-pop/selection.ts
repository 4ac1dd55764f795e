/**
 * The EVO-POP training callback: after every k-th optimizer step it measures each population's
 * fitness, smooths it (EMA), normalizes it within the layer and lets the selection dynamics move
 * the masses. Nothing is pruned on a schedule: only extinction sets a mass to 0. It also records
 * every population's mass every `recordEvery` steps, in memory, for the trajectory plot.
 *
 * Normalization (one step size for every layer and model): f_hat_i = ema_i / mean_{j alive} |ema_j|.
 * It rescales without shifting, so the sign of the gradient fitness (does growing help?) and a
 * fixed growth_decay cost keep their meaning; a z-score would erase both.
 */
import { ArgumentError } from '../../core/errors.js';
import type { Module } from '../../nn/module.js';
import { noGrad } from '../../tensor/autograd.js';
import { tensor } from '../../tensor/creation.js';
import { tidy } from '../../tensor/scope.js';
import type { Callback, StepContext } from '../../train/loop.js';
import { getDynamics, selectionStep, type Dynamics, type DynamicsParams, type Vec } from './dynamics.js';
import { getFitness, type Fitness } from './fitness.js';
import { allPopulations, type AnyPopulation } from './heads.js';

export interface SelectionOptions extends DynamicsParams {
  dynamics: string;
  fitness: string;
  beta: number;
  every: number;
  epsilon: number;
  recordEvery: number;
}

/** Masses of every population at some steps: masses[layer][snapshot][i]. */
export interface MassTrajectory { steps: number[]; masses: Record<string, number[][]> }

/** Fitness normalized within the layer (see the file comment); 0 where not alive. */
export function normalizeFitness(ema: Vec, alive: ArrayLike<number>): Vec {
  let s = 0, n = 0;
  for (let i = 0; i < ema.length; i++) if (alive[i]) { s += Math.abs(ema[i]); n++; }
  const scale = Math.max(n ? s / n : 0, 1e-30);
  const out = new Float64Array(ema.length);
  for (let i = 0; i < ema.length; i++) out[i] = alive[i] ? ema[i] / scale : 0;
  return out;
}

export class EvoPop {
  readonly layers: [string, AnyPopulation][];
  readonly dynamics: Dynamics;
  readonly fitness: Fitness;
  private ema = new Map<string, Vec>();
  private initialized = new Set<string>();
  private measuring = false;
  trajectory: MassTrajectory;
  /** Step at which each layer's populations went extinct (-1 while alive), for the report. */
  extinctAt: Record<string, number[]> = {};

  constructor(model: Module, readonly o: SelectionOptions) {
    if (!(o.eta > 0)) throw new ArgumentError(`EVO-POP: eta must be > 0, got ${o.eta}`);
    this.layers = allPopulations(model);
    if (this.layers.length === 0) throw new ArgumentError('EVO-POP: the model has no population layer (wrap it with toPopulationModel)');
    this.dynamics = getDynamics(o.dynamics);
    this.fitness = getFitness(o.fitness);
    for (const [name, l] of this.layers) {
      this.ema.set(name, new Float64Array(l.size));
      this.extinctAt[name] = new Array<number>(l.size).fill(-1);
    }
    this.trajectory = { steps: [], masses: Object.fromEntries(this.layers.map(([n]) => [n, []])) };
  }

  private get params(): DynamicsParams & { epsilon: number } {
    const { eta, mu, cost, mMax, epsilon } = this.o;
    return { eta, mu, cost, mMax, epsilon };
  }

  /** Take one snapshot of all masses (rounded to 5 significant digits to keep JSON small). */
  record(step: number): void {
    if (this.trajectory.steps[this.trajectory.steps.length - 1] === step) return;
    this.trajectory.steps.push(step);
    for (const [name, l] of this.layers) this.trajectory.masses[name].push(l.mass.dataSync().map((v) => +v.toPrecision(5)));
  }

  /** One selection step on every layer, from the gradients / activations of the last training step. */
  step(stepIndex: number): void {
    const { beta } = this.o;
    for (const [name, l] of this.layers) {
      const raw = tidy(() => noGrad(() => this.fitness.measure(l).double().toTypedArray() as Float64Array));
      const ema = this.ema.get(name)!;
      if (this.initialized.has(name)) for (let i = 0; i < ema.length; i++) ema[i] = beta * ema[i] + (1 - beta) * raw[i];
      else { ema.set(raw); this.initialized.add(name); }
      const mass = new Float64Array(l.mass.toTypedArray() as Float32Array | Float64Array);
      const alive = new Uint8Array(mass.length);
      for (let i = 0; i < mass.length; i++) alive[i] = mass[i] > 0 ? 1 : 0;
      const f = normalizeFitness(ema, alive);
      const died = selectionStep(mass, f, this.dynamics, this.params);
      for (const i of died) this.extinctAt[name][i] = stepIndex;
      const host = l.mass.dtype === 'float64' ? mass : new Float32Array(mass);
      tidy(() => noGrad(() => { l.mass.copy_(tensor(host, { device: l.mass.device })); }));
      l.lastLeaf = null;
      l.lastActMean = null;
    }
  }

  /** Extinct populations (mass exactly 0) per layer. */
  extinctCounts(): Record<string, number> {
    return Object.fromEntries(this.layers.map(([n, l]) => [n, l.mass.dataSync().filter((v) => v === 0).length]));
  }

  callback(): Callback {
    return {
      name: 'evo_pop',
      // The selection step multiplies the masses every `every` steps: too large an eta diverges too.
      divergenceHint: `a lower --eta (the selection dynamics' step, now ${this.o.eta})`,
      onEpochStart: (ctx: StepContext) => { if (ctx.step === 0) this.record(0); },
      beforeForward: (ctx) => {
        this.measuring = ctx.step % this.o.every === 0;
        for (const [, l] of this.layers) l.probe = this.measuring ? this.fitness.probe : null;
      },
      afterStep: (ctx) => {
        if (this.measuring) this.step(ctx.step);
        if ((ctx.step + 1) % this.o.recordEvery === 0) this.record(ctx.step + 1);
      },
      onEpochEnd: (ctx, rec) => {
        for (const [, l] of this.layers) l.probe = null;
        this.record(ctx.step);
        const extinct = this.extinctCounts();
        rec.extra.extinct = extinct;
        rec.extra.massRange = Object.fromEntries(this.layers.map(([n, l]) => {
          const m = l.mass.dataSync();
          return [n, [Math.min(...m), Math.max(...m)].map((v) => +v.toPrecision(4))];
        }));
      },
      // The EMA is small and JSON keeps doubles exactly, so all of this state is JSON.
      stateDict: () => ({
        tensors: {},
        json: { initialized: [...this.initialized], ema: Object.fromEntries([...this.ema].map(([n, e]) => [n, Array.from(e)])), trajectory: this.trajectory, extinctAt: this.extinctAt },
      }),
      loadStateDict: (s) => {
        const j = s.json as { initialized: string[]; ema: Record<string, number[]>; trajectory: MassTrajectory; extinctAt: Record<string, number[]> };
        for (const [n, e] of Object.entries(j.ema)) this.ema.set(n, Float64Array.from(e));
        this.initialized = new Set(j.initialized);
        this.trajectory = j.trajectory;
        this.extinctAt = j.extinctAt;
      },
    };
  }

  /** Nothing native is held (the masses belong to the model); kept for symmetry with other callbacks. */
  dispose(): void {
    this.ema.clear();
  }
}
