/** Versions and machine facts recorded in every result.json. */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { getNumThreads, torchVersion } from '../core/runtime.js';

let pkgVersion: string | undefined;
export function topiaryVersion(): string {
  if (pkgVersion) return pkgVersion;
  try {
    pkgVersion = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;
  } catch {
    pkgVersion = 'unknown';
  }
  return pkgVersion;
}

export function versions(): Record<string, string | number> {
  return {
    topiary: topiaryVersion(),
    libtorch: torchVersion(),
    node: process.version,
    threads: getNumThreads(),
    cpu: cpus()[0]?.model ?? 'unknown',
  };
}
