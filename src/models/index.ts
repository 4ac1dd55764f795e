export { MODELS, MODEL_NAMES, getModel, createModel } from './registry.js';
export { modelStats, type ModelStats, type LayerStats } from './stats.js';
export type { ModelConfig, ModelSpec } from './types.js';
export { buildMlp } from './mlp.js';
