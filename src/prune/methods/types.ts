/**
 * What a pruning method is: a value with its own zod hyperparameters and a `run` that trains through
 * an injected environment. The environment (runTraining, setupData) lives in src/experiment, a
 * layer above this one; passing it in keeps imports flowing one way (DESIGN.md) while the methods
 * stay stages "on top of runTraining".
 */
import type { z } from 'zod';
import type { DataLoader } from '../../data/loader.js';
import type { Module } from '../../nn/module.js';
import type { Callback, EpochRecord } from '../../train/loop.js';
import type { Granularity, Scope } from '../target.js';
import type { PruneUnit } from '../heads.js';

/** The fields of a training configuration (experiment/config.ts TrainConfig) that pruning reads. */
export interface TrainSettings {
  model: string;
  dataset: string;
  epochs: number;
  seed: number;
  init: string;
  device: string;
  batchSize: number;
  widths?: number[];
  [k: string]: unknown;
}

/** The data a run sets up (experiment/data-setup.ts DataBundle). */
export interface DataLike {
  trainLoader: DataLoader;
  valLoader: DataLoader | null;
  testLoader: DataLoader;
  inputShape: number[];
  numClasses: number;
  dispose(): void;
}

export interface StageOptions {
  out: string;
  dataDir?: string;
  progress?: boolean;
  /** Stop after n epochs of this invocation (tests of resuming). */
  stopAfterEpochs?: number;
  /** Folder for TensorBoard event files (experiment/train-run.ts RunOptions). */
  tensorboard?: string;
}

export interface StageHooks {
  kind: string;
  model?: (data: DataLike) => Module;
  callbacks?: (model: Module, data: DataLike) => Callback[];
  report?: (model: Module, data: DataLike) => Record<string, unknown>;
  /** The method's options: a run folder resumes only a run with the same ones. */
  identity?: Record<string, unknown>;
}

export interface StageRun {
  model: Module;
  data: DataLike;
  history: EpochRecord[];
  result: Record<string, unknown>;
}

/** What the experiment layer lends to a method. */
export interface PruneEnv {
  /** experiment/train-run.ts runTraining: trains, evaluates the test set once, writes result.json and model.safetensors. */
  runTraining(c: TrainSettings, o: StageOptions, h: StageHooks): Promise<StageRun>;
  /** experiment/data-setup.ts setupData. */
  setupData(c: TrainSettings, o: { dataDir?: string }): Promise<DataLike>;
  /** Versions recorded in result.json. */
  versions(): Record<string, unknown>;
}

/** Options every method takes (the common part of the prune schema). */
export interface CommonPruneOptions {
  method: string;
  sparsity: number;
  scope?: Scope;
  granularity: Granularity;
  /** Regular expression on parameter names (default: every weight with more than one dim). */
  prunable?: string;
  /** A trained model: a model.safetensors file or a run folder holding one. */
  from?: string;
  /** Structured: channels (graph groups, the default), or a transformer's heads and / or block MLP neurons. */
  unit?: PruneUnit;
}

export type PruneOptions = CommonPruneOptions & Record<string, unknown>;

export interface PruneJob {
  train: TrainSettings;
  prune: PruneOptions;
  run: StageOptions;
}

/** Whether a method takes a trained model (--from): needs one, may take one, or starts from initialization. */
export type FromPolicy = 'required' | 'optional' | 'forbidden';

export interface MethodIssue { path: string; message: string }

export interface PruneMethod {
  name: string;
  description: string;
  /** The method's own options (zod object shape), merged with the common ones. */
  hparams: z.ZodRawShape;
  from: FromPolicy;
  /** The scope when none is given (LTH prunes per layer). */
  defaultScope: Scope;
  /** Checks across fields (schedule end after start, phase within the epochs...). */
  check?(o: PruneOptions, train: TrainSettings): MethodIssue[];
  run(job: PruneJob, env: PruneEnv): Promise<Record<string, unknown>>;
}
