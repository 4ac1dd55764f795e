/**
 * A worker's side of a reproduction run: the runs it needs fetched (and checked by hash) from the
 * store, the run itself in a worker thread (run-thread.ts) under an optional time limit, and its
 * folder sent back: small JSON files inline in the job's return value, everything else (model
 * files, masks) into the store. Checkpoint folders stay behind (they only serve resuming).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { Worker } from 'node:worker_threads';
import { UnrecoverableError } from 'bullmq';
import { finishedResult } from '../experiment/train-run.js';
import { RunResult } from './jobs.js';
import type { Store } from './store.js';
import { writeAtomic } from './store.js';

export interface RunThreadInit {
  reproduction: string;
  spec: Record<string, unknown>;
  root: string;
  dir: string;
  dataDir?: string;
}

export type RunThreadMessage = { type: 'done' } | { type: 'failed'; name: string; message: string };

/** JSON files up to this size travel in the job; larger files and every other file go to the store. */
export const INLINE_LIMIT = 1 << 20;

/**
 * Runs one reproduction run in a fresh worker thread; rejects with its error (a ConfigError, which
 * no retry can fix, as UnrecoverableError) or after `timeoutMs`, when the thread is terminated.
 */
export function runInThread(init: RunThreadInit, timeoutMs?: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const w = startThread(init);
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      void w.terminate();
      if (err) reject(err); else resolve();
    };
    const timer = timeoutMs ? setTimeout(() => finish(new Error(`timed out after ${timeoutMs / 1000} s (--job-timeout)`)), timeoutMs) : null;
    w.on('message', (m: RunThreadMessage) => {
      if (m.type === 'done') finish();
      else finish(m.name === 'ConfigError' || m.name === 'RegistryError' ? new UnrecoverableError(`${m.name}: ${m.message}`) : new Error(`${m.name}: ${m.message}`));
    });
    w.on('error', (e) => finish(e));
    w.on('exit', (code) => finish(new Error(`the run's thread exited (code ${code}) before it finished`)));
  });
}

/** As eval-pool.ts: under tsx the thread registers tsx first, then imports the TypeScript entry. */
function startThread(init: RunThreadInit): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./run-thread.js', import.meta.url), { workerData: init, execArgv: [] });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./run-thread.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData: init, execArgv: [] });
}

/** Every file of a run folder except checkpoint folders, as paths relative to it, sorted. */
export function runFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) { if (f !== 'checkpoints') walk(p); } else if (!f.endsWith('.tmp')) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out;
}

/** The finished run in `dir` as a job's return value, its large files put into the store under runs/<jobId>/. */
export async function packRun(dir: string, jobId: string, store: Store, seconds: number): Promise<RunResult> {
  const files: Record<string, string> = {};
  const artifacts: RunResult['artifacts'] = [];
  for (const f of runFiles(dir)) {
    const p = join(dir, f);
    if (f.endsWith('.json') && statSync(p).size <= INLINE_LIMIT) files[f] = readFileSync(p, 'utf8');
    else artifacts.push({ path: f, ...(await store.putFile(`runs/${jobId}/${f}`, p)) });
  }
  return { files, artifacts, seconds: +seconds.toFixed(2), worker: `${hostname()}:${process.pid}` };
}

/**
 * A run's files written into `dir` from its job's return value: artifacts first, each checked by
 * its sha256 (a corrupted one is refused, naming it), result.json last, so a folder with a
 * finished result.json is always whole.
 */
export async function unpackRun(r: RunResult, dir: string, store: Store, name: string): Promise<void> {
  for (const a of r.artifacts) await store.getFile(a.key, a.sha256, join(dir, a.path), `${name}: ${a.path}`);
  const names = Object.keys(r.files).sort((a, b) => Number(a === 'result.json') - Number(b === 'result.json'));
  for (const f of names) writeAtomic(join(dir, f), r.files[f]);
}

export function isFinished(dir: string): boolean {
  return existsSync(join(dir, 'result.json')) && finishedResult(dir) !== null;
}
