/**
 * A run's checkpoints travel with its job (src/queue/checkpoints.ts): a worker SIGKILLed after a
 * few epochs leaves its newest checkpoint in the store and in the job's progress, and the worker
 * that takes the job over resumes from it rather than starting again, ending with the model an
 * uninterrupted run makes, byte for byte.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Job, Queue } from 'bullmq';
import { bullConnection, parseQueueUrl, PREFIX, RUNS_QUEUE } from '../../src/queue/connection.js';
import { CheckpointProgress } from '../../src/queue/checkpoints.js';
import { RunResult } from '../../src/queue/jobs.js';
import { RunThread } from '../../src/queue/run-job.js';
import { sha256 } from '../../src/queue/store.js';
import { startRedis, type RedisServer } from './redis.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const tmp = mkdtempSync(join(tmpdir(), 'topiary-queue-resume-'));
const storeDir = join(tmp, 'store');
let redis: RedisServer;
let runs: Queue;
const procs: { child: ChildProcess; log: string }[] = [];

function startWorker(name: string) {
  const child = spawn(process.execPath, [join(repo, 'bin', 'topiary.js'), 'worker', '--queue', redis.url(), '--store', storeDir, '--work', join(tmp, name), '--data-dir', dataDir,
    '--kinds', 'runs', '--stalled-seconds', '3', '--checkpoint-seconds', '0.1'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TOPIARY_DATA: dataDir } });
  const p = { child, log: '' };
  child.stderr!.on('data', (d: Buffer) => { p.log += d.toString(); });
  procs.push(p);
  return p;
}

async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, ms = 120000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v as T;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}\n${procs.map((p) => p.log).join('\n---\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  redis = await startRedis();
  runs = new Queue(RUNS_QUEUE, { connection: bullConnection(parseQueueUrl(redis.url())), prefix: PREFIX });
});

after(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await runs?.close();
  await redis?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('a worker killed after some epochs: the run resumes on another worker from the checkpoint it left, and ends as an uninterrupted run', async () => {
  const spec = { budget: 'smoke', id: 'dense', method: 'dense', seed: 0, train: { model: 'lenet_300_100', dataset: 'mnist', epochs: 8, subset: 3000, batchSize: 64, lr: 0.05 }, prune: null, threads: 1 };
  const a = startWorker('a');
  await runs.add('pmp resume test', { kind: 'reproduce.run', reproduction: 'pmp', name: 'pmp resume test', dir: 'resume/seed_0', spec, needs: [] }, { jobId: 'run-resume-test', attempts: 3 });
  const progress = await until('a checkpoint in the job\'s progress', async () => {
    const p = CheckpointProgress.safeParse((await Job.fromId(runs, 'run-resume-test'))?.progress);
    return p.success && p.data.checkpoint.epoch >= 1 ? p.data : null;
  });
  a.child.kill('SIGKILL');
  assert.notEqual(await runs.getJobState('run-resume-test'), 'completed', 'killed before the run finished');
  const b = startWorker('b');
  await until('the job completed', async () => (await runs.getJobState('run-resume-test')) === 'completed');
  const job = await Job.fromId(runs, 'run-resume-test');
  const rv = RunResult.parse(job!.returnvalue);
  assert.ok(rv.worker.endsWith(`:${b.child.pid}`), `finished by the second worker: ${rv.worker}`);
  assert.match(b.log, /resuming after epoch \d+ from the checkpoint another worker left/);
  const result = JSON.parse(rv.files['result.json']) as { resumedFrom: number | null; completed: boolean; history: unknown[] };
  assert.equal(result.completed, true);
  assert.ok(result.resumedFrom !== null && result.resumedFrom >= progress.checkpoint.epoch, `resumed from epoch ${result.resumedFrom} (checkpoint seen: ${progress.checkpoint.epoch})`);
  assert.equal(result.history.length, 8);
  // The same run without interruption, in a thread here: the same model, byte for byte.
  const t = new RunThread();
  try {
    await t.run({ reproduction: 'pmp', spec, root: join(tmp, 'local'), dir: 'resume/seed_0', dataDir });
  } finally {
    await t.close();
  }
  const model = rv.artifacts.find((x) => x.path === 'model.safetensors')!;
  assert.equal(model.sha256, sha256(readFileSync(join(tmp, 'local', 'resume/seed_0', 'model.safetensors'))));
});
