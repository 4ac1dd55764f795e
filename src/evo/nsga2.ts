/**
 * NSGA-II (Deb et al. 2002) as an ask/tell loop: the algorithm proposes genomes, the caller
 * evaluates them however it likes (a forward pass, a training run, a pool of workers) and
 * tells the objectives back. Between a tell and the next ask the whole search is a small
 * JSON value (`state()`), so an interrupted search resumes exactly where it stopped.
 */
import { ArgumentError, SerializationError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { decodeGenome, decodeNumber, encodeGenome, encodeNumber, type EncodedGenome, type EncodedNumber } from './genome-codec.js';
import { binaryTournament } from './selection.js';
import { rankAndCrowdingSurvival } from './survival.js';
import type { Crossover, Genome, Individual, Mutation, Population, Sampling, Selection, Survival, Termination } from './types.js';

export interface Nsga2Options<G extends Genome> {
  popSize: number;
  sampling: Sampling<G>;
  crossover: Crossover<G>;
  mutation: Mutation<G>;
  /** The only source of randomness; its state is part of `state()`. */
  rng: Rng;
  /** Default: binary tournament on (rank, crowding). */
  selection?: Selection;
  /** Default: NSGA-II's rank-and-crowding survival. */
  survival?: Survival;
  /** Consulted by done(); without one the search never reports done. */
  termination?: Termination;
  /** Children per generation. Default popSize. */
  nOffspring?: number;
}

export interface Nsga2State {
  format: 'topiary.nsga2';
  version: 1;
  popSize: number;
  nOffspring: number;
  generation: number;
  evaluations: number;
  rng: number[];
  population: { genome: EncodedGenome; objectives: EncodedNumber[]; rank: number; crowding: EncodedNumber }[];
  /** Genomes handed out by ask() and not yet told; null when none are outstanding. */
  pending: EncodedGenome[] | null;
}

export class Nsga2<G extends Genome> {
  private readonly opts: Nsga2Options<G>;
  private readonly selection: Selection;
  private readonly survival: Survival;
  private readonly popSize: number;
  private readonly nOffspring: number;
  /** Consulted by done(). */
  readonly termination: Termination | undefined;
  private pop: Population<G> = [];
  private pending: G[] | null = null;
  private gen = 0;
  private evals = 0;

  constructor(options: Nsga2Options<G>) {
    const { popSize, nOffspring = popSize } = options;
    if (!Number.isInteger(popSize) || popSize < 2) throw new ArgumentError(`Nsga2: popSize must be an integer >= 2, got ${popSize}`);
    if (!Number.isInteger(nOffspring) || nOffspring < 1) throw new ArgumentError(`Nsga2: nOffspring must be a positive integer, got ${nOffspring}`);
    this.opts = options;
    this.popSize = popSize;
    this.nOffspring = nOffspring;
    this.selection = options.selection ?? binaryTournament();
    this.survival = options.survival ?? rankAndCrowdingSurvival();
    this.termination = options.termination;
  }

  /** Completed tell()s; the initial population is generation 1. */
  get generation(): number { return this.gen; }
  get evaluations(): number { return this.evals; }
  /** The current (survived) population, ranked. Read it, don't modify it. */
  get population(): Population<G> { return this.pop; }

  /** True when the termination, if any, says the search is over. */
  done(): boolean {
    return this.termination?.isDone({ generation: this.gen, evaluations: this.evals }) ?? false;
  }

  /**
   * Genomes to evaluate: the initial sample first, offspring afterwards. Asking again
   * before telling returns the same batch, so a caller that lost its results can retry.
   * The genomes are the algorithm's own: evaluate them, don't modify them.
   */
  ask(): G[] {
    if (this.pending === null) this.pending = this.gen === 0 ? this.opts.sampling.sample(this.popSize, this.opts.rng) : this.mate();
    return this.pending;
  }

  /** Objectives (all minimized) of the genomes of the last ask(), in the same order. */
  tell(objectives: readonly (readonly number[])[]): void {
    const batch = this.pending;
    if (batch === null) throw new ArgumentError('Nsga2.tell: nothing was asked; call ask() first');
    if (objectives.length !== batch.length) {
      throw new ArgumentError(`Nsga2.tell: asked ${batch.length} genomes, told ${objectives.length} objective vectors`);
    }
    const nObj = this.pop[0]?.objectives.length ?? objectives[0]?.length;
    const told: Population<G> = batch.map((genome, i) => {
      const o = objectives[i];
      if (o.length !== nObj || nObj === 0) throw new ArgumentError(`Nsga2.tell: objective vector ${i} has ${o.length} values, expected ${nObj}`);
      for (let k = 0; k < o.length; k++) {
        if (Number.isNaN(o[k])) throw new ArgumentError(`Nsga2.tell: objective ${k} of genome ${i} is NaN`);
      }
      return { genome, objectives: Array.from(o), rank: 0, crowding: 0 };
    });
    this.pop = this.survival.survive(this.pop.concat(told), this.popSize);
    this.pending = null;
    this.gen++;
    this.evals += batch.length;
  }

  /** The non-dominated individuals of the current population. */
  result(): Population<G> {
    return this.pop.filter((ind) => ind.rank === 0);
  }

  /** A JSON-safe snapshot; `JSON.stringify` it as is. */
  state(): Nsga2State {
    return {
      format: 'topiary.nsga2',
      version: 1,
      popSize: this.popSize,
      nOffspring: this.nOffspring,
      generation: this.gen,
      evaluations: this.evals,
      rng: this.opts.rng.getState(),
      population: this.pop.map((ind) => ({
        genome: encodeGenome(ind.genome),
        objectives: ind.objectives.map(encodeNumber),
        rank: ind.rank,
        crowding: encodeNumber(ind.crowding),
      })),
      pending: this.pending === null ? null : this.pending.map(encodeGenome),
    };
  }

  /**
   * Rebuilds a search from `state()`. The parts (operators, termination) are code, not
   * data, so they are passed again; `options.rng` is set to the saved generator state.
   */
  static restore<G extends Genome>(state: Nsga2State, options: Nsga2Options<G>): Nsga2<G> {
    if (state?.format !== 'topiary.nsga2' || state.version !== 1) {
      throw new SerializationError(`Nsga2.restore: not an NSGA-II state (format ${JSON.stringify(state?.format)}, version ${JSON.stringify(state?.version)})`);
    }
    const nOffspring = options.nOffspring ?? options.popSize;
    if (state.popSize !== options.popSize || state.nOffspring !== nOffspring) {
      throw new SerializationError(`Nsga2.restore: state has popSize ${state.popSize} / nOffspring ${state.nOffspring}, options ${options.popSize} / ${nOffspring}`);
    }
    const algo = new Nsga2<G>(options);
    options.rng.setState(state.rng);
    algo.gen = state.generation;
    algo.evals = state.evaluations;
    algo.pop = state.population.map((p): Individual<G> => ({
      genome: decodeGenome(p.genome) as G,
      objectives: p.objectives.map(decodeNumber),
      rank: p.rank,
      crowding: decodeNumber(p.crowding),
    }));
    algo.pending = state.pending === null ? null : state.pending.map((e) => decodeGenome(e) as G);
    return algo;
  }

  private mate(): G[] {
    const { crossover, mutation, rng } = this.opts;
    const k = crossover.parents;
    const out: G[] = [];
    while (out.length < this.nOffspring) {
      const before = out.length;
      const matings = Math.ceil((this.nOffspring - out.length) / k);
      const picks = this.selection.select(this.pop, matings * k, rng);
      for (let m = 0; m < matings && out.length < this.nOffspring; m++) {
        const parents = Array.from(picks.subarray(m * k, (m + 1) * k), (i) => this.pop[i].genome);
        for (const child of crossover.cross(parents, rng)) {
          if (out.length < this.nOffspring) out.push(mutation.mutate(child, rng));
        }
      }
      if (out.length === before) throw new ArgumentError(`Nsga2: crossover ${crossover.name} returned no children`);
    }
    return out;
  }
}

/** Runs the ask/tell loop to its termination with a synchronous evaluator; returns result(). */
export function minimize<G extends Genome>(algo: Nsga2<G>, evaluate: (genome: G) => number[]): Population<G> {
  if (algo.termination === undefined) {
    throw new ArgumentError('minimize: the algorithm has no termination; give Nsga2 a `termination`');
  }
  while (!algo.done()) algo.tell(algo.ask().map(evaluate));
  return algo.result();
}
