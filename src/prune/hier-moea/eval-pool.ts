/**
 * Candidates of one generation scored in parallel worker threads. Each worker loads the addon in
 * its own thread (its own napi env, its own tensor counters), rebuilds the model once (from the
 * registry by name, or from the graph JSON sent for a model outside the zoo, e.g. imported from ONNX),
 * loads the dense state dict, receives the validation subset and the BatchNorm calibration inputs
 * once, and then runs its own MaskedEvaluator: the same code as the in-process evaluation, on the
 * same bytes, so every candidate gets exactly the error it would get in the main thread.
 *
 * Threads: libtorch here is an OpenMP build. `at::set_num_threads` stores a process-wide default
 * (read by threads that have not run a parallel op yet) and sets the OpenMP thread count of the
 * calling thread only, so each worker sets its own count first thing and the main thread keeps
 * its own. The one process-wide knob is OpenBLAS's pool (the pthread build; topiary's setNumThreads
 * sets it too): the workers' value holds while the pool lives, and close() puts the main thread's
 * back. docs/methods/hier-moea.md ("Parallel evaluation") has the whole story.
 *
 * Scheduling is dynamic (a free worker takes the next candidate), which changes nothing in the
 * results: an evaluation depends on its masks alone (dense weights copied in, BatchNorm statistics
 * recomputed from scratch on fixed batches).
 */
import { Worker } from 'node:worker_threads';
import {
  ArgumentError, ConfigError, DtypeError, EngineError, RegistryError, SerializationError, ShapeError, TopiaryError,
} from '../../core/errors.js';
import { getNumThreads, getRngState, setNumThreads, setRngState } from '../../core/runtime.js';
import type { GraphJSON } from '../../graph/ir.js';
import type { ModelConfig } from '../../models/types.js';
import { encodeSafetensors } from '../../tensor/safetensors.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { BatchEvaluator, CandidateResult, EvaluatorData } from './evaluator.js';
import type { LayerMasks, PrunableLayout } from './layout.js';
import type { GroupStructure } from './structured.js';

export interface EvalPoolOptions {
  /** The registered model name and the options it was built with (createModel's arguments). */
  model: string;
  config: ModelConfig;
  /** The model's graph when it is not a zoo model (model-source.ts graphOf): the workers run it instead of rebuilding by name. */
  graph?: GraphJSON;
  /** The dense network's parameters and buffers (e.g. model.stateDict()): copied, not kept. */
  state: Record<string, Tensor>;
  /** The validation subset and BatchNorm calibration inputs, as the in-process evaluator has them: copied. */
  data: EvaluatorData;
  /** Structured granularity: the channel groups (the workers zero their companions as the main thread does). */
  structure?: GroupStructure;
  /** The main thread's layout: each worker's must name the same layers with the same sizes. */
  layout: PrunableLayout;
  workers: number;
  /** libtorch intra-op threads of each worker (default 1). */
  threads?: number;
}

/** What a worker receives as workerData. */
export interface WorkerInit {
  index: number;
  model: string;
  config: ModelConfig;
  graph?: GraphJSON;
  structure?: GroupStructure;
  /** safetensors bytes of the dense state dict. */
  state: Uint8Array;
  /** safetensors bytes of 'val.<i>.x', 'val.<i>.y' and 'calib.<i>'. */
  data: Uint8Array;
  nVal: number;
  nCalib: number;
  layers: { name: string; size: number }[];
  threads: number;
}

/** Worker to pool. */
export type WorkerMessage =
  | { type: 'ready'; threads: number }
  | { type: 'result'; id: number; result: CandidateResult }
  | { type: 'failed'; id: number; name: string; message: string }
  | { type: 'fatal'; name: string; message: string };

/** Pool to worker. */
export interface EvalRequest { type: 'eval'; id: number; masks: LayerMasks; maxWrong?: number }

interface Slot { index: number; worker: Worker; busy: number | null }

interface Batch {
  count: number;
  masksOf: (i: number) => LayerMasks;
  maxWrongOf?: (i: number) => number | undefined;
  results: CandidateResult[];
  next: number;
  done: number;
  resolve: (r: CandidateResult[]) => void;
  reject: (e: Error) => void;
}

export class EvalPool implements BatchEvaluator {
  readonly size: number;
  readonly threadsPerWorker: number;
  /** libtorch's thread count as each worker reports it once set up (getNumThreads() in that thread). */
  readonly workerThreads: number[] = [];
  /** Candidates evaluated, and the wall seconds of the batches (benchmarks read them). */
  evaluations = 0;
  seconds = 0;
  private readonly slots: Slot[] = [];
  private batch: Batch | null = null;
  private failure: Error | null = null;
  private closed: Promise<void> | null = null;
  private readonly mainThreads: number;
  private starting: { ready: number; resolve: () => void; reject: (e: Error) => void } | null = null;

  /** Starts the workers and resolves once every one holds its model and data (rejects naming the first failure). */
  static async start(o: EvalPoolOptions): Promise<EvalPool> {
    if (!Number.isInteger(o.workers) || o.workers < 1) {
      throw new ConfigError(`workers: expected a positive integer, got ${o.workers}`, [{ path: 'workers', message: 'must be a positive integer' }]);
    }
    const threads = o.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) throw new ArgumentError(`EvalPool: threads must be a positive integer, got ${threads}`);
    const tensors = [...Object.values(o.state), ...o.data.val.flatMap((b) => [b.x, b.y]), ...o.data.calib];
    const off = tensors.find((t) => t.device !== 'cpu');
    if (off) throw new ConfigError(`workers: parallel evaluation runs on the CPU only (a tensor is on ${off.device}); use workers 1`, [{ path: 'workers', message: 'CPU only' }]);
    const named: Record<string, Tensor> = {};
    o.data.val.forEach((b, i) => { named[`val.${i}.x`] = b.x; named[`val.${i}.y`] = b.y; });
    o.data.calib.forEach((x, i) => { named[`calib.${i}`] = x; });
    const state = encodeSafetensors(o.state), data = encodeSafetensors(named);
    const layers = o.layout.names.map((name, l) => ({ name, size: o.layout.sizes[l] }));
    // Building the model in a worker draws its initial weights from libtorch's one CPU generator,
    // which the main thread shares: its state is put back once the workers are up, so a search with
    // workers draws exactly what one without them does. The main thread makes no tensor meanwhile.
    const rng = getRngState();
    const pool = new EvalPool(o.workers, threads, getNumThreads());
    try {
      const ready = new Promise<void>((resolve, reject) => { pool.starting = { ready: 0, resolve, reject }; });
      for (let k = 0; k < o.workers; k++) {
        pool.spawn({ index: k, model: o.model, config: o.config, graph: o.graph, structure: o.structure, state, data, nVal: o.data.val.length, nCalib: o.data.calib.length, layers, threads });
      }
      await ready;
      pool.idle();
      return pool;
    } catch (e) {
      await pool.close();
      throw e;
    } finally {
      setRngState(rng);
    }
  }

  private constructor(size: number, threads: number, mainThreads: number) {
    this.size = size;
    this.threadsPerWorker = threads;
    this.mainThreads = mainThreads;
  }

  /** The candidates of one generation, spread over the workers; results in candidate order. One batch at a time. */
  evaluateBatch(count: number, masksOf: (i: number) => LayerMasks, maxWrongOf?: (i: number) => number | undefined): Promise<CandidateResult[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new ArgumentError('EvalPool: the pool is closed'));
    if (this.batch) return Promise.reject(new ArgumentError('EvalPool: a batch is already being evaluated (one at a time)'));
    if (count === 0) return Promise.resolve([]);
    const t0 = performance.now();
    return new Promise<CandidateResult[]>((resolve, reject) => {
      this.batch = {
        count, masksOf, maxWrongOf, results: new Array<CandidateResult>(count), next: 0, done: 0,
        resolve: (r) => { this.evaluations += count; this.seconds += (performance.now() - t0) / 1000; resolve(r); },
        reject,
      };
      for (const s of this.slots) s.worker.ref();
      for (const s of this.slots) this.dispatch(s);
    });
  }

  /** Stops every worker (idempotent); a batch still running is rejected. */
  close(): Promise<void> {
    if (!this.closed) {
      const b = this.batch;
      this.batch = null;
      b?.reject(new ArgumentError('EvalPool: closed while a batch was being evaluated'));
      this.starting?.reject(this.failure ?? new ArgumentError('EvalPool: closed while starting'));
      this.starting = null;
      this.closed = Promise.all(this.slots.map((s) => s.worker.terminate())).then(() => {
        // OpenBLAS's pool is process-wide and the workers set it: give the main thread its own count back.
        setNumThreads(this.mainThreads);
      });
    }
    return this.closed;
  }

  private spawn(init: WorkerInit): void {
    const worker = startWorker(init);
    const slot: Slot = { index: init.index, worker, busy: null };
    this.slots.push(slot);
    worker.on('message', (m: WorkerMessage) => this.onMessage(slot, m));
    worker.on('error', (e: Error) => this.fail(new EngineError(`evaluation worker ${slot.index}: ${e.message}`, { cause: e })));
    worker.on('messageerror', (e: Error) => this.fail(new EngineError(`evaluation worker ${slot.index}: a message could not be read (${e.message})`, { cause: e })));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(new EngineError(`evaluation worker ${slot.index} exited unexpectedly (exit code ${code})`));
    });
  }

  private onMessage(slot: Slot, m: WorkerMessage): void {
    switch (m.type) {
      case 'ready': {
        this.workerThreads[slot.index] = m.threads;
        const s = this.starting;
        if (s && ++s.ready === this.size) { this.starting = null; s.resolve(); }
        return;
      }
      case 'fatal':
        this.fail(rebuildError(m.name, `evaluation worker ${slot.index} could not start: ${m.message}`));
        return;
      case 'failed':
        this.fail(rebuildError(m.name, `evaluation worker ${slot.index}, candidate ${m.id}: ${m.message}`));
        return;
      case 'result': {
        const b = this.batch;
        slot.busy = null;
        if (!b) return;
        b.results[m.id] = m.result;
        if (++b.done === b.count) {
          this.batch = null;
          this.idle();
          b.resolve(b.results);
        } else {
          this.dispatch(slot);
        }
      }
    }
  }

  private dispatch(slot: Slot): void {
    const b = this.batch;
    if (!b || slot.busy !== null || b.next >= b.count) return;
    const id = b.next++;
    let masks: LayerMasks, maxWrong: number | undefined;
    try {
      masks = b.masksOf(id);
      maxWrong = b.maxWrongOf?.(id);
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    slot.busy = id;
    slot.worker.postMessage({ type: 'eval', id, masks, ...(maxWrong !== undefined ? { maxWrong } : {}) } satisfies EvalRequest);
  }

  /** Idle workers do not keep the process alive (a pool that is never closed cannot hang it). */
  private idle(): void {
    for (const s of this.slots) s.worker.unref();
  }

  /** The first failure ends the pool: the batch or the start is rejected with it and every worker is stopped. */
  private fail(e: Error): void {
    if (this.failure || this.closed) return;
    this.failure = e;
    const b = this.batch;
    this.batch = null;
    b?.reject(e);
    void this.close();
  }
}

/**
 * Under tsx (the CLI, the tests) the worker must register tsx before it can import TypeScript, and
 * loader hooks registered in this thread do not reach a worker: a two-line bootstrap registers tsx
 * (resolved from this package, so it works from any folder) and then imports the .ts entry. Built
 * to JavaScript, the entry is started directly. execArgv is emptied so that a parent's
 * `--import tsx` or `--test` is not applied twice.
 */
function startWorker(init: WorkerInit): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./eval-worker.js', import.meta.url), { workerData: init, execArgv: [] });
  }
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./eval-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData: init, execArgv: [] });
}

const ERRORS: Record<string, new (message: string) => TopiaryError> = {
  ArgumentError, DtypeError, EngineError, RegistryError, SerializationError, ShapeError,
};

/** The worker's error as the same typed error in this thread (structured clone keeps only plain Errors). */
function rebuildError(name: string, message: string): Error {
  const C = ERRORS[name];
  if (C) return new C(message);
  if (name === 'ConfigError') return new ConfigError(message);
  return new EngineError(`${message} (${name})`);
}
