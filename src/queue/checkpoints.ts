/**
 * A run's checkpoints travel with its job, so that a run retried on another worker (its first
 * worker killed, its machine lost) resumes from its last finished epoch instead of starting over.
 * While a run trains, its worker copies each new checkpoint (checkpoints/latest.json, the epoch's
 * folder, and run.json, without which a checkpoint is refused) into the store under
 * runs/<job id>/checkpoint/epoch_<n>/ and records the files with their sha256 as the job's
 * progress. A worker that takes the job over into an empty folder fetches them (each checked by
 * hash), latest.json last, and the run resumes as a local run resumes from its folder.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { RelPath, StoredArtifactSchema } from './jobs.js';
import type { Store } from './store.js';

const CheckpointFile = z.object({ path: RelPath }).extend(StoredArtifactSchema.shape).strict();
export const CheckpointProgress = z.object({ checkpoint: z.object({ epoch: z.number().int().min(0), files: z.array(CheckpointFile).min(1) }).strict() });
export type CheckpointProgress = z.infer<typeof CheckpointProgress>;

/** The checkpoint in `dir` if it is newer than epoch `after`, copied into the store; null when there is none (or it changed under us). */
export async function uploadCheckpoint(dir: string, jobId: string, store: Store, after: number): Promise<CheckpointProgress['checkpoint'] | null> {
  const latestFile = join(dir, 'checkpoints', 'latest.json');
  if (!existsSync(latestFile) || !existsSync(join(dir, 'run.json'))) return null;
  const text = readFileSync(latestFile, 'utf8');
  const l = JSON.parse(text) as { epoch?: unknown; path?: unknown };
  if (!(Number.isInteger(l.epoch) && (l.epoch as number) > after && l.path === `epoch_${l.epoch as number}`)) return null;
  const name = l.path as string, ep = join(dir, 'checkpoints', name), key = `runs/${jobId}/checkpoint/${name}`;
  const files: CheckpointProgress['checkpoint']['files'] = [];
  try {
    for (const f of readdirSync(ep).sort()) {
      if (f.includes('.tmp') || !statSync(join(ep, f)).isFile()) continue;
      files.push({ path: `checkpoints/${name}/${f}`, ...(await store.putFile(`${key}/${f}`, join(ep, f))) });
    }
    files.push({ path: 'run.json', ...(await store.putFile(`${key}/run.json`, join(dir, 'run.json'))) });
  } catch {
    return null; // the loop replaced this checkpoint meanwhile: the next look takes the new one
  }
  files.push({ path: 'checkpoints/latest.json', ...(await store.putBytes(`${key}/latest.json`, new TextEncoder().encode(text))) });
  return { epoch: l.epoch as number, files };
}

/**
 * The checkpoint a job's progress records, fetched into `dir` (checked by sha256, latest.json
 * last) when `dir` holds no run yet; returns its epoch, or null when there is nothing to restore.
 */
export async function restoreCheckpoint(progress: unknown, dir: string, store: Store, name: string): Promise<number | null> {
  if (existsSync(join(dir, 'run.json')) || existsSync(join(dir, 'checkpoints'))) return null;
  const p = CheckpointProgress.safeParse(progress);
  if (!p.success) return null;
  const files = [...p.data.checkpoint.files].sort((a, b) => Number(a.path === 'checkpoints/latest.json') - Number(b.path === 'checkpoints/latest.json'));
  for (const f of files) await store.getFile(f.key, f.sha256, join(dir, f.path), `${name}: checkpoint ${f.path}`);
  return p.data.checkpoint.epoch;
}
