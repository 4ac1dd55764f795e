/**
 * `topiary search --from model.onnx --queue ...` (issue 12): the queue's workers load the imported
 * model's graph from the evaluation context (a stored artifact beside the state dict) and score the
 * candidates; the search equals the local one, solution for solution. Needs redis-server and bullmq
 * (the queue's optional dependencies) and real MNIST; skipped with the reason otherwise.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validate } from '../../src/experiment/config.js';
import { runHierMoea } from '../../src/experiment/reproduce-hier-moea.js';
import { SearchConfig } from '../../src/prune/hier-moea/config.js';
import { REDIS_BIN, startRedis, type RedisServer } from '../queue/redis.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const hasBull = (() => { try { import.meta.resolve('bullmq'); return true; } catch { return false; } })();
const skip = !existsSync(join(dataDir, 'mnist', 'train-images-idx3-ubyte.gz')) ? `real MNIST not found under ${dataDir}`
  : !hasBull ? 'bullmq is not installed (the queue is optional)' : !existsSync(REDIS_BIN) && REDIS_BIN.startsWith('/') ? 'no redis-server' : false;
const tmp = mkdtempSync(join(tmpdir(), 'hier-moea-onnx-queue-'));
let redis: RedisServer | undefined;
const workers: ChildProcess[] = [];
const logs: string[] = [];

before(async () => {
  if (skip) return;
  redis = await startRedis();
  for (const w of ['w1', 'w2']) {
    const child = spawn(process.execPath, [join(repo, 'bin', 'topiary.js'), 'worker', '--queue', redis.url(), '--work', join(tmp, w), '--data-dir', dataDir],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TOPIARY_DATA: dataDir } });
    const k = logs.push('') - 1;
    child.stderr!.on('data', (d: Buffer) => { logs[k] += d.toString(); });
    workers.push(child);
  }
});

after(async () => {
  for (const c of workers) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('a search from an ONNX file whose candidates two queue workers score gives the local search exactly', { skip }, async () => {
  const { RemoteEvaluator, parseQueueUrl } = await import('../../src/queue/index.js');
  const cfg = validate(SearchConfig, { from: join(repo, 'test/fixtures/onnx/mnist_trained.onnx'), dataset: 'mnist', pop: 6, phase1Gens: 2, phase2Gens: 2,
    valSize: 300, bnBatches: 1, bnBatchSize: 64, finetuneEpochs: 0, seed: 4, threads: 1 });
  const local = await runHierMoea(cfg, { out: join(tmp, 'local'), dataDir });
  let remote: Awaited<ReturnType<typeof RemoteEvaluator.start>> | undefined;
  const queue = parseQueueUrl(redis!.url());
  const res = await runHierMoea(cfg, { out: join(tmp, 'remote'), dataDir, remote: async (setup) => (remote = await RemoteEvaluator.start(setup, { queue, pollMs: 200 })) });
  assert.ok(remote && remote.evaluations > 0, `the remote evaluator was used\n${logs.join('\n')}`);
  assert.deepEqual(res.solutions, local.solutions);
  assert.deepEqual(res.reference, local.reference);
  assert.deepEqual(res.hypervolume, local.hypervolume);
  assert.ok(readFileSync(join(tmp, 'remote', 'pareto-masks.safetensors')).equals(readFileSync(join(tmp, 'local', 'pareto-masks.safetensors'))));
});
