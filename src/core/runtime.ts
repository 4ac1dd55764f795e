/** Process-wide engine settings: seeding, threads, versions. */
import { call } from './binding.js';
import { ArgumentError } from './errors.js';

/** Seed libtorch's generators: every random op after this is reproducible on CPU. */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) throw new ArgumentError(`manualSeed: seed must be a non-negative integer, got ${seed}`);
  call('manualSeed', seed);
}

export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new ArgumentError(`setNumThreads: n must be a positive integer, got ${n}`);
  call('setNumThreads', n);
}

export function getNumThreads(): number {
  return call('getNumThreads') as number;
}

export function torchVersion(): string {
  return call('version') as string;
}
