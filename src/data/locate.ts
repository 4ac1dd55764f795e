/**
 * Where datasets live on disk.
 *
 * One root, chosen by precedence: the explicit `dataDir` option, else $TOPIARY_DATA, else the
 * user cache ($XDG_CACHE_HOME/topiary/datasets, defaulting to ~/.cache/topiary/datasets). Only
 * one root is consulted, never a search path, so which copy a run used is never ambiguous.
 * Under the root, each dataset has its own folder (spec.folder): `<root>/mnist/...`.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DatasetSpec } from './sources.js';

export interface LocateOptions {
  /** Data root; overrides $TOPIARY_DATA and the cache. */
  dataDir?: string;
  /** Environment to read (default process.env); tests pass their own. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The data root, as an absolute path (it need not exist yet). */
export function dataRoot(opts: LocateOptions = {}): string {
  const env = opts.env ?? process.env;
  // An empty variable counts as unset, as shells commonly leave `export X=` behind.
  if (opts.dataDir) return resolve(opts.dataDir);
  if (env.TOPIARY_DATA) return resolve(env.TOPIARY_DATA);
  const cache = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(env.HOME || homedir(), '.cache');
  return join(cache, 'topiary', 'datasets');
}

/** The folder holding one dataset's files. */
export function datasetDir(spec: DatasetSpec, opts: LocateOptions = {}): string {
  return join(dataRoot(opts), spec.folder);
}

/**
 * Names a file may have on disk, preferred first. IDX files are published gzipped, but many
 * copies (and torchvision's raw/ folder) hold them decompressed; the reader handles both.
 */
export function candidateNames(name: string): string[] {
  return name.endsWith('.gz') ? [name, name.slice(0, -3)] : [name];
}

/** The path of an existing file for `name` in `dir` (either spelling), or undefined. */
export function findFile(dir: string, name: string): string | undefined {
  for (const candidate of candidateNames(name)) {
    const path = join(dir, candidate);
    if (existsSync(path) && statSync(path).isFile()) return path;
  }
  return undefined;
}
