/**
 * `topiary reproduce evo-pop --queue`: each arm and seed of the reproduction is one job for
 * `topiary worker` processes on a real redis-server, and the gathered folders give the local
 * run's document and mass-trajectory plots. The document is the local one except the one
 * sentence that reports wall time (minutes of training, and of this invocation), which no two
 * runs share; everything else, every accuracy included, is compared byte for byte.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Job, Queue } from 'bullmq';
import '../../src/experiment/reproductions.js';
import { getReproduction, type ReproduceOptions } from '../../src/experiment/reproduce.js';
import { bullConnection, parseQueueUrl, PREFIX, RUNS_QUEUE } from '../../src/queue/connection.js';
import { FsStore, parseJob, RunJob, runJobId, sweepReproduction } from '../../src/queue/index.js';
import { startRedis, type RedisServer } from './redis.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const tmp = mkdtempSync(join(tmpdir(), 'topiary-queue-evo-'));
const storeDir = join(tmp, 'store');
let redis: RedisServer;
let runs: Queue;
const procs: { child: ChildProcess; log: string }[] = [];

before(async () => {
  redis = await startRedis();
  runs = new Queue(RUNS_QUEUE, { connection: bullConnection(parseQueueUrl(redis.url())), prefix: PREFIX });
  for (const name of ['w1', 'w2']) {
    const child = spawn(process.execPath, [join(repo, 'bin', 'topiary.js'), 'worker', '--queue', redis.url(), '--store', storeDir, '--work', join(tmp, name), '--data-dir', dataDir, '--kinds', 'runs'],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TOPIARY_DATA: dataDir } });
    const p = { child, log: '' };
    child.stderr!.on('data', (d: Buffer) => { p.log += d.toString(); });
    procs.push(p);
  }
});

after(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await runs?.close();
  await redis?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const opts = (out: string): ReproduceOptions => ({
  seeds: 1, budget: 'smoke', dataDir, out, doc: join(out, 'doc', 'evo-pop.md'), command: 'topiary reproduce evo-pop --seeds 1 --budget smoke', progress: false,
});
/** The one sentence with wall times in it. */
const timeless = (doc: string) => doc.replace(/took \d+ min of training and removal in all \(this invocation: [\d.]+ min;/, 'took (time) (this invocation: (time);');

test('an EVO-POP reproduction over 2 worker processes writes the local document and plots; every arm and seed is one job, run once', async () => {
  const evo = getReproduction('evo-pop');
  const local = opts(join(tmp, 'local'));
  await evo.run(local);
  const queued = opts(join(tmp, 'queued'));
  const r = await sweepReproduction(evo, queued, { queue: parseQueueUrl(redis.url()), store: new FsStore(storeDir), wait: true, pollMs: 100 });
  const specs = evo.distributed!.plan(queued);
  assert.equal(r.total, specs.length);
  assert.deepEqual([r.enqueued, r.gathered, r.wrote], [specs.length, specs.length, true], procs.map((p) => p.log).join('\n'));
  // The jobs are plain data of a known kind, checked by the same schema a worker uses.
  for (const s of specs) {
    const job = await Job.fromId(runs, runJobId('evo-pop', s));
    const data = parseJob(RunJob, job!.data, `job ${job!.id}`);
    assert.equal(data.reproduction, 'evo-pop');
    assert.equal(job!.attemptsMade, 1, `${s.name} ran once`);
  }
  const localDoc = readFileSync(local.doc, 'utf8'), queuedDoc = readFileSync(queued.doc, 'utf8');
  assert.match(localDoc, /took \d+ min of training and removal in all \(this invocation: [\d.]+ min;/);
  assert.equal(timeless(queuedDoc), timeless(localDoc));
  const svgs = readdirSync(join(local.out, 'doc')).filter((f) => f.endsWith('.svg')).sort();
  assert.ok(svgs.length >= 5, `trajectory plots: ${svgs.join(', ')}`);
  assert.deepEqual(readdirSync(join(queued.out, 'doc')).filter((f) => f.endsWith('.svg')).sort(), svgs);
  for (const f of svgs) assert.equal(readFileSync(join(queued.out, 'doc', f), 'utf8'), readFileSync(join(local.out, 'doc', f), 'utf8'), f);
  // A run's folder as the local one (checkpoints aside), its pruned model byte for byte.
  const mass = specs.find((s) => s.dir.includes('mlp_replicator_') && !s.dir.includes('taylor') && !s.dir.includes('activation'))!;
  const files = (d: string) => readdirSync(d, { recursive: true }).map(String).filter((f) => !f.startsWith('checkpoints') && !f.endsWith('run.lock')).sort();
  assert.deepEqual(files(join(queued.out, mass.dir)), files(join(local.out, mass.dir)));
  const pruned = files(join(local.out, mass.dir)).find((f) => f.endsWith('.safetensors') && f.startsWith('pruned_'))!;
  assert.ok(pruned, 'a pruned model was saved');
  assert.ok(readFileSync(join(queued.out, mass.dir, pruned)).equals(readFileSync(join(local.out, mass.dir, pruned))));
  assert.deepEqual(JSON.parse(readFileSync(join(queued.out, mass.dir, 'evo.json'), 'utf8')).rows, JSON.parse(readFileSync(join(local.out, mass.dir, 'evo.json'), 'utf8')).rows);
});
