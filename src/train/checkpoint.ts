/**
 * Checkpoints: one folder per epoch (`epoch_<n>/`: model and optimizer safetensors, callback state,
 * loop state JSON), made complete under a temporary name and renamed; then `latest.json` is replaced
 * atomically to point at it. A crash at any moment leaves the previous checkpoint intact.
 *
 * Everything read back is distrusted: `latest.json` may only point at `epoch_<its epoch>` inside the
 * checkpoint folder (no `..`, no absolute path, no symlink leading out), so neither a resume nor the
 * removal of the previous checkpoint can reach outside the run. Files are read only when regular.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SerializationError } from '../core/errors.js';
import { assertInside, LIMITS, readJsonFile, resolveInside } from '../core/safe-fs.js';
import { loadSafetensors, saveSafetensors } from '../tensor/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';

export interface CheckpointParts {
  tensors: Record<string, Record<string, Tensor>>;
  json: Record<string, unknown>;
}

export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
    renameSync(tmp, path);
  } catch (e) {
    try { rmSync(tmp, { force: true }); } catch { /* nothing to clean */ }
    throw new SerializationError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
}

const NAME = /^epoch_(0|[1-9]\d{0,8})$/;

export function saveCheckpoint(dir: string, epoch: number, parts: CheckpointParts): string {
  mkdirSync(dir, { recursive: true });
  const name = `epoch_${epoch}`;
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  for (const [file, ts] of Object.entries(parts.tensors)) saveSafetensors(join(tmp, `${file}.safetensors`), ts);
  writeFileSync(join(tmp, 'state.json'), JSON.stringify(parts.json, null, 2) + '\n');
  const final = join(dir, name);
  // Read (and check) the pointer before touching anything it names.
  const prev = readLatest(dir);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  writeJsonAtomic(join(dir, 'latest.json'), { epoch, path: name });
  if (prev && prev.path !== name) rmSync(prev.base, { recursive: true, force: true });
  return final;
}

/** latest.json, checked: `{epoch, path}` with path `epoch_<epoch>` resolving inside `dir`. */
function readLatest(dir: string): { epoch: number; path: string; base: string } | null {
  const f = join(dir, 'latest.json');
  if (!existsSync(f)) return null;
  const v = readJsonFile(f, { what: 'checkpoint pointer', maxBytes: 64 << 10 }) as { epoch?: unknown; path?: unknown } | null;
  const bad = (why: string): never => { throw new SerializationError(`${f}: ${why}; refusing to resume from it (remove the checkpoints folder to start over)`); };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('not a checkpoint pointer (expected {"epoch", "path"})');
  const { epoch, path } = v as { epoch: unknown; path: unknown };
  if (!(typeof epoch === 'number' && Number.isInteger(epoch) && epoch >= 0)) bad(`epoch ${JSON.stringify(epoch)} is not a non-negative integer`);
  if (typeof path !== 'string') bad(`path ${JSON.stringify(path)} is not a string`);
  const base = resolveInside(dir, path as string, f);
  if (!NAME.test(path as string) || path !== `epoch_${epoch}`) bad(`path ${JSON.stringify(path)} is not the checkpoint folder of epoch ${epoch as number} (epoch_${epoch as number})`);
  return { epoch: epoch as number, path: path as string, base };
}

/** A file of the checkpoint folder: a regular file (not a symlink) inside it, or null when absent. */
function pieceOf(base: string, file: string, pointer: string): string | null {
  const p = join(base, file);
  let st;
  try {
    st = lstatSync(p);
  } catch {
    return null;
  }
  if (st.isSymbolicLink()) assertInside(base, p, pointer);
  return p;
}

export interface LoadCheckpointOptions {
  /** Files that must be there: a checkpoint without one of them is refused, naming it. */
  required?: string[];
}

/** The newest checkpoint in `dir`, or null. The caller disposes the tensors. */
export function loadCheckpoint(dir: string, files: string[], opts: LoadCheckpointOptions = {}): (CheckpointParts & { epoch: number; path: string }) | null {
  const latest = readLatest(dir);
  if (!latest) return null;
  const pointer = join(dir, 'latest.json');
  const base = latest.base;
  if (!existsSync(base)) throw new SerializationError(`${pointer}: points at ${base}, which does not exist; refusing to resume (remove the checkpoints folder to start over)`);
  assertInside(dir, base, pointer);
  const tensors: Record<string, Record<string, Tensor>> = {};
  const free = () => { for (const g of Object.values(tensors)) for (const t of Object.values(g)) t.dispose(); };
  try {
    for (const f of new Set([...files, ...(opts.required ?? [])])) {
      const p = pieceOf(base, `${f}.safetensors`, pointer);
      if (p) tensors[f] = loadSafetensors(p).tensors;
      else if (opts.required?.includes(f)) {
        throw new SerializationError(`${join(base, `${f}.safetensors`)}: missing from the checkpoint; refusing to resume without it (remove the checkpoints folder to start over)`);
      }
    }
    const stateFile = pieceOf(base, 'state.json', pointer) ?? join(base, 'state.json');
    const json = readJsonFile(stateFile, { what: 'checkpoint state', maxBytes: LIMITS.json });
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new SerializationError(`${stateFile}: not a JSON object`);
    return { tensors, json: json as Record<string, unknown>, epoch: latest.epoch, path: base };
  } catch (e) {
    free();
    throw e;
  }
}

/**
 * Debris of checkpoint writes killed part-way: `.epoch_N.tmp-PID` folders, `*.tmp-PID` files, and
 * `epoch_N` folders that latest.json does not point at (a rename or a removal cut short). Returns
 * the names removed. Only names this module writes are touched; nothing outside `dir`.
 */
export function cleanCheckpointDebris(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const latest = readLatest(dir);
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const debris = /^\.epoch_\d+\.tmp-\d+$/.test(name) || /\.tmp-\d+$/.test(name) || (NAME.test(name) && name !== latest?.path);
    if (!debris) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
