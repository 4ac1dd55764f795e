/**
 * A worker's side of a reproduction run: the runs it needs fetched (and checked by hash) from the
 * store, the run itself in the worker's run thread (RunThread, run-thread.ts) under an optional time limit, and its
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

/** The coordinator's side of the run thread's messages (one run at a time). */
export type RunThreadRequest = { type: 'run'; id: number; init: RunThreadInit };
export type RunThreadMessage = { type: 'ready' } | { type: 'done'; id: number } | { type: 'failed'; id: number; name: string; message: string };

/** JSON files up to this size travel in the job; larger files and every other file go to the store. */
export const INLINE_LIMIT = 1 << 20;

/** Errors no retry can fix: the job fails for good (UnrecoverableError) and the thread is kept. */
const CONFIG_ERRORS = new Set(['ConfigError', 'RegistryError']);

/**
 * One long-lived worker thread that runs a worker's reproduction runs one after another. Starting
 * a thread (tsx, the module graph, the addon) and reading the data took about 3 s per job, as long
 * as a one-epoch LeNet-300-100 run itself; the thread is started once (`warm`) and keeps its
 * modules and the parsed datasets (cacheRawDatasets, checked against the files) between runs.
 * Every run seeds libtorch and sets its thread count itself, so a run in a used thread computes
 * what it computes in a fresh one (the queue tests compare the models byte for byte). A thread is
 * dropped and a fresh one started for the next run after a run that failed other than by its
 * configuration, after a --job-timeout (it is terminated), when it dies, and after `maxRuns` runs
 * (so that whatever a run leaves behind cannot pile up).
 */
export class RunThread {
  private w: Worker | null = null;
  private ready: Promise<void> | null = null;
  private runs = 0;
  private nextId = 1;
  private current: { id: number; finish: (err?: Error) => void } | null = null;
  private busy: Promise<unknown> = Promise.resolve();
  /** Threads started so far (tests and the log read it). */
  started = 0;

  constructor(private readonly o: { maxRuns?: number; cacheBytes?: number } = {}) {}

  /** Starts the thread now, so that the first run does not wait for it. */
  warm(): Promise<void> {
    if (this.ready) return this.ready;
    const w = startThread({ cacheBytes: this.o.cacheBytes ?? 1 << 30 });
    this.w = w;
    this.started++;
    this.runs = 0;
    this.ready = new Promise<void>((resolve, reject) => {
      const onMsg = (m: RunThreadMessage) => {
        if (m.type === 'ready') resolve();
        else if (this.current && m.id === this.current.id) {
          if (m.type === 'done') this.current.finish();
          else {
            const err = CONFIG_ERRORS.has(m.name) ? new UnrecoverableError(`${m.name}: ${m.message}`) : new Error(`${m.name}: ${m.message}`);
            if (!CONFIG_ERRORS.has(m.name)) this.drop(w);
            this.current.finish(err);
          }
        }
      };
      w.on('message', onMsg);
      const gone = (err: Error) => {
        reject(err);
        if (this.w !== w) return;
        this.drop(w);
        this.current?.finish(err);
      };
      w.on('error', (e) => gone(e));
      w.on('exit', (code) => gone(new Error(`the run's thread exited (code ${code}) before it finished`)));
    });
    this.ready.catch(() => {});
    return this.ready;
  }

  /**
   * One run in the thread; rejects with its error (a ConfigError, which no retry can fix, as
   * UnrecoverableError) or after `timeoutMs`, when the thread is terminated.
   */
  run(init: RunThreadInit, timeoutMs?: number): Promise<void> {
    const p = this.busy.then(() => this.runNow(init, timeoutMs));
    this.busy = p.catch(() => {});
    return p;
  }

  private async runNow(init: RunThreadInit, timeoutMs?: number): Promise<void> {
    if (this.w && this.o.maxRuns && this.runs >= this.o.maxRuns) this.drop(this.w);
    await this.warm();
    const w = this.w!;
    this.runs++;
    const id = this.nextId++;
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | null = null;
      this.current = {
        id,
        finish: (err) => {
          if (this.current?.id !== id) return;
          this.current = null;
          if (timer) clearTimeout(timer);
          if (err) reject(err); else resolve();
        },
      };
      if (timeoutMs) {
        timer = setTimeout(() => {
          this.drop(w);
          this.current?.finish(new Error(`timed out after ${timeoutMs / 1000} s (--job-timeout)`));
        }, timeoutMs);
      }
      w.postMessage({ type: 'run', id, init } satisfies RunThreadRequest);
    });
  }

  /** Terminates `w` if it is the current thread; the next run starts a fresh one. */
  private drop(w: Worker): void {
    if (this.w !== w) return;
    this.w = null;
    this.ready = null;
    w.removeAllListeners('exit');
    w.on('exit', () => {});
    void w.terminate();
  }

  async close(): Promise<void> {
    const w = this.w;
    if (!w) return;
    this.w = null;
    this.ready = null;
    w.removeAllListeners('exit');
    await w.terminate();
  }
}

/** As eval-pool.ts: under tsx the thread registers tsx first, then imports the TypeScript entry. */
function startThread(workerData: { cacheBytes: number }): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./run-thread.js', import.meta.url), { workerData, execArgv: [] });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./run-thread.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData, execArgv: [] });
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
 * its sha256 (a corrupted one is refused, naming it), the done file (result.json by default) last,
 * so a folder that has it is always whole.
 */
export async function unpackRun(r: RunResult, dir: string, store: Store, name: string, doneFile = 'result.json'): Promise<void> {
  for (const a of r.artifacts) await store.getFile(a.key, a.sha256, join(dir, a.path), `${name}: ${a.path}`);
  const last = (f: string) => (f === doneFile ? 2 : f === 'result.json' ? 1 : 0);
  const names = Object.keys(r.files).sort((a, b) => last(a) - last(b));
  for (const f of names) writeAtomic(join(dir, f), r.files[f]);
}

/** Whether `dir` holds a finished run: its done file (result.json by default, which must say completed). */
export function isFinished(dir: string, doneFile = 'result.json'): boolean {
  if (doneFile !== 'result.json') return existsSync(join(dir, doneFile));
  return existsSync(join(dir, 'result.json')) && finishedResult(dir) !== null;
}
