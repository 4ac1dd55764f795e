/**
 * The queue's costs (issue 16), on a redis-server this script starts (127.0.0.1, a free port, no
 * persistence) and `topiary worker` processes:
 *   overhead  enqueue-to-start of empty jobs through BullMQ with topiary's connection settings
 *             (a no-op processor in this process), one job at a time: median and 90th percentile;
 *   sweep     8 one-epoch LeNet-300-100 runs on all of MNIST (reproduce lenet300-sweep --seeds 2)
 *             with 1 worker process and with 2, taking turns --reps times each: wall time from
 *             enqueue to the document written, medians;
 *   eval      LeNet-5 candidates (1000 validation images, batches of 20 phase-1 candidates) scored
 *             by 2 worker processes over the queue against an EvalPool of 2 threads, alternating
 *             batch by batch: evaluations per second, and whether the errors are the same.
 * The machine is shared: the load averages before and after are recorded with each part.
 *
 *   node --import tsx bench/queue.ts [--reps 5] [--no-doc] [--part overhead|sweep|eval]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { createModel, data, loadSafetensors, manualSeed, Rng, setNumThreads, torchVersion, type Module } from '../src/index.js';
import '../src/experiment/reproductions.js';
import { getReproduction } from '../src/experiment/reproduce.js';
import { EvalPool, PrunableLayout, ThresholdDecoder } from '../src/prune/hier-moea/index.js';
import { bullConnection, parseQueueUrl, PREFIX, RUNS_QUEUE } from '../src/queue/connection.js';
import { FsStore, RemoteEvaluator, sweepReproduction } from '../src/queue/index.js';
import { startRedis, type RedisServer } from '../test/queue/redis.js';
import { dataRoot, machine, median, parseFlags, REPO_ROOT } from './lib/common.js';
import { updateSection } from './report.js';

const COMMAND = 'node --import tsx bench/queue.ts';
const LENET_CKPT = 'runs/reproduce/hier-moea/reduced/lenet5/seed_0/dense/model.safetensors';
const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');

/**
 * `topiary worker` processes, resolved once each is on the queue (and, with `runThread`, its run
 * thread is ready). `ownSession`: each in a session of its own (setsid), as workers started from
 * their own shells or service units are; Linux's autogroup scheduling shares the CPU between
 * sessions, so children of this script would otherwise split one session's share between them.
 */
function startWorkers(n: number, url: string, store: string, tmp: string, tag: string, runThread = false, ownSession = false): Promise<ChildProcess[]> {
  return Promise.all(Array.from({ length: n }, (_, k) => new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'topiary.js'), 'worker', '--queue', url, '--store', store, '--work', join(tmp, `${tag}-${k}`), '--data-dir', dataRoot()],
      { stdio: ['ignore', 'ignore', 'pipe'], detached: ownSession });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => { log += d.toString(); if (/ worker \d+ on /.test(log) && (!runThread || / run thread ready /.test(log))) resolve(child); });
    child.on('exit', (c) => reject(new Error(`worker exited (${c}): ${log}`)));
  })));
}

/** CPU seconds (user + system, all threads) a live process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

/**
 * What the machine gives two CPU-bound processes right now: the wall time of 2 busy loops run
 * together (each in a session of its own) over that of 1 alone. 1.0 when two cores are free,
 * up to 2.0 when the other sessions leave one; a 2-worker sweep can do no better than half of it.
 */
async function parallelProbe(): Promise<number> {
  const loop = (n: number) => Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve) => {
    const c = spawn(process.execPath, ['-e', 'let x = 0; for (let i = 0; i < 1.5e9; i++) x = (x + i) | 0; if (x === 42) console.log(x);'], { stdio: 'ignore', detached: true });
    c.on('exit', () => resolve());
  })));
  const t = async (n: number) => { const a = performance.now(); await loop(n); return performance.now() - a; };
  const one = await t(1), two = await t(2);
  return two / one;
}

async function stopWorkers(ws: ChildProcess[]): Promise<void> {
  await Promise.all(ws.map((w) => new Promise<void>((r) => { w.removeAllListeners('exit'); w.once('exit', () => r()); w.kill('SIGTERM'); })));
}

async function overhead(redis: RedisServer, n: number): Promise<string> {
  const before = loadavg();
  const a = parseQueueUrl(redis.url(5));
  const q = new Queue('bench-overhead', { connection: bullConnection(a), prefix: PREFIX });
  const done = new Map<string, () => void>();
  const w = new Worker('bench-overhead', async () => null, { connection: bullConnection(a), prefix: PREFIX, concurrency: 1 });
  w.on('completed', (j) => done.get(String(j.id))?.());
  await w.waitUntilReady();
  // 10 jobs of warm-up, then n measured: each added, awaited, then read back for its timestamps.
  const starts: number[] = [], roundMs: number[] = [];
  for (let i = 0; i < n + 10; i++) {
    const t0 = performance.now();
    const finished = new Promise<void>((r) => done.set(`j${i}`, r));
    const job = await q.add('empty', {}, { jobId: `j${i}` });
    await finished;
    const round = performance.now() - t0;
    const j = await q.getJob(job.id!);
    if (i >= 10) { roundMs.push(round); starts.push(j!.processedOn! - j!.timestamp); }
  }
  await w.close();
  await q.obliterate({ force: true });
  await q.close();
  const p90 = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(0.9 * (xs.length - 1))];
  const m = machine();
  process.stderr.write(`[queue overhead] enqueue to start: median ${median(starts)} ms, p90 ${p90(starts)} ms; add to completed seen: median ${median(roundMs).toFixed(2)} ms\n`);
  return [
    '### Overhead per job',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} with \`${COMMAND} --part overhead\` on ${m.cpu} (${m.cores} cores), redis-server 7 on 127.0.0.1, ${n} empty jobs one at a time ` +
      `(a no-op BullMQ worker in the same process, topiary's connection settings). Load average (1 / 5 / 15 min) before: ${load(before)}, after: ${load(loadavg())}.`,
    '',
    '| measure | median | 90th percentile | target |',
    '|---|---:|---:|---|',
    `| enqueue to start (job.processedOn - job.timestamp, whole ms) | ${median(starts).toFixed(0)} ms | ${p90(starts).toFixed(0)} ms | median < 20 ms |`,
    `| add to completion seen by the producer | ${median(roundMs).toFixed(1)} ms | ${p90(roundMs).toFixed(1)} ms | — |`,
  ].join('\n');
}

const SWEEP = { name: 'lenet300-sweep', seeds: 2 };

/**
 * 8 one-epoch LeNet-300-100 runs on all of MNIST (`topiary reproduce lenet300-sweep --seeds 2`)
 * over 1 worker process and over 2, taking turns (1 then 2, then 2 then 1, ...), each sweep on an
 * emptied queue into fresh folders; workers started (run thread ready) before the clock starts.
 */
async function sweep(redis: RedisServer, tmp: string, reps: number): Promise<string> {
  const before = loadavg();
  const r = getReproduction(SWEEP.name);
  const url = redis.url(6);
  const times: Record<1 | 2, number[]> = { 1: [], 2: [] };
  const cpu: Record<1 | 2, number[]> = { 1: [], 2: [] };
  const probes: number[] = [];
  const loads: number[] = [];
  const docs = new Set<string>();
  const command = `topiary reproduce ${SWEEP.name} --seeds ${SWEEP.seeds} --budget full`;
  const runsQueue = new Queue(RUNS_QUEUE, { connection: bullConnection(parseQueueUrl(url)), prefix: PREFIX });
  try {
    for (let rep = 0; rep < reps; rep++) {
      probes.push(await parallelProbe());
      process.stderr.write(`[queue sweep] rep ${rep + 1}/${reps}: 2 busy loops took ${probes.at(-1)!.toFixed(2)} of 1 loop's wall time\n`);
      for (const n of (rep % 2 === 0 ? [1, 2] : [2, 1]) as (1 | 2)[]) {
        const tag = `sweep-${rep}-${n}`, store = join(tmp, `${tag}-store`), out = join(tmp, tag);
        await runsQueue.obliterate({ force: true });
        const ws = await startWorkers(n, url, store, tmp, tag, true, true);
        loads.push(loadavg()[0]);
        const cpu0 = ws.reduce((t, w) => t + cpuSeconds(w.pid!), 0);
        const t0 = performance.now();
        await sweepReproduction(r, { seeds: SWEEP.seeds, budget: 'full', dataDir: dataRoot(), out, doc: join(out, 'doc.md'), command, progress: false },
          { queue: parseQueueUrl(url), store: new FsStore(store), wait: true, pollMs: 50 });
        const seconds = (performance.now() - t0) / 1000;
        times[n].push(seconds);
        cpu[n].push(ws.reduce((t, w) => t + cpuSeconds(w.pid!), 0) - cpu0);
        docs.add(readFileSync(join(out, 'doc.md'), 'utf8'));
        process.stderr.write(`[queue sweep] rep ${rep + 1}/${reps}, ${n} worker(s): ${seconds.toFixed(1)} s, workers' CPU ${cpu[n].at(-1)!.toFixed(1)} s (load ${loadavg()[0].toFixed(2)})\n`);
        await stopWorkers(ws);
        rmSync(out, { recursive: true, force: true });
        rmSync(store, { recursive: true, force: true });
      }
    }
  } finally {
    await runsQueue.close();
  }
  const m = machine();
  const ratio = median(times[2]) / median(times[1]);
  const pairs = times[1].map((t, i) => (times[2][i] / t).toFixed(2));
  return [
    '### A sweep over 1 and 2 workers',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} with \`${COMMAND} --part sweep --reps ${reps}\` on ${m.cpu} (${m.cores} cores). \`${command}\`: ` +
      `8 LeNet-300-100 runs (dense; random, SNIP, GraSP at 78.9%; seeds 0 and 1), each one epoch on all of MNIST's training split (48k images after the validation split, batch 128, rotation and translation), ` +
      `1 libtorch thread per worker, each worker in a session of its own (as when started from its own shell: Linux's autogroup scheduler shares the CPU between sessions); wall time from enqueue to the document written; worker processes started (run thread ready) beforehand; ` +
      `1 worker and 2 workers take turns, ${reps} sweeps each, medians. Load average (1 / 5 / 15 min) before: ${load(before)}, after: ${load(loadavg())}; ` +
      `1-minute load at each sweep's start: ${loads.map((x) => x.toFixed(2)).join(', ')}.`,
    '',
    '| worker processes | wall time (median) | each sweep | against 1 worker | target | workers\' CPU time (median) |',
    '|---:|---:|---|---:|---|---:|',
    `| 1 | ${median(times[1]).toFixed(1)} s | ${times[1].map((t) => t.toFixed(1)).join(', ')} s | 1.00 | — | ${median(cpu[1]).toFixed(1)} s |`,
    `| 2 | ${median(times[2]).toFixed(1)} s | ${times[2].map((t) => t.toFixed(1)).join(', ')} s | ${ratio.toFixed(2)} (turn by turn: ${pairs.join(', ')}) | ≤ 0.6 | ${median(cpu[2]).toFixed(1)} s |`,
    '',
    `What the machine gave two CPU-bound processes before each pair of turns (2 busy loops together, each in its own session, against 1 alone; 1.00 = two free cores): ${probes.map((x) => x.toFixed(2)).join(', ')}, ` +
      `so the best a 2-worker sweep could do then was ${probes.map((x) => (x / 2).toFixed(2)).join(', ')} of one worker's time.`,
    '',
    `Same document from every sweep: ${docs.size === 1 ? 'yes' : 'NO'}.` + (before[0] > m.cores
      ? ` The load average was ${before[0].toFixed(1)} on ${m.cores} cores before the run (other jobs): a second worker finds no idle core, so the ratio measures the share of a saturated machine, not what a second machine adds.` : ''),
  ].join('\n');
}

async function evalPart(redis: RedisServer, tmp: string, reps: number): Promise<string> {
  const before = loadavg();
  const VAL = 1000, BATCH = 20, WORKERS = 2;
  setNumThreads(1);
  manualSeed(0);
  const train = await data.loadDataset('mnist', { split: 'train', dataDir: dataRoot() });
  const { val } = data.splitTrainVal(train, 0.1, 0);
  const config = { inputShape: [1, 28, 28], numClasses: 10 };
  const model: Module = createModel('lenet5', config);
  const ckpt = join(REPO_ROOT, LENET_CKPT);
  const trained = existsSync(ckpt);
  if (trained) {
    const { tensors } = loadSafetensors(ckpt);
    model.loadStateDict(tensors);
    for (const t of Object.values(tensors)) t.dispose();
  }
  const valBatches = [...new data.DataLoader({ dataset: val.dataset, indices: val.indices.slice(0, VAL) }, { batchSize: 250 }).epoch(0)].map((b) => ({ x: b.x, y: b.y }));
  const layout = new PrunableLayout(model);
  const url = redis.url(3);
  const ws = await startWorkers(WORKERS, url, join(tmp, 'store-eval'), tmp, 'eval');
  const pool = await EvalPool.start({ model: 'lenet5', config, state: model.stateDict(), data: { val: valBatches, calib: [] }, layout, workers: WORKERS, threads: 1 });
  const remote = await RemoteEvaluator.start({ model: 'lenet5', config, state: model.stateDict(), data: { val: valBatches, calib: [] }, layout }, { queue: parseQueueUrl(url) });
  const dec = new ThresholdDecoder(layout);
  const rng = new Rng(2);
  const genomes = () => Array.from({ length: BATCH }, () => Float64Array.from({ length: layout.nLayers }, () => rng.uniform(0.3, 0.95)));
  const thr: number[] = [], que: number[] = [];
  let identical = true;
  try {
    const warm = genomes();
    await pool.evaluateBatch(4, (i) => dec.decode(warm[i]));
    await remote.evaluateBatch(4, (i) => dec.decode(warm[i]));
    for (let r = 0; r < reps; r++) {
      const g = genomes();
      const timed = async (be: EvalPool | RemoteEvaluator, rate: number[]) => {
        const a = performance.now();
        const res = await be.evaluateBatch(g.length, (i) => dec.decode(g[i]));
        rate.push(BATCH / ((performance.now() - a) / 1000));
        return res;
      };
      let x, y;
      if (r % 2 === 0) { x = await timed(pool, thr); y = await timed(remote, que); } else { y = await timed(remote, que); x = await timed(pool, thr); }
      identical &&= isDeepStrictEqual(x, y);
      process.stderr.write(`[queue eval] rep ${r + 1}/${reps}: ${WORKERS} threads ${thr[r].toFixed(2)} eval/s, ${WORKERS} queue workers ${que[r].toFixed(2)} eval/s, same errors ${isDeepStrictEqual(x, y)}\n`);
    }
  } finally {
    await remote.close();
    await pool.close();
    await stopWorkers(ws);
    model.dispose();
    train.dispose();
    for (const b of valBatches) { b.x.dispose(); b.y.dispose(); }
  }
  const m = machine();
  return [
    '### HIER-MOEA candidates: queue workers against worker threads',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} with \`${COMMAND} --part eval --reps ${reps}\` on ${m.cpu} (${m.cores} cores), libtorch ${torchVersion()}. LeNet-5 (${trained ? 'trained' : 'random init'}), ${VAL} validation images in batches of 250, ` +
      `batches of ${BATCH} phase-1 candidates; ${WORKERS} \`topiary worker\` processes on this machine (1 libtorch thread each, one job per candidate, masks as bit sets) and an EvalPool of ${WORKERS} threads (1 libtorch thread each) take turns; medians of ${reps} batches. ` +
      `Load average (1 / 5 / 15 min) before: ${load(before)}, after: ${load(loadavg())}.`,
    '',
    '| evaluator | evaluations / s | against threads | target |',
    '|---|---:|---:|---|',
    `| ${WORKERS} worker threads (\`--workers ${WORKERS}\`) | ${median(thr).toFixed(2)} | 1.00 | — |`,
    `| ${WORKERS} queue workers (\`--queue\`) | ${median(que).toFixed(2)} | ${(median(que) / median(thr)).toFixed(2)} | ≥ 0.9 |`,
    '',
    `Same errors, candidate for candidate: ${identical ? 'yes' : 'NO'}.`,
  ].join('\n');
}

const flags = parseFlags();
const redis = await startRedis();
const tmp = mkdtempSync(join(tmpdir(), 'topiary-bench-queue-'));
try {
  const parts = flags.part ? [flags.part] : ['overhead', 'sweep', 'eval'];
  for (const p of parts) {
    let body: string;
    if (p === 'overhead') body = await overhead(redis, 200);
    else if (p === 'sweep') body = await sweep(redis, tmp, flags.reps);
    else if (p === 'eval') body = await evalPart(redis, tmp, flags.reps);
    else throw new Error(`bench/queue: unknown part '${p}' (known: overhead, sweep, eval)`);
    process.stdout.write(JSON.stringify({ bench: 'queue', part: p, body }) + '\n');
    if (!flags.noDoc) updateSection('Distributed runs (queue)', `queue-${p}`, body);
  }
} finally {
  await redis.stop();
  rmSync(tmp, { recursive: true, force: true });
}
