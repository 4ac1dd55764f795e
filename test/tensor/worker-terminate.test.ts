/**
 * A worker thread stopped with terminate() while it runs native ops must never abort the process.
 * Once V8 is terminating the worker, napi can neither make a tensor handle nor throw a JS error;
 * node-addon-api then threw a C++ Napi::Error out of the callback, std::terminate ran, and the whole
 * process died with SIGABRT (this broke CI once, in HIER-MOEA's evaluation pool). Here, in a child
 * process, workers making tensors and raising op errors in tight loops are terminated at many
 * different moments; the child must end normally and report every round.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const addon = resolve(root, 'build/Release/topiary_native.node');

// Plain JS in both threads: the raw addon, no TypeScript loader, so each worker starts fast.
const workerCode = `
const { parentPort } = require('node:worker_threads');
const n = require(${JSON.stringify(addon)});
n.setNumThreads(1);
parentPort.postMessage('running');
for (;;) {
  const a = n.randn([64, 64]);
  const b = n.matmul(a, a);
  try { n.matmul(a, n.zeros([3, 5])); } catch {}
  try { n.add(a, 'not a tensor'); } catch {}
  n.dispose(a); n.dispose(b);
}`;

const parentCode = `
const { Worker } = require('node:worker_threads');
const rounds = Number(process.argv[1]);
(async () => {
  for (let r = 0; r < rounds; r++) {
    const workers = [0, 1].map(() => new Worker(${JSON.stringify(workerCode)}, { eval: true }));
    await Promise.all(workers.map((w) => new Promise((ok) => w.once('message', ok))));
    // Let the loops run a round-dependent while (0 to 6 ms), then stop them mid-op.
    await new Promise((ok) => setTimeout(ok, r % 7));
    const codes = await Promise.all(workers.map((w) => w.terminate()));
    if (codes.some((c) => c !== 1)) throw new Error('unexpected exit codes ' + codes);
  }
  process.stdout.write('rounds ' + rounds + '\\n');
})().catch((e) => { console.error(e); process.exit(2); });`;

test('terminating workers in the middle of native ops never aborts the process', () => {
  const rounds = 40;
  const r = spawnSync(process.execPath, ['-e', parentCode, String(rounds)], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.signal, null, `the process was killed by ${r.signal}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /terminate called/);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), `rounds ${rounds}`);
});
