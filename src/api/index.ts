/**
 * The pruning API: every method as a few typed calls (docs/api.md). One-shot functions return the
 * masks; during-training methods are callbacks for `train()`; EVO-POP and HIER-MOEA have their
 * own small surfaces; extensions register by name.
 */
export { prune, magnitude, random, snip, grasp, headImportance, type OneShotOptions, type PruneRecord, type PruneResult } from './one-shot.js';
export { pmp, gmp, type PmpOptions, type GmpOptions, type PruningCallback } from './during.js';
export { lth, type LthOptions, type LthResult, type LthRound, type LthTrain } from './lth.js';
export { populationModel, selection, removeByMass, dynamics, fitness, type Units, type SelectionOptions, type SelectionCallback, type Removal } from './evo-pop.js';
export { hierMoea, hierMoeaLoop, HierMoeaLoop, toMaskSet, type HierMoeaOptions, type HierMoeaData, type HierMoeaResult, type ParetoSolution, type HierMoeaLoopOptions, type Candidate, type FrontPoint } from './hier-moea.js';
export { registerCriterion, registerSchedule, registerDynamics, registerFitness, loadPlugins, CriterionValue, ScheduleValue, DynamicsValue, FitnessValue } from './extend.js';
