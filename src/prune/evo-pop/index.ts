/** EVO-POP: pruning as evolution (populations with masses under selection dynamics, then removal). */
export { PopulationLayer, populationLayers, toPopulationModel, passesScale, type Probe } from './population-layer.js';
export { FITNESS, FITNESS_NAMES, getFitness, gradient, taylor, activation, type Fitness } from './fitness.js';
export { DYNAMICS, DYNAMICS_NAMES, getDynamics, selectionStep, replicator, exponential, growthDecay, replicatorMutator, type Dynamics, type DynamicsParams } from './dynamics.js';
export { EvoConfig, EVO_KEYS, CRITERIA, DEFAULT_CRITERIA, type Criterion } from './config.js';
export { EvoPop, normalizeFitness, type SelectionOptions, type MassTrajectory } from './selection.js';
export { headImportance, meanActivations, scorePopulations, selectKeep, maskRemoved, type Scores } from './criteria.js';
export { physicalPrune, savePruned, loadPruned, buildFromArchitecture, describe, build, type Architecture, type LayerSpec } from './physical.js';
export { pruneStage, withValidation, type PruneRow, type PruneStageOptions, type StoredRow } from './prune-stage.js';
export { massTable, controlTable, extinctTable, checks, checkTable, bestOnValidation, selectionTable, VAL_TIE, trajectoryRows, compactSvg, type Arm, type RunLike, type Check, type Selection } from './report.js';
export { HeadPopulation, NeuronPopulation, TokenPopulation, allPopulations, populationModelFor, toTransformerPopulationModel, isTransformerPopulation, physicalPruneTransformer, saveTransformer, loadPrunedTransformer, buildTransformerFromArchitecture, POPULATION_KINDS, type AnyPopulation, type VitArchitecture, type PopulationKind, type TransformerUnits } from './heads.js';
