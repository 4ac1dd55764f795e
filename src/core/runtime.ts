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

/** The CPU generator's state as bytes, for checkpoints (restores dropout, init and sampling exactly). */
export function getRngState(): Uint8Array {
  const h = call('getRngState');
  try {
    return new Uint8Array(call('toBuffer', h) as ArrayBuffer);
  } finally {
    call('dispose', h);
  }
}

export function setRngState(state: Uint8Array): void {
  const h = call('fromBuffer', state, [state.length], 0, null);
  try {
    call('setRngState', h);
  } finally {
    call('dispose', h);
  }
}
