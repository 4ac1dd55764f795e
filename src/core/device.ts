/** Devices: 'cpu', 'cuda', 'cuda:N'. CUDA exists only where the linked libtorch has it. */
import { call } from './binding.js';
import { ArgumentError } from './errors.js';

export type Device = string;

export function cudaAvailable(): boolean {
  return call('cudaAvailable') as boolean;
}

export function checkDevice(d: Device): Device {
  if (d === 'cpu') return d;
  if (/^cuda(:\d+)?$/.test(d)) {
    if (!cudaAvailable()) throw new ArgumentError(`device '${d}' requested but this libtorch has no CUDA (set LIBTORCH to a CUDA build)`);
    return d;
  }
  throw new ArgumentError(`unknown device '${d}' (expected cpu, cuda or cuda:N)`);
}

/** The best device available: cuda when present, else cpu. */
export function defaultDevice(): Device {
  return cudaAvailable() ? 'cuda' : 'cpu';
}
