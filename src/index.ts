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
export * as evo from './evo/index.js';
export { TrainConfig, validate } from './experiment/config.js';
export { runTraining } from './experiment/train-run.js';
