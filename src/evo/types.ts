/**
 * The small parts evolution is assembled from (pymoo's decomposition): a sampling makes
 * the first genomes, a crossover mates parents, a mutation perturbs a child, a survival
 * keeps the best, a termination says when to stop. All objectives are minimized.
 * Every random draw goes through the `Rng` passed in, so a seed fixes a whole run.
 */
import type { Rng } from '../core/rng.js';
import type { BitSet } from './bitset.js';

/** Real genomes are Float64Array; binary genomes are packed BitSets. */
export type Genome = Float64Array | BitSet;

/** An evaluated genome, with its place in the population's non-dominated order. */
export interface Individual<G extends Genome = Genome> {
  genome: G;
  /** Objective values, all minimized. */
  objectives: number[];
  /** Index of its non-dominated front, 0 = best. */
  rank: number;
  /** Crowding distance within its front; Infinity at the front's extremes. */
  crowding: number;
}

export type Population<G extends Genome = Genome> = Individual<G>[];

/** Box bounds of a real search space. */
export interface Bounds {
  lower: Float64Array;
  upper: Float64Array;
}

export interface Sampling<G extends Genome> {
  readonly name: string;
  sample(n: number, rng: Rng): G[];
}

/** Mates `parents` genomes into children; children are always fresh copies, never aliases. */
export interface Crossover<G extends Genome> {
  readonly name: string;
  readonly parents: number;
  cross(parents: readonly G[], rng: Rng): G[];
}

/**
 * Perturbs a genome in place and returns it. In place because a child is already a fresh
 * copy and binary genomes can be large.
 */
export interface Mutation<G extends Genome> {
  readonly name: string;
  mutate(genome: G, rng: Rng): G;
}

/** Picks parent indices from a ranked population. */
export interface Selection {
  readonly name: string;
  select(pop: Population, count: number, rng: Rng): Int32Array;
}

/** Keeps `n` of a population, setting rank and crowding on the survivors. */
export interface Survival {
  readonly name: string;
  survive<G extends Genome>(pop: Population<G>, n: number): Population<G>;
}

export interface Progress {
  /** Completed tell()s; the initial population counts as generation 1 (as in pymoo). */
  generation: number;
  /** Genomes evaluated so far. */
  evaluations: number;
}

export interface Termination {
  readonly name: string;
  isDone(progress: Progress): boolean;
}

/** A benchmark problem over a real box. */
export interface Problem {
  readonly name: string;
  readonly nVar: number;
  readonly nObj: number;
  readonly bounds: Bounds;
  evaluate(x: Float64Array): number[];
}
