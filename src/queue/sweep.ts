/**
 * A reproduction over the queue: each of its runs is one job whose id is the hash of the run's
 * configuration, so enqueueing a sweep again (after an interruption, from another machine, twice)
 * adds only what is missing and a run that finished is never run again. Gathering writes each
 * finished run's files into the same folder a local run would have used (artifacts checked by
 * sha256), and once every run is there the reproduction writes its document exactly as it does
 * locally, from the same files.
 */
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import { ConfigError } from '../core/errors.js';
import { reproductionNames, getReproduction, type Reproduction, type ReproduceOptions, type RunSpec } from '../experiment/reproduce.js';
import { makeProgress } from '../report/progress.js';
import { bullConnection, checkReachable, PREFIX, QueueError, RUNS_QUEUE, type QueueAddress } from './connection.js';
import { RunResult, runJobId, type RunJob } from './jobs.js';
import { isFinished, unpackRun } from './run-job.js';
import type { Store } from './store.js';

export interface SweepOptions {
  queue: QueueAddress;
  store: Store;
  /** Block until every run has finished (else: enqueue, gather what is done, return). */
  wait: boolean;
  /** Tries per run (a worker killed mid-run does not use one up: its run is taken over). */
  attempts?: number;
  pollMs?: number;
  progress?: boolean;
  log?: (line: string) => void;
}

export interface SweepOutcome {
  total: number;
  /** Runs whose files were already in the runs folder before this call. */
  already: number;
  /** Runs gathered from the queue by this call. */
  gathered: number;
  /** Jobs this call put on the queue (new, lost, or failed before and retried). */
  enqueued: number;
  /** Runs still waiting or running (without --wait). */
  pending: number;
  failed: { name: string; reason: string }[];
  /** Whether the document was written (every run finished). */
  wrote: boolean;
}

export function distributedOf(r: Reproduction) {
  if (!r.distributed) {
    const ok = reproductionNames().filter((n) => getReproduction(n).distributed);
    throw new ConfigError(`--queue: the ${r.name} reproduction runs only locally (over a queue: ${ok.join(', ') || 'none'})`, [{ path: 'queue', message: 'not distributed' }]);
  }
  return r.distributed;
}

export async function sweepReproduction(r: Reproduction, o: ReproduceOptions, q: SweepOptions): Promise<SweepOutcome> {
  const t0 = performance.now();
  const d = distributedOf(r);
  await checkReachable(q.queue);
  const log = q.log ?? (() => {});
  const specs = d.plan(o);
  const byDir = new Map(specs.map((s) => [s.dir, s]));
  const jobs = new Map<string, { spec: RunSpec; id: string; data: RunJob }>();
  for (const s of specs) {
    const needs = s.needs.map((dir) => {
      const dep = byDir.get(dir);
      if (!dep) throw new ConfigError(`${s.name} needs the run in ${dir}, which this sweep does not run`, [{ path: 'needs', message: 'not in the sweep' }]);
      return { dir, job: runJobId(r.name, dep) };
    });
    const id = runJobId(r.name, s);
    jobs.set(id, { spec: s, id, data: { kind: 'reproduce.run', reproduction: r.name, name: s.name, dir: s.dir, spec: s.spec, needs } });
  }
  const out: SweepOutcome = { total: jobs.size, already: 0, gathered: 0, enqueued: 0, pending: 0, failed: [], wrote: false };
  const pending = new Map<string, { spec: RunSpec; id: string; data: RunJob }>();
  for (const [id, j] of jobs) {
    if (isFinished(join(o.out, j.spec.dir), d.doneFile)) out.already++;
    else pending.set(id, j);
  }
  const queue = new Queue(RUNS_QUEUE, { connection: bullConnection(q.queue), prefix: PREFIX });
  queue.on('error', () => {});
  const attempts = q.attempts ?? 3;
  const opts = (jobId: string, needs: number) => ({
    jobId, attempts, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: false, removeOnFail: false, priority: needs > 0 ? 2 : 1,
  });
  const bar = makeProgress({ enabled: q.progress ?? false, format: '{label} [{bar}] {value}/{total} runs | eta {eta_formatted}' });
  try {
    // One look at every run: gather the finished, retry the failed, add the missing (in the local order).
    const add: { name: string; data: RunJob; opts: ReturnType<typeof opts> }[] = [];
    for (const [id, j] of pending) {
      const state = await queue.getJobState(id);
      if (state === 'completed') {
        await gather(queue, j, o, q.store, d.doneFile);
        pending.delete(id);
        out.gathered++;
      } else if (state === 'failed') {
        const job = await Job.fromId(queue, id);
        await job?.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        log(`${j.spec.name}: failed before (${job?.failedReason ?? '?'}); tried again`);
        out.enqueued++;
      } else if (state === 'unknown') {
        add.push({ name: j.spec.name, data: j.data, opts: opts(id, j.data.needs.length) });
      }
    }
    // A run that finished here but is not on the queue (Redis was emptied) is run again if a pending run needs its files.
    const needed = new Set([...pending.values()].flatMap((j) => j.data.needs.map((n) => n.job)));
    for (const id of needed) {
      const j = jobs.get(id)!;
      if (!pending.has(id) && (await queue.getJobState(id)) === 'unknown') add.unshift({ name: j.spec.name, data: j.data, opts: opts(id, j.data.needs.length) });
    }
    if (add.length) await queue.addBulk(add);
    out.enqueued += add.length;
    log(`${r.name}: ${out.total} runs, ${out.already + out.gathered} finished, ${out.enqueued} enqueued on ${q.queue.display}`);
    if (q.wait && pending.size) {
      bar.start(out.total, r.name);
      bar.update(out.total - pending.size, {});
      while (pending.size) {
        await new Promise((res) => setTimeout(res, q.pollMs ?? 500));
        for (const [id, j] of [...pending]) {
          let state: string;
          try {
            state = await queue.getJobState(id);
          } catch {
            continue; // Redis away for now
          }
          if (state === 'completed') {
            await gather(queue, j, o, q.store, d.doneFile);
            pending.delete(id);
            out.gathered++;
            bar.update(out.total - pending.size, {});
          } else if (state === 'failed') {
            const job = await Job.fromId(queue, id);
            out.failed.push({ name: j.spec.name, reason: job?.failedReason ?? 'unknown reason' });
            pending.delete(id);
          } else if (state === 'unknown') {
            // Redis lost it (restarted without persistence): put it back.
            await queue.add(j.spec.name, j.data, opts(id, j.data.needs.length));
            out.enqueued++;
            bar.log(`${j.spec.name}: not on the queue any more (Redis restarted?); enqueued again`);
          }
        }
      }
      bar.stop();
    }
    out.pending = pending.size;
    if (pending.size === 0) {
      await d.writeDoc(o, { seconds: (performance.now() - t0) / 1000 });
      out.wrote = true;
    }
    if (out.failed.length) {
      throw new QueueError(`${out.failed.length} of ${out.total} runs failed: ${out.failed.map((f) => `${f.name} (${f.reason.split('\n')[0]})`).join('; ')}; ` +
        'the document has the others; run the same command again to retry them');
    }
    return out;
  } finally {
    bar.stop();
    await queue.close();
  }
}

async function gather(queue: Queue, j: { spec: RunSpec; id: string }, o: ReproduceOptions, store: Store, doneFile?: string): Promise<void> {
  const job = await Job.fromId(queue, j.id);
  const rv = RunResult.safeParse(job?.returnvalue);
  if (!rv.success) throw new QueueError(`${j.spec.name}: job ${j.id} finished without a run's result (${rv.error.issues[0]?.message ?? 'nothing returned'})`);
  await unpackRun(rv.data, join(o.out, j.spec.dir), store, j.spec.name, doneFile);
}
