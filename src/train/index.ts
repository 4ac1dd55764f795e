export { train, type TrainOptions, type TrainResult, type Callback, type StepContext, type EpochRecord, type ProgressEvent } from './loop.js';
export { evaluate, type EvalResult, type BatchLike } from './evaluate.js';
export { saveCheckpoint, loadCheckpoint, writeJsonAtomic } from './checkpoint.js';
