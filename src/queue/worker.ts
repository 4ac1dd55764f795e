/**
 * `topiary worker`: takes jobs from the queue and runs them, one at a time per process. Run jobs
 * (a reproduction's runs) execute in the worker's one long-lived run thread (RunThread) so that
 * BullMQ keeps renewing the job's lock;
 * a process that dies (SIGKILL, a lost machine) stops renewing it, and after `stalledSeconds`
 * another worker's stalled-job check puts the job back for someone else. A job whose payload does
 * not parse, or whose kind is unknown, fails at once with the reason and the worker carries on.
 *
 * The two kinds never run at once in one process: both would draw from libtorch's one CPU random
 * generator (a run seeds it and trains; loading an evaluation context builds a model), so a run
 * pauses candidate evaluation while it trains.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DelayedError, Job, Queue, UnrecoverableError, Worker, type Job as JobT } from 'bullmq';
import { Redis } from 'ioredis';
import { setNumThreads } from '../core/runtime.js';
import { getReproduction } from '../experiment/reproduce.js';
import { bullConnection, checkReachable, redisOptions, EVAL_QUEUE, PREFIX, RUNS_QUEUE, type QueueAddress } from './connection.js';
import { parseJob, RunJob, RunResult } from './jobs.js';
import { EvalContexts } from './remote-eval.js';
import { restoreCheckpoint, uploadCheckpoint } from './checkpoints.js';
import { isFinished, packRun, RunThread, unpackRun } from './run-job.js';
import { RedisStore, type Store } from './store.js';
import '../experiment/reproductions.js';

export type JobKind = 'runs' | 'eval';

export interface QueueWorkerOptions {
  queue: QueueAddress;
  /** The shared store (needed for runs; candidates use it when the coordinator did). */
  store?: Store;
  /** This worker's own folder: run folders are made here before their files are sent back. */
  work: string;
  dataDir?: string;
  /** libtorch threads for candidate evaluation (runs set their own). */
  threads: number;
  /** A job whose worker stops renewing its lock for this long is given to another (BullMQ's lockDuration and stalled check). */
  stalledSeconds: number;
  /** A run still running after this long is stopped and tried again (its thread terminated). */
  jobTimeoutSeconds?: number;
  /** How often a running run's newest checkpoint is copied to the store, so that a retry elsewhere resumes (default 30). */
  checkpointSeconds?: number;
  kinds: JobKind[];
  log: (line: string) => void;
}

export interface QueueWorker {
  readonly stats: { runs: number; evaluations: number; failed: number };
  close(): Promise<void>;
}

export async function startQueueWorker(o: QueueWorkerOptions): Promise<QueueWorker> {
  await checkReachable(o.queue);
  setNumThreads(o.threads);
  const work = resolve(o.work);
  mkdirSync(work, { recursive: true });
  const stats = { runs: 0, evaluations: 0, failed: 0 };
  const client = new Redis(redisOptions(o.queue));
  client.on('error', () => {});
  const contexts = new EvalContexts({ shared: o.store, redis: new RedisStore(client, o.queue.display, PREFIX) });
  const common = {
    connection: bullConnection(o.queue), prefix: PREFIX, concurrency: 1,
    lockDuration: o.stalledSeconds * 1000, stalledInterval: o.stalledSeconds * 1000, maxStalledCount: 3,
  };
  const runsQueue = new Queue(RUNS_QUEUE, { connection: bullConnection(o.queue), prefix: PREFIX });
  runsQueue.on('error', () => {});
  let evalWorker: Worker | null = null;
  // One thread for every run of this worker, started now (its modules, the addon) rather than at the first job.
  const thread = o.kinds.includes('runs') ? new RunThread({ maxRuns: 50 }) : null;
  const tWarm = performance.now();
  thread?.warm().then(() => o.log(`run thread ready (${Math.round(performance.now() - tWarm)} ms)`),
    (e: Error) => o.log(`the run thread did not start: ${e.message} (tried again at the next run)`));

  const processRun = async (job: JobT, token?: string): Promise<RunResult> => {
    const data = parseJob(RunJob, job.data, `job ${job.id}`);
    let r;
    try {
      r = getReproduction(data.reproduction);
    } catch (e) {
      throw new UnrecoverableError(`job ${job.id}: ${(e as Error).message}`);
    }
    if (!r.distributed) throw new UnrecoverableError(`job ${job.id}: the ${r.name} reproduction runs only locally`);
    if (!o.store) throw new UnrecoverableError(`job ${job.id}: this worker has no --store, and runs send their model files there`);
    const root = join(work, 'runs');
    for (const need of data.needs) {
      const state = await runsQueue.getJobState(need.job);
      if (state === 'failed') throw new UnrecoverableError(`${data.name}: needs the run in ${need.dir} (job ${need.job}), which failed`);
      if (state !== 'completed') {
        // Not done yet: look again in a second (DelayedError: no attempt is used up).
        await job.moveToDelayed(Date.now() + 1000, token);
        throw new DelayedError();
      }
      const dir = join(root, need.dir);
      if (isFinished(dir, r.distributed.doneFile)) continue;
      const dep = await Job.fromId(runsQueue, need.job);
      const rv = RunResult.safeParse(dep?.returnvalue);
      if (!rv.success) throw new Error(`${data.name}: the return value of job ${need.job} is not a run's result`);
      await unpackRun(rv.data, dir, o.store, `${data.name} needs ${need.dir}`, r.distributed.doneFile);
    }
    const dir = join(root, data.dir);
    const t0 = performance.now();
    if (!isFinished(dir, r.distributed.doneFile)) {
      const restored = await restoreCheckpoint(job.progress, dir, o.store, data.name);
      o.log(`run ${data.name} (job ${job.id}, attempt ${job.attemptsMade + 1})${restored !== null ? `, resuming after epoch ${restored} from the checkpoint another worker left` : ''}`);
      // Each new checkpoint to the store and into the job's progress (one copy at a time).
      let last = restored ?? -1;
      let copying: Promise<void> = Promise.resolve();
      const copy = () => {
        copying = copying.then(async () => {
          const c = await uploadCheckpoint(dir, String(job.id), o.store!, last);
          if (c) {
            last = c.epoch;
            await job.updateProgress({ checkpoint: c });
          }
        }).catch((e: Error) => o.log(`run ${data.name}: its checkpoint was not copied to the store (${e.message})`));
        return copying;
      };
      const timer = setInterval(() => void copy(), (o.checkpointSeconds ?? 30) * 1000);
      await evalWorker?.pause();
      try {
        await thread!.run({ reproduction: data.reproduction, spec: data.spec, root, dir: data.dir, dataDir: o.dataDir }, o.jobTimeoutSeconds ? o.jobTimeoutSeconds * 1000 : undefined);
      } catch (e) {
        await copy(); // a retry, here or elsewhere, resumes from the last epoch
        throw e;
      } finally {
        clearInterval(timer);
        await copying;
        evalWorker?.resume();
      }
      if (!isFinished(dir, r.distributed.doneFile)) throw new Error(`${data.name}: the run ended without a finished ${r.distributed.doneFile ?? 'result.json'} in its folder`);
    }
    const res = await packRun(dir, String(job.id), o.store, (performance.now() - t0) / 1000);
    stats.runs++;
    return res;
  };

  const workers: Worker[] = [];
  if (o.kinds.includes('runs')) {
    const w = new Worker(RUNS_QUEUE, processRun, common);
    w.on('completed', (job) => o.log(`done ${job.name} (job ${job.id})`));
    workers.push(w);
  }
  if (o.kinds.includes('eval')) {
    evalWorker = new Worker(EVAL_QUEUE, async (job: JobT) => {
      const r = await contexts.evaluate(job.data, String(job.id));
      stats.evaluations++;
      return r;
    }, common);
    workers.push(evalWorker);
  }
  for (const w of workers) {
    w.on('failed', (job, err) => {
      if (err instanceof DelayedError || err.name === 'DelayedError') return;
      stats.failed++;
      o.log(`failed ${job?.name ?? '?'} (job ${job?.id}): ${err.message}`);
    });
    w.on('error', (e) => o.log(`queue: ${e.message.split('\n')[0]}`));
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  o.log(`worker ${process.pid} on ${o.queue.display}: ${o.kinds.join(' and ')}${o.store ? `, store ${o.store.where}` : ''}, folder ${work}`);
  let closing: Promise<void> | null = null;
  return {
    stats,
    close: () => (closing ??= (async () => {
      await Promise.all(workers.map((w) => w.close()));
      await thread?.close();
      await runsQueue.close();
      await contexts.dispose();
      client.disconnect();
    })()),
  };
}
