/**
 * Sweeps and HIER-MOEA candidates over a real BullMQ queue on a real redis-server, with worker
 * processes started as a user starts them (`topiary worker`): a PMP smoke sweep gathered into the
 * same document, byte for byte, as the local run; nothing run twice; a corrupted artifact refused
 * by name; a malformed job failed by name while the worker lives on; a worker SIGKILLed mid-run
 * whose run another worker finishes; a search whose candidates workers score, with the local
 * search's front exactly.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Job, Queue } from 'bullmq';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import '../../src/experiment/reproductions.js';
import { getReproduction, type ReproduceOptions } from '../../src/experiment/reproduce.js';
import { runHierMoea } from '../../src/experiment/reproduce-hier-moea.js';
import { runTraining } from '../../src/experiment/train-run.js';
import { SearchConfig } from '../../src/prune/hier-moea/config.js';
import { REPORT_SPARSITIES } from '../../src/prune/hier-moea/run.js';
import { bullConnection, EVAL_QUEUE, parseQueueUrl, PREFIX, RUNS_QUEUE } from '../../src/queue/connection.js';
import { FsStore, RemoteEvaluator, runJobId, sweepReproduction } from '../../src/queue/index.js';
import { startRedis, type RedisServer } from './redis.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const tmp = mkdtempSync(join(tmpdir(), 'topiary-queue-'));
const storeDir = join(tmp, 'store');

let redis: RedisServer;
let runs: Queue;
interface Proc { child: ChildProcess; log: string; pid: number }
const procs: Proc[] = [];

function startWorker(name: string): Proc {
  const child = spawn(process.execPath, [join(repo, 'bin', 'topiary.js'), 'worker', '--queue', redis.url(), '--store', storeDir, '--work', join(tmp, name),
    '--data-dir', dataDir, '--stalled-seconds', '3'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TOPIARY_DATA: dataDir } });
  const p: Proc = { child, log: '', pid: child.pid! };
  child.stderr!.on('data', (d: Buffer) => { p.log += d.toString(); });
  procs.push(p);
  return p;
}

async function until<T>(what: string, f: () => Promise<T | undefined | null | false> | T | undefined | null | false, ms = 60000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v as T;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}\n${procs.map((p) => `--- worker ${p.pid}\n${p.log}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const reproOpts = (out: string, seeds: number): ReproduceOptions => ({
  seeds, budget: 'smoke', dataDir, out, doc: join(out, 'pmp.md'), command: `topiary reproduce pmp --seeds ${seeds} --budget smoke`, progress: false,
});

before(async () => {
  redis = await startRedis();
  runs = new Queue(RUNS_QUEUE, { connection: bullConnection(parseQueueUrl(redis.url())), prefix: PREFIX });
  startWorker('w1');
  startWorker('w2');
});

after(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await runs?.close();
  await redis?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const pmp = getReproduction('pmp');
const SWEEP = 'dense,random_789,magnitude_noft_789';

test('a PMP sweep over 2 worker processes writes the local document byte for byte, and a second sweep runs nothing again', async () => {
  process.env.TOPIARY_PMP_ONLY = SWEEP;
  try {
    const local = reproOpts(join(tmp, 'local'), 2);
    await pmp.run(local);
    const queue = parseQueueUrl(redis.url()), store = new FsStore(storeDir);
    const q = reproOpts(join(tmp, 'queued'), 2);
    // Without --wait: enqueued and left to the workers.
    const first = await sweepReproduction(pmp, q, { queue, store, wait: false });
    assert.equal(first.total, 6);
    assert.equal(first.enqueued, 6);
    const done = await sweepReproduction(pmp, q, { queue, store, wait: true, pollMs: 100 });
    assert.equal(done.enqueued, 0, 'the jobs were on the queue already');
    assert.equal(done.wrote, true);
    assert.equal(readFileSync(q.doc, 'utf8'), readFileSync(local.doc, 'utf8'));
    // Every run once, each by one of the two workers; the magnitude runs waited for their dense run.
    const specs = pmp.distributed!.plan(q);
    const jobs = await Promise.all(specs.map((s) => Job.fromId(runs, runJobId('pmp', s))));
    for (const j of jobs) assert.equal(j!.attemptsMade, 1, `${j!.name} ran once`);
    const workers = new Set(jobs.map((j) => (j!.returnvalue as { worker: string }).worker.split(':')[1]));
    assert.ok([...workers].every((w) => procs.slice(0, 2).some((p) => String(p.pid) === w)));
    const finished = jobs.map((j) => j!.finishedOn);
    // The gathered folders hold what the local ones hold (checkpoints aside), the models byte for byte.
    const dense = specs.find((s) => s.name === 'pmp/smoke dense seed 1')!;
    assert.deepEqual(readdirSync(join(q.out, dense.dir)).sort(), readdirSync(join(local.out, dense.dir)).filter((f) => f !== 'checkpoints').sort());
    assert.ok(readFileSync(join(q.out, dense.dir, 'model.safetensors')).equals(readFileSync(join(local.out, dense.dir, 'model.safetensors'))));
    // A sweep into a fresh folder gathers the finished jobs without running anything.
    const again = reproOpts(join(tmp, 'again'), 2);
    const r = await sweepReproduction(pmp, again, { queue, store, wait: true, pollMs: 100 });
    assert.deepEqual([r.enqueued, r.gathered, r.already], [0, 6, 0]);
    assert.equal(readFileSync(again.doc, 'utf8'), readFileSync(local.doc, 'utf8'));
    const later = await Promise.all(specs.map((s) => Job.fromId(runs, runJobId('pmp', s))));
    assert.deepEqual(later.map((j) => j!.finishedOn), finished);
    const doneLines = procs.slice(0, 2).map((p) => (p.log.match(/^\S+ done /gm) ?? []).length);
    assert.equal(doneLines[0] + doneLines[1], 6, `runs done by the workers: ${doneLines.join(' + ')}`);
    // A third call with the same folder finds everything there.
    const third = await sweepReproduction(pmp, q, { queue, store, wait: true });
    assert.deepEqual([third.already, third.gathered, third.enqueued], [6, 0, 0]);
  } finally {
    delete process.env.TOPIARY_PMP_ONLY;
  }
});

test('a corrupted artifact in the store is refused, naming the run and the file', async () => {
  process.env.TOPIARY_PMP_ONLY = SWEEP;
  try {
    const o = reproOpts(join(tmp, 'corrupt'), 2);
    const dense = pmp.distributed!.plan(o).find((s) => s.name === 'pmp/smoke dense seed 0')!;
    const file = join(storeDir, 'runs', runJobId('pmp', dense), 'model.safetensors');
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[bad.length - 5] ^= 0xff;
    writeFileSync(file, bad);
    try {
      await assert.rejects(sweepReproduction(pmp, o, { queue: parseQueueUrl(redis.url()), store: new FsStore(storeDir), wait: true }),
        /pmp\/smoke dense seed 0: model\.safetensors: the store's runs\/run-[0-9a-f]+\/model\.safetensors .* has sha256 [0-9a-f]+\.\.\., the job recorded [0-9a-f]+\.\.\.; refusing the corrupted artifact/);
      assert.equal(existsSync(join(o.out, dense.dir, 'result.json')), false, 'no result.json for a run whose files were refused');
    } finally {
      writeFileSync(file, good);
    }
  } finally {
    delete process.env.TOPIARY_PMP_ONLY;
  }
});

test('a malformed or unknown job is failed with a named error, and the worker carries on', async () => {
  await runs.add('by hand', { kind: 'reproduce.run', reproduction: 'pmp', name: 'evil', dir: '../../etc', spec: {}, needs: [] }, { jobId: 'bad-dir' });
  await runs.add('by hand', { kind: 'shell', command: 'rm -rf /' }, { jobId: 'bad-kind' });
  await runs.add('by hand', { kind: 'reproduce.run', reproduction: 'pmp', name: 'bad spec', dir: 'x/seed_0', spec: { budget: 'smoke', id: 'dense' }, needs: [] }, { jobId: 'bad-spec', attempts: 3 });
  const reason = (id: string) => until(`job ${id} to fail`, async () => ((await runs.getJobState(id)) === 'failed' ? (await Job.fromId(runs, id))!.failedReason : null));
  assert.match(await reason('bad-dir'), /^job bad-dir: invalid job payload: dir: must be a relative path without \. or \.\. segments$/);
  assert.match(await reason('bad-kind'), /^job bad-kind: invalid job payload: kind: .*; reproduction: .*/);
  assert.match(await reason('bad-spec'), /ConfigError: invalid pmp run: method: .*; seed: .*; train: .*/);
  assert.equal((await Job.fromId(runs, 'bad-spec'))!.attemptsMade, 1, 'a bad configuration is not retried');
  for (const p of procs) assert.equal(p.child.exitCode, null, `worker ${p.pid} lives on`);
  for (const id of ['bad-dir', 'bad-kind', 'bad-spec']) await (await Job.fromId(runs, id))!.remove();
});

test('a worker SIGKILLed in the middle of a run: another worker takes the run over, and the sweep ends as the local one', async () => {
  process.env.TOPIARY_PMP_ONLY = 'random_98';
  try {
    const local = reproOpts(join(tmp, 'local-kill'), 2);
    await pmp.run(local);
    const o = reproOpts(join(tmp, 'kill'), 2);
    const sweep = sweepReproduction(pmp, o, { queue: parseQueueUrl(redis.url()), store: new FsStore(storeDir), wait: true, pollMs: 100 });
    // The first worker to announce a run is killed while it runs it.
    const [victim, jobId] = await until('a worker to start a run', () => {
      for (const p of procs) {
        if (p.child.exitCode !== null) continue;
        const m = /run pmp\/smoke random_98 seed \d \(job (run-[0-9a-f]+), attempt 1\)/.exec(p.log);
        if (m && !p.log.includes(`(job ${m[1]})\n`)) return [p, m[1]] as const;
      }
      return null;
    });
    victim.child.kill('SIGKILL');
    startWorker('w3');
    const r = await sweep;
    assert.equal(r.wrote, true);
    assert.equal(readFileSync(o.doc, 'utf8'), readFileSync(local.doc, 'utf8'));
    const job = (await Job.fromId(runs, jobId))!;
    const by = (job.returnvalue as { worker: string }).worker.split(':')[1];
    assert.notEqual(by, String(victim.pid), 'finished by another worker');
    assert.ok(procs.some((p) => String(p.pid) === by && p.log.includes(`done ${job.name} (job ${jobId})`)));
    assert.ok(victim.child.signalCode === 'SIGKILL');
  } finally {
    delete process.env.TOPIARY_PMP_ONLY;
  }
});

test('a HIER-MOEA search whose candidates two remote workers score gives the local search\'s front exactly', async () => {
  const denseDir = join(tmp, 'search-dense');
  const dc = validate(TrainConfig, { model: 'mlp', dataset: 'mnist', widths: [24], epochs: 1, batchSize: 64, lr: 0.05, momentum: 0.9, subset: 1500, valFraction: 0.2, threads: 1, seed: 0 });
  const run = await runTraining(dc, { out: denseDir, dataDir });
  run.model.dispose();
  run.data.dispose();
  const cfg = validate(SearchConfig, { from: join(denseDir, 'model.safetensors'), pop: 8, phase1Gens: 3, phase2Gens: 3, valSize: 200, finetuneEpochs: 0, seed: 3, threads: 1 });
  const localRes = await runHierMoea(cfg, { out: join(tmp, 'search-local'), dataDir });
  let remote: RemoteEvaluator | undefined;
  const queue = parseQueueUrl(redis.url());
  const remoteRes = await runHierMoea(cfg, {
    out: join(tmp, 'search-remote'), dataDir, remote: async (setup) => (remote = await RemoteEvaluator.start(setup, { queue, pollMs: 200 })),
  });
  assert.ok(remote, 'the remote evaluator was used');
  // Every generation's distinct candidates (the search's memo serves networks scored before: hier-moea/memo.ts),
  // then global magnitude at the final set's sizes and the reported sparsities.
  const gm = remoteRes.solutions.length + REPORT_SPARSITIES.length;
  assert.ok(remote!.evaluations > gm + 8 && remote!.evaluations <= 8 * 6 + gm, `${remote!.evaluations} remote evaluations`);
  assert.deepEqual(remoteRes.reference, localRes.reference);
  assert.ok(localRes.completed && remoteRes.completed);
  assert.deepEqual(remoteRes.solutions, localRes.solutions);
  assert.deepEqual(remoteRes.anchors, localRes.anchors);
  assert.deepEqual(remoteRes.hypervolume, localRes.hypervolume);
  const hist = (d: string) => (JSON.parse(readFileSync(join(tmp, d, 'history.json'), 'utf8')) as { front: number[][] }[]).map((h) => h.front);
  assert.deepEqual(hist('search-remote'), hist('search-local'));
  assert.ok(readFileSync(join(tmp, 'search-remote', 'pareto-masks.safetensors')).equals(readFileSync(join(tmp, 'search-local', 'pareto-masks.safetensors'))));
  // The candidates were scored by the worker processes (distinct candidates are distinct jobs).
  const ev = new Queue(EVAL_QUEUE, { connection: bullConnection(queue), prefix: PREFIX });
  const completed = await ev.getCompleted(0, -1);
  await ev.close();
  assert.ok(completed.length > 0 && completed.length <= remote!.evaluations, `${completed.length} candidate jobs`);
  const live = procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
  assert.ok(live.length >= 2);
});
