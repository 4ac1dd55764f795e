/**
 * HIER-MOEA candidates scored by `topiary worker` processes over the queue. The coordinator puts
 * the evaluation context once (the dense state dict and the evaluation data as safetensors, plus a
 * small description naming both by sha256) into the store, and then one job per candidate whose
 * payload is the context's hash and the candidate's masks as one bit set (a LeNet-5 candidate is
 * 54 kB as base64's 72 kB). A worker loads a context once and keeps it (EvalContexts), so each job
 * is one MaskedEvaluator.evaluate: the same code on the same bytes as a local search, hence the same
 * errors, in candidate order whatever worker scored what.
 */
import { Job, Queue, QueueEvents, UnrecoverableError } from 'bullmq';
import { Redis } from 'ioredis';
import { ConfigError } from '../core/errors.js';
import type { RemoteEvalSetup } from '../experiment/reproduce-hier-moea.js';
import type { GraphJSON } from '../graph/ir.js';
import type { ModelConfig } from '../models/types.js';
import { MaskedEvaluator, PrunableLayout, type BatchEvaluator, type CandidateResult, type LayerMasks } from '../prune/hier-moea/index.js';
import { buildModel } from '../prune/hier-moea/model-source.js';
import { decodeSafetensors, encodeSafetensors } from '../tensor/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';
import { bullConnection, checkReachable, redisOptions, EVAL_QUEUE, PREFIX, QueueError, type QueueAddress } from './connection.js';
import { EvalContext, EvalJob, EvalResult, evalJobId, parseJob } from './jobs.js';
import { RedisStore, sha256, type Store } from './store.js';

export interface RemoteEvalOptions {
  queue: QueueAddress;
  /** The shared store; without one the context goes into the queue's Redis (fine for small models). */
  store?: Store;
  /** Tries per candidate (a worker killed mid-candidate counts as none: its job is taken over). */
  attempts?: number;
  /** How often pending candidates are looked up besides the queue's events (ms). */
  pollMs?: number;
  log?: (line: string) => void;
}

interface Pending { resolve: (r: CandidateResult) => void; reject: (e: Error) => void; data: EvalJob }

export class RemoteEvaluator implements BatchEvaluator {
  /** Candidates evaluated and wall seconds of the batches (benchmarks read them). */
  evaluations = 0;
  seconds = 0;
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(
    private readonly layout: PrunableLayout, private readonly context: string, private readonly where: 'redis' | 'shared',
    private readonly queue: Queue, private readonly events: QueueEvents, private readonly client: Redis | null,
    private readonly attempts: number, private readonly pollMs: number, private readonly log: (l: string) => void,
  ) {}

  static async start(setup: RemoteEvalSetup, o: RemoteEvalOptions): Promise<RemoteEvaluator> {
    await checkReachable(o.queue);
    const tensors = [...Object.values(setup.state), ...setup.data.val.flatMap((b) => [b.x, b.y]), ...setup.data.calib];
    const off = tensors.find((t) => t.device !== 'cpu');
    if (off) throw new ConfigError(`--queue: remote evaluation sends CPU tensors only (a tensor is on ${off.device})`, [{ path: 'queue', message: 'CPU only' }]);
    const named: Record<string, Tensor> = {};
    setup.data.val.forEach((b, i) => { named[`val.${i}.x`] = b.x; named[`val.${i}.y`] = b.y; });
    setup.data.calib.forEach((x, i) => { named[`calib.${i}`] = x; });
    const client = o.store ? null : new Redis(redisOptions(o.queue));
    const store = o.store ?? new RedisStore(client!, o.queue.display, PREFIX);
    let queue: Queue | null = null, events: QueueEvents | null = null;
    try {
      const put = async (bytes: Uint8Array) => store.putBytes(`contexts/${sha256(bytes)}.safetensors`, bytes);
      const ctx: EvalContext = {
        format: 'topiary.queue.eval-context/1', model: setup.model, config: JSON.parse(JSON.stringify(setup.config)) as Record<string, unknown>,
        layers: setup.layout.names.map((name, l) => ({ name, size: setup.layout.sizes[l] })),
        nVal: setup.data.val.length, nCalib: setup.data.calib.length,
        state: await put(encodeSafetensors(setup.state)), data: await put(encodeSafetensors(named)),
        // A model outside the zoo (imported from ONNX) travels as its graph; workers run it.
        ...(setup.graph ? { graph: await put(new TextEncoder().encode(JSON.stringify(setup.graph))) } : {}),
      };
      const text = new TextEncoder().encode(JSON.stringify(ctx));
      const id = sha256(text);
      await store.putBytes(`contexts/${id}.json`, text);
      queue = new Queue(EVAL_QUEUE, { connection: bullConnection(o.queue), prefix: PREFIX });
      events = new QueueEvents(EVAL_QUEUE, { connection: bullConnection(o.queue), prefix: PREFIX });
      await events.waitUntilReady();
      const ev = new RemoteEvaluator(setup.layout, id, o.store ? 'shared' : 'redis', queue, events, client, o.attempts ?? 3, o.pollMs ?? 1000, o.log ?? (() => {}));
      events.on('completed', ({ jobId, returnvalue }) => ev.settle(jobId, returnvalue));
      events.on('failed', ({ jobId }) => { void ev.check(jobId); });
      queue.on('error', () => {});
      events.on('error', () => {});
      o.log?.(`evaluating candidates on the queue ${o.queue.display} (context ${id.slice(0, 12)} in ${store.where})`);
      return ev;
    } catch (e) {
      await events?.close();
      await queue?.close();
      client?.disconnect();
      throw e;
    }
  }

  async evaluateBatch(count: number, masksOf: (i: number) => LayerMasks): Promise<CandidateResult[]> {
    if (this.closed) throw new QueueError('RemoteEvaluator: closed');
    if (count === 0) return [];
    const t0 = performance.now();
    const ids: string[] = [];
    const fresh: { name: string; data: EvalJob; opts: { jobId: string } }[] = [];
    const waits = new Map<string, Promise<CandidateResult>>();
    for (let i = 0; i < count; i++) {
      const bits = Buffer.from(this.layout.toBits(masksOf(i)).toBytes()).toString('base64');
      const id = evalJobId(this.context, bits);
      ids.push(id);
      if (waits.has(id)) continue;
      const data: EvalJob = { kind: 'hier-moea.eval', context: this.context, store: this.where, nBits: this.layout.total, bits };
      waits.set(id, new Promise<CandidateResult>((resolve, reject) => this.pending.set(id, { resolve, reject, data })));
      fresh.push({ name: 'candidate', data, opts: { jobId: id } });
    }
    const all = Promise.all(ids.map((id) => waits.get(id)!));
    all.catch(() => {});
    try {
      await this.queue.addBulk(fresh.map((j) => ({ ...j, opts: this.jobOpts(j.opts.jobId) })));
      // Candidates scored before (an earlier generation, an earlier run) are completed jobs already.
      await Promise.all(fresh.map((j) => this.check(j.opts.jobId)));
      this.timer ??= setInterval(() => { for (const id of [...this.pending.keys()]) void this.check(id); }, this.pollMs);
      const res = await all;
      this.evaluations += count;
      this.seconds += (performance.now() - t0) / 1000;
      return res;
    } catch (e) {
      for (const id of waits.keys()) this.pending.delete(id);
      throw e;
    } finally {
      if (this.pending.size === 0 && this.timer) { clearInterval(this.timer); this.timer = null; }
    }
  }

  private jobOpts(jobId: string) {
    return { jobId, attempts: this.attempts, backoff: { type: 'fixed', delay: 200 }, removeOnComplete: { age: 3600, count: 100_000 }, removeOnFail: { age: 24 * 3600 } };
  }

  private settle(id: string, value: unknown): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    try {
      const v = typeof value === 'string' ? JSON.parse(value) : value;
      const r = EvalResult.safeParse(v);
      if (!r.success) throw new QueueError(`candidate ${id}: a worker returned ${JSON.stringify(v)?.slice(0, 80)}, not an evaluation`);
      p.resolve(r.data);
    } catch (e) {
      p.reject(e as Error);
    }
  }

  /** Looks a pending candidate up: completed (an event was missed), failed for good, or lost (Redis restarted: enqueued again). */
  private async check(id: string): Promise<void> {
    const p = this.pending.get(id);
    if (!p) return;
    try {
      const state = await this.queue.getJobState(id);
      if (state === 'completed') {
        const job = await Job.fromId(this.queue, id);
        if (job && job.returnvalue != null) this.settle(id, job.returnvalue);
      } else if (state === 'failed') {
        const job = await Job.fromId(this.queue, id);
        this.pending.delete(id);
        p.reject(new QueueError(`a worker could not evaluate candidate ${id}: ${job?.failedReason ?? 'unknown reason'}`));
      } else if (state === 'unknown' && this.pending.has(id)) {
        this.log(`candidate ${id} is not on the queue any more (Redis restarted?): enqueued again`);
        await this.queue.add('candidate', p.data, this.jobOpts(id));
      }
    } catch {
      // Redis unreachable for now: the next poll looks again.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const p of this.pending.values()) p.reject(new QueueError('RemoteEvaluator: closed while candidates were pending'));
    this.pending.clear();
    await this.events.close();
    await this.queue.close();
    this.client?.disconnect();
  }
}

// ---- the worker's side ---------------------------------------------------------------------------

interface Loaded { ev: MaskedEvaluator; layout: PrunableLayout }

/** Evaluation contexts a worker has loaded, the last few kept (a context is a model and its data). */
export class EvalContexts {
  private readonly cache = new Map<string, Promise<Loaded>>();

  constructor(private readonly stores: { shared?: Store; redis: Store }, private readonly keep = 2) {}

  private load(id: string, store: Store): Promise<Loaded> {
    let p = this.cache.get(id);
    if (p) {
      this.cache.delete(id);
      this.cache.set(id, p);
      return p;
    }
    p = loadContext(id, store);
    p.catch(() => this.cache.delete(id));
    this.cache.set(id, p);
    while (this.cache.size > this.keep) {
      const [old, q] = this.cache.entries().next().value as [string, Promise<Loaded>];
      this.cache.delete(old);
      void q.then(disposeLoaded, () => {});
    }
    return p;
  }

  async evaluate(raw: unknown, jobId: string): Promise<CandidateResult> {
    const job = parseJob(EvalJob, raw, `job ${jobId}`);
    const store = job.store === 'shared' ? this.stores.shared : this.stores.redis;
    if (!store) throw new UnrecoverableError(`job ${jobId}: its context is in the shared store, and this worker was started without --store`);
    const { ev, layout } = await this.load(job.context, store);
    if (job.nBits !== layout.total) throw new UnrecoverableError(`job ${jobId}: ${job.nBits} bits for a model with ${layout.total} prunable weights`);
    const bytes = Buffer.from(job.bits, 'base64');
    const want = Math.ceil(layout.total / 32) * 4;
    if (bytes.length !== want) throw new UnrecoverableError(`job ${jobId}: bits: ${layout.total} bits need ${want} bytes, got ${bytes.length}`);
    return ev.evaluate(masksFromBytes(layout, bytes));
  }

  async dispose(): Promise<void> {
    const all = [...this.cache.values()];
    this.cache.clear();
    for (const p of all) await p.then(disposeLoaded, () => {});
  }
}

/**
 * PrunableLayout.fromBits on BitSet.toBytes's bytes (bit g of the layout is bit g & 7 of byte g >> 3:
 * little-endian words), in one pass over the bytes instead of a call per weight.
 */
export function masksFromBytes(layout: PrunableLayout, bytes: Uint8Array): LayerMasks {
  return layout.sizes.map((size, l) => {
    const m = new Uint8Array(size);
    const off = layout.offsets[l];
    for (let i = 0; i < size; i++) {
      const g = off + i;
      m[i] = (bytes[g >>> 3] >>> (g & 7)) & 1;
    }
    return m;
  });
}

function disposeLoaded(l: Loaded): void {
  l.ev.dispose();
  l.ev.model.dispose();
}

async function loadContext(id: string, store: Store): Promise<Loaded> {
  const text = await store.getBytes(`contexts/${id}.json`, id, 'evaluation context');
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(text));
  } catch (e) {
    throw new UnrecoverableError(`evaluation context ${id}: not JSON (${(e as Error).message})`);
  }
  const ctx = parseJob(EvalContext, raw, `evaluation context ${id.slice(0, 12)}`);
  const stateBytes = await store.getBytes(ctx.state.key, ctx.state.sha256, 'evaluation context: dense state dict');
  const dataBytes = await store.getBytes(ctx.data.key, ctx.data.sha256, 'evaluation context: evaluation data');
  const graph = ctx.graph ? JSON.parse(new TextDecoder().decode(await store.getBytes(ctx.graph.key, ctx.graph.sha256, 'evaluation context: model graph'))) as GraphJSON : undefined;
  const state = decodeSafetensors(stateBytes, 'dense state dict');
  let model;
  try {
    model = buildModel({ model: ctx.model, config: ctx.config as unknown as ModelConfig, graph }, state.tensors);
  } finally {
    for (const t of Object.values(state.tensors)) t.dispose();
  }
  try {
    const layout = new PrunableLayout(model);
    const mine = layout.names.map((n, l) => `${n}:${layout.sizes[l]}`).join(', ');
    const theirs = ctx.layers.map((l) => `${l.name}:${l.size}`).join(', ');
    if (mine !== theirs) throw new UnrecoverableError(`evaluation context: the rebuilt '${ctx.model}' has prunable layers [${mine}], the coordinator's [${theirs}]`);
    const { tensors } = decodeSafetensors(dataBytes, 'evaluation data');
    const get = (k: string): Tensor => {
      const t = tensors[k];
      if (!t) throw new UnrecoverableError(`evaluation data: '${k}' is missing`);
      return t;
    };
    const val = Array.from({ length: ctx.nVal }, (_, i) => ({ x: get(`val.${i}.x`), y: get(`val.${i}.y`) }));
    const calib = Array.from({ length: ctx.nCalib }, (_, i) => get(`calib.${i}`));
    return { ev: new MaskedEvaluator(model, layout, { val, calib }), layout };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
