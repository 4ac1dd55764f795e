/**
 * Checkpoints: one folder per epoch (`epoch_<n>/`: model and optimizer safetensors, callback state,
 * loop state JSON), made complete under a temporary name and renamed; then `latest.json` is replaced
 * atomically to point at it. A crash at any moment leaves the previous checkpoint intact.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SerializationError } from '../core/errors.js';
import { loadSafetensors, saveSafetensors } from '../tensor/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';

export interface CheckpointParts {
  tensors: Record<string, Record<string, Tensor>>;
  json: Record<string, unknown>;
}

export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}

export function saveCheckpoint(dir: string, epoch: number, parts: CheckpointParts): string {
  mkdirSync(dir, { recursive: true });
  const name = `epoch_${epoch}`;
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  for (const [file, ts] of Object.entries(parts.tensors)) saveSafetensors(join(tmp, `${file}.safetensors`), ts);
  writeFileSync(join(tmp, 'state.json'), JSON.stringify(parts.json, null, 2) + '\n');
  const final = join(dir, name);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  const prev = readLatest(dir);
  writeJsonAtomic(join(dir, 'latest.json'), { epoch, path: name });
  if (prev && prev.path !== name) rmSync(join(dir, prev.path), { recursive: true, force: true });
  return final;
}

function readLatest(dir: string): { epoch: number; path: string } | null {
  const f = join(dir, 'latest.json');
  if (!existsSync(f)) return null;
  try {
    return JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    throw new SerializationError(`${f}: unreadable checkpoint pointer (${(e as Error).message})`, { cause: e });
  }
}

/** The newest checkpoint in `dir`, or null. The caller disposes the tensors. */
export function loadCheckpoint(dir: string, files: string[]): (CheckpointParts & { epoch: number; path: string }) | null {
  const latest = readLatest(dir);
  if (!latest) return null;
  const base = join(dir, latest.path);
  const tensors: Record<string, Record<string, Tensor>> = {};
  for (const f of files) {
    const p = join(base, `${f}.safetensors`);
    if (existsSync(p)) tensors[f] = loadSafetensors(p).tensors;
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(join(base, 'state.json'), 'utf8'));
  } catch (e) {
    throw new SerializationError(`${join(base, 'state.json')}: unreadable (${(e as Error).message})`, { cause: e });
  }
  return { tensors, json, epoch: latest.epoch, path: base };
}
