/**
 * topiary: the one curated public surface. Everything a user imports comes from here.
 */
export * from './core/errors.js';
export { type DType, DTYPES } from './core/dtype.js';
export { cudaAvailable, defaultDevice, type Device } from './core/device.js';
export { manualSeed, setNumThreads, getNumThreads, torchVersion, getRngState, setRngState } from './core/runtime.js';
export { Rng } from './core/rng.js';
export * from './tensor/index.js';
export * as nn from './nn/index.js';
export { Module } from './nn/module.js';
export * as optim from './optim/index.js';
export * as data from './data/index.js';
export { createModel, modelStats, MODEL_NAMES, type ModelConfig, type ModelStats } from './models/index.js';
export { train, evaluate, type Callback, type TrainOptions, type TrainResult, type EvalResult } from './train/index.js';
export { MaskSet, defaultPrunable, prunableParameters } from './prune/masks.js';
// Pruning: every method in a few typed calls, and the values they take (docs/api.md).
export * from './api/index.js';
export { PruneTarget, type TargetOptions, type Scope, type Granularity, type LayerCount } from './prune/target.js';
export type { PruneUnit } from './prune/heads.js';
export { userCriterion, criterionNames, type Criterion, type ScoreContext } from './prune/criteria.js';
export { SCHEDULES, type Schedule } from './prune/schedules.js';
export { scoringBatch } from './prune/saliency.js';
export type { StepRecord } from './prune/step.js';
export type { Dynamics, DynamicsParams } from './prune/evo-pop/dynamics.js';
export type { Fitness } from './prune/evo-pop/fitness.js';
export { PopulationLayer } from './prune/evo-pop/population-layer.js';
export type { Architecture } from './prune/evo-pop/physical.js';
export type { LayerMasks } from './prune/hier-moea/layout.js';
export type { StepContext, EpochRecord } from './train/loop.js';
export type { BatchLike } from './train/evaluate.js';
// The traced graph, its interpreter and ONNX export (docs/design.md, "Graph and ONNX").
export { trace, TraceError, type TraceOptions } from './graph/trace.js';
export { Graph, type Node as GraphNode, type Value as GraphValue, type Dim, type OpName } from './graph/ir.js';
export { GraphModule, runGraph, saveGraphModule, loadGraphModule } from './graph/run.js';
export { graphStats, type GraphStats } from './graph/flops.js';
export { exportOnnx, encodeOnnx, OnnxExportError, type OnnxOptions, type ExportResult } from './graph/onnx-export.js';
export { importOnnx, OnnxImportError, type ImportOptions } from './graph/onnx-import.js';
export { shrink, shrinkModel, ShrinkError, type ShrinkResult, type MaskInput } from './graph/shrink.js';
export { dependencyGroups, analyseGraph, type ChannelGroup, type DependencyGraph } from './graph/depgroups.js';
export { saveSparseSafetensors, loadSparseSafetensors, encodeSparseSafetensors, decodeSparseSafetensors, gzipSize, sparseLinear, setSparseInference, withDenseInference, weightDensity, sparseCacheInfo, clearSparseCache, SPARSE_RULE, sparseMaxDensity } from './nn/sparse/index.js';
export * as evo from './evo/index.js';
export { TrainConfig, validate } from './experiment/config.js';
export { runTraining } from './experiment/train-run.js';
