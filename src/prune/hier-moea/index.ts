/**
 * HIER-MOEA (arXiv 2604.01076): pruning as a bi-objective search (validation error against the
 * fraction of weights kept), coarse over per-layer thresholds, then fine over the bits of the
 * surviving weights. docs/methods/hier-moea.md gives every choice.
 */
export { SearchConfig, IMPORTANCE_NAMES, SEARCH_IDENTITY } from './config.js';
export { PrunableLayout, ascendingRanks, countOnes, type LayerMasks } from './layout.js';
export { MaskedEvaluator, type EvaluatorData, type EvalBatch, type CandidateResult, type BatchEvaluator } from './evaluator.js';
export { EvalPool, type EvalPoolOptions } from './eval-pool.js';
export { ThresholdDecoder, stratifiedSampling, phase1Bounds, MAX_LAYER_PRUNE } from './phase1.js';
export { selectAnchors, type Anchors } from './anchors.js';
export { BitSpace, taylorScores } from './phase2.js';
export { normalizedImportance, bitProbabilities, targetDensities, importanceSampling, samplingProbabilities, type ImportanceSamplingOptions } from './importance.js';
export { AdaptiveMutation, adaptRate, DEFAULT_RULE, type RateRule, type Rates, type Adaptation } from './adaptive-mutation.js';
export { GlobalMagnitude } from './global-magnitude.js';
export { saveMaskBits, loadMaskBits } from './mask-io.js';
export { fineTune, type FineTuneOptions, type FineTuneResult } from './finetune.js';
export { runPhases, frontOf, HV_REF, type SearchData, type GenerationRecord, type SearchOutcome, type SearchLoopOptions } from './search.js';
export { hierMoeaSearch, REPORT_SPARSITIES, type SearchResult, type PickResult, type FinalSolution, type HierMoeaOptions } from './run.js';
