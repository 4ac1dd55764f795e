/** The method registry: keys appear in the CLI, recipes and run hashes, so they never change once released. */
import { RegistryError } from '../../core/errors.js';
import { gmp } from './gmp.js';
import { grasp } from './grasp.js';
import { lth } from './lth.js';
import { magnitude } from './magnitude.js';
import { oneShotAny } from './one-shot-any.js';
import { pmp } from './pmp.js';
import { random } from './random.js';
import { snip } from './snip.js';
import type { PruneMethod } from './types.js';

export const METHODS: Record<string, PruneMethod> = Object.fromEntries([pmp, gmp, magnitude, random, lth, snip, grasp, oneShotAny].map((m) => [m.name, m]));
export const METHOD_NAMES = Object.keys(METHODS);

export function getMethod(name: string): PruneMethod {
  const m = METHODS[name];
  if (!m) throw new RegistryError(`unknown pruning method '${name}' (known: ${METHOD_NAMES.join(', ')})`);
  return m;
}

export type { PruneMethod, PruneJob, PruneEnv, PruneOptions, TrainSettings, DataLike, StageOptions } from './types.js';
