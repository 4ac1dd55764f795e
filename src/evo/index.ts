/**
 * Generic multi-objective evolution (knows nothing of tensors): NSGA-II assembled from
 * small parts, hypervolume, knee selection and ZDT test problems.
 */
export { BitSet, popcount32 } from './bitset.js';
export type {
  Bounds, Crossover, Genome, Individual, Mutation, Population, Problem, Progress, Sampling, Selection, Survival, Termination,
} from './types.js';
export { binarySampling, realUniformSampling, seededSampling, type BinarySamplingOptions } from './sampling.js';
export { ParetoArchive, type ArchiveEntry, type ArchiveState } from './archive.js';
export { crowdingDistance, dominates, nonDominatedSort, type NonDominatedSorting } from './sorting.js';
export { binaryTournament } from './selection.js';
export { rankAndCrowdingSurvival } from './survival.js';
export { polynomialMutation, sbx, type PolynomialMutationOptions, type SbxOptions } from './real-operators.js';
export {
  bitFlipMutation, twoPointCrossover, uniformCrossover, type BinaryCrossoverOptions, type BitFlipMutationOptions,
} from './binary-operators.js';
export { anyOf, maxEvaluations, maxGenerations } from './termination.js';
export { decodeGenome, encodeGenome, type EncodedGenome, type EncodedNumber } from './genome-codec.js';
export { minimize, Nsga2, type Nsga2Options, type Nsga2State } from './nsga2.js';
export { hypervolume, hypervolume2d } from './hypervolume.js';
export { kneeDistances, kneePoint } from './knee.js';
export { zdt1, zdt2, type ZdtProblem } from './zdt.js';
