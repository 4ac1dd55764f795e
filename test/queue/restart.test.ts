/**
 * Redis restarted in the middle of a sweep (empty afterwards: the test server keeps nothing): the
 * workers reconnect, the coordinator enqueues again what Redis forgot, and the sweep ends with the
 * local document. A run that needs another (magnitude pruning of the dense run) is part of it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import '../../src/experiment/reproductions.js';
import { getReproduction, type ReproduceOptions } from '../../src/experiment/reproduce.js';
import { parseQueueUrl } from '../../src/queue/connection.js';
import { Job, Queue } from 'bullmq';
import { bullConnection, PREFIX, RUNS_QUEUE } from '../../src/queue/connection.js';
import { FsStore, queueStatus, runJobId, sweepReproduction } from '../../src/queue/index.js';
import { startRedis, type RedisServer } from './redis.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const tmp = mkdtempSync(join(tmpdir(), 'topiary-queue-restart-'));
let redis: RedisServer;
const procs: { child: ChildProcess; log: string }[] = [];

before(async () => {
  redis = await startRedis();
  for (const name of ['w1', 'w2']) {
    const child = spawn(process.execPath, [join(repo, 'bin', 'topiary.js'), 'worker', '--queue', redis.url(), '--store', join(tmp, 'store'), '--work', join(tmp, name),
      '--data-dir', dataDir, '--stalled-seconds', '2'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TOPIARY_DATA: dataDir } });
    const p = { child, log: '' };
    child.stderr!.on('data', (d: Buffer) => { p.log += d.toString(); });
    procs.push(p);
  }
  // Both workers connected before the test restarts Redis: a worker that starts while Redis is
  // down refuses to start (one line, by design), which is not what this test is about.
  const t0 = Date.now();
  while (!procs.every((p) => /worker \d+ on /.test(p.log))) {
    if (Date.now() - t0 > 120000) throw new Error(`the workers did not start\n${procs.map((p) => p.log).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

after(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await redis?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const opts = (out: string): ReproduceOptions => ({ seeds: 1, budget: 'smoke', dataDir, out, doc: join(out, 'pmp.md'), command: 'topiary reproduce pmp --seeds 1 --budget smoke', progress: false });

test('Redis restarted mid-sweep: workers reconnect, lost jobs are enqueued again, the document is the local one', async () => {
  process.env.TOPIARY_PMP_ONLY = 'dense,magnitude_noft_789';
  try {
    const pmp = getReproduction('pmp');
    const local = opts(join(tmp, 'local'));
    await pmp.run(local);
    const o = opts(join(tmp, 'queued'));
    const lines: string[] = [];
    const sweep = sweepReproduction(pmp, o, { queue: parseQueueUrl(redis.url()), store: new FsStore(join(tmp, 'store')), wait: true, pollMs: 100, log: (l) => lines.push(l) });
    const t0 = Date.now();
    while (!procs.some((p) => /run pmp\/smoke dense seed 0/.test(p.log))) {
      if (Date.now() - t0 > 60000) throw new Error(`no worker started the dense run\n${procs.map((p) => p.log).join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await redis.restart();
    const r = await sweep;
    assert.equal(r.wrote, true);
    assert.ok(r.enqueued > 2, `jobs enqueued again after the restart (${r.enqueued} in all)`);
    assert.equal(readFileSync(o.doc, 'utf8'), readFileSync(local.doc, 'utf8'));
    for (const p of procs) assert.equal(p.child.exitCode, null, `the workers live on\n${p.log}`);
    const s = await queueStatus(parseQueueUrl(redis.url()));
    assert.equal(s.runs.completed, 2);
    assert.deepEqual([s.runs.waiting, s.runs.active, s.runs.failed], [0, 0, 0]);
  } finally {
    delete process.env.TOPIARY_PMP_ONLY;
  }
});

test('a run that failed for good is tried again by the next sweep, and a failure is one line naming the run', async () => {
  process.env.TOPIARY_PMP_ONLY = 'random_789';
  const q = new Queue(RUNS_QUEUE, { connection: bullConnection(parseQueueUrl(redis.url())), prefix: PREFIX });
  try {
    const pmp = getReproduction('pmp');
    const o = opts(join(tmp, 'failing'));
    const [run] = pmp.distributed!.plan(o);
    const id = runJobId('pmp', run);
    // The run's job, put there with a spec no worker can run (0 threads): it fails for good at once.
    await q.add(run.name, { kind: 'reproduce.run', reproduction: 'pmp', name: run.name, dir: run.dir, spec: { ...run.spec, threads: 0 }, needs: [] }, { jobId: id, attempts: 3 });
    const t0 = Date.now();
    while ((await q.getJobState(id)) !== 'failed') {
      if (Date.now() - t0 > 60000) throw new Error('the job did not fail');
      await new Promise((r) => setTimeout(r, 50));
    }
    const first = (await Job.fromId(q, id))!.finishedOn!;
    await assert.rejects(sweepReproduction(pmp, o, { queue: parseQueueUrl(redis.url()), store: new FsStore(join(tmp, 'store')), wait: true, pollMs: 100 }),
      (e: Error) => e.name === 'QueueError' && /^1 of 1 runs failed: pmp\/smoke random_789 seed 0 \(ConfigError: invalid pmp run: threads: [^)]*\); the document has the others; run the same command again to retry them$/.test(e.message));
    const job = (await Job.fromId(q, id))!;
    assert.ok(job.finishedOn! > first, 'it ran again');
    assert.equal(job.attemptsMade, 1, 'with its attempts reset');
  } finally {
    await q.close();
    delete process.env.TOPIARY_PMP_ONLY;
  }
});
