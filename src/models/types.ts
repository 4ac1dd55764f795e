import type { Module } from '../nn/module.js';

export interface ModelConfig {
  /** Input shape of one example, [C, H, W]. */
  inputShape: number[];
  numClasses: number;
  /** Hidden widths for MLPs (e.g. [512, 256]). */
  widths?: number[];
  /** Weight initialization scheme (see nn/init.ts); 'default' is PyTorch's. */
  init?: string;
}

export interface ModelSpec {
  name: string;
  description: string;
  build(c: ModelConfig): Module;
}
