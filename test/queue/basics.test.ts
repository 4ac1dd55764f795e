/** The queue's address, the store's hash checks and the one-line refusals, without a running queue. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ConfigError } from '../../src/core/errors.js';
import { checkReachable, parseQueueUrl, QueueError } from '../../src/queue/connection.js';
import { RunJob, parseJob } from '../../src/queue/jobs.js';
import { FsStore } from '../../src/queue/store.js';
import { RunThread } from '../../src/queue/run-job.js';
import { cacheRawDatasets, loadRaw } from '../../src/data/raw.js';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const dataDir = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const tmp = mkdtempSync(join(tmpdir(), 'topiary-queue-basics-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

test('a Redis URL becomes connection options: host, port, database, user, password, TLS; the password never shows', () => {
  const a = parseQueueUrl('redis://127.0.0.1:6390/3');
  assert.deepEqual(a.options, { host: '127.0.0.1', port: 6390, db: 3 });
  assert.equal(a.display, 'redis://127.0.0.1:6390/3');
  assert.deepEqual(parseQueueUrl('redis://queue.lab').options, { host: 'queue.lab', port: 6379, db: 0 });
  const s = parseQueueUrl('rediss://worker:s%40cret@queue.lab:6380/1');
  assert.deepEqual(s.options, { host: 'queue.lab', port: 6380, db: 1, username: 'worker', password: 's@cret', tls: { servername: 'queue.lab' } });
  assert.equal(s.display, 'rediss://worker:***@queue.lab:6380/1');
  assert.ok(!s.display.includes('cret'));
});

test('a bad queue URL is one ConfigError naming the flag and what was expected', () => {
  const bad: [string, RegExp][] = [
    ['localhost:6379', /^--queue: expected redis:\/\/\[user:password@\]host\[:port\]\[\/db\] or rediss:\/\/\.\.\. \(TLS\), got the scheme 'localhost'$/],
    ['6379', /^--queue: expected redis:\/\/.*, got '6379'$/],
    ['http://host:6379', /got the scheme 'http'$/],
    ['redis://host:6379/zero', /^--queue: the database must be a number \(redis:\/\/host:port\/0\), got '\/zero'$/],
    ['redis://host/0?tls=1', /^--queue: no query or fragment is understood, got '\?tls=1'$/],
  ];
  for (const [url, re] of bad) assert.throws(() => parseQueueUrl(url), (e: Error) => e instanceof ConfigError && re.test(e.message), url);
});

test('an address nobody answers at fails at once with one line, without the password', async () => {
  const port = await new Promise<number>((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
  await assert.rejects(checkReachable(parseQueueUrl(`redis://:hunter2@127.0.0.1:${port}/0`)),
    (e: Error) => e instanceof QueueError && e.message === `cannot reach the queue at redis://:***@127.0.0.1:${port}/0: ECONNREFUSED`);
});

test('the store gives back what it was given, and refuses bytes whose sha256 is not the recorded one, by name', async () => {
  const store = new FsStore(join(tmp, 'store'));
  const bytes = new Uint8Array([1, 2, 3, 250]);
  const a = await store.putBytes('runs/run-abc/model.safetensors', bytes);
  // hashlib.sha256(bytes([1, 2, 3, 250])).hexdigest() in Python
  assert.deepEqual(a, { key: 'runs/run-abc/model.safetensors', sha256: 'bacdef9c76b37eb70caaf81ea41ecddd56d625b72e453de5eabbd59745279847', size: 4 });
  assert.deepEqual([...(await store.getBytes(a.key, a.sha256, 'm'))], [1, 2, 3, 250]);
  await store.getFile(a.key, a.sha256, join(tmp, 'copy', 'model.safetensors'), 'm');
  assert.deepEqual([...readFileSync(join(tmp, 'copy', 'model.safetensors'))], [1, 2, 3, 250]);
  writeFileSync(join(tmp, 'store', 'runs', 'run-abc', 'model.safetensors'), new Uint8Array([1, 2, 3, 251]));
  await assert.rejects(store.getBytes(a.key, a.sha256, 'pmp/smoke dense seed 0: model.safetensors'),
    /^QueueError: pmp\/smoke dense seed 0: model\.safetensors: the store's runs\/run-abc\/model\.safetensors \(in .*\) has sha256 [0-9a-f]{16}\.\.\., the job recorded [0-9a-f]{16}\.\.\.; refusing the corrupted artifact$/);
  await assert.rejects(store.getBytes('runs/none', a.sha256, 'x'), /^QueueError: x: runs\/none is not in the store/);
  await assert.rejects(store.putBytes('../escape', bytes), /store key '\.\.\/escape': expected a relative path/);
  assert.equal(await store.has('runs/run-abc/model.safetensors'), true);
});

test('a run payload is checked field by field; a bad one is unrecoverable', () => {
  const ok = { kind: 'reproduce.run', reproduction: 'pmp', name: 'pmp/smoke dense seed 0', dir: 'smoke/dense_abc/seed_0', spec: { id: 'dense' }, needs: [] };
  assert.deepEqual(parseJob(RunJob, ok, 'job 1'), ok);
  assert.throws(() => parseJob(RunJob, { ...ok, dir: '/etc' }, 'job 1'), (e: Error) => e.name === 'UnrecoverableError' && /^job 1: invalid job payload: dir: must be a relative path/.test(e.message));
  assert.throws(() => parseJob(RunJob, { ...ok, code: 'process.exit()' }, 'job 1'), /invalid job payload: \(root\): Unrecognized key: "code"/);
});

test('the CLI refuses a bad --queue or a --queue without --store with one line and exit code 2, before any work', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(repo, 'bin', 'topiary.js'), ...args], { encoding: 'utf8', cwd: tmp });
  const w = cli('worker', '--queue', 'localhost:6379');
  assert.equal(w.status, 2);
  assert.equal(w.stderr, "topiary: --queue: expected redis://[user:password@]host[:port][/db] or rediss://... (TLS), got the scheme 'localhost'\n(run with --verbose for the stack)\n");
  const r = cli('reproduce', 'pmp', '--budget', 'smoke', '--queue', 'redis://127.0.0.1:1/0');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^topiary: --store: give the shared folder where workers put model files and masks/);
  // Every reproduction travels over a queue now (EVO-POP too): this one fails only at the unreachable queue.
  const e = cli('reproduce', 'evo-pop', '--queue', 'redis://127.0.0.1:1/0', '--store', 's');
  assert.notEqual(e.status, 0);
  assert.match(e.stderr, /^topiary: cannot reach the queue at redis:\/\/127\.0\.0\.1:1\/0: ECONNREFUSED\n/);
});

test('the run thread lives across runs: a run past its time limit has it terminated and fails (to be retried), a bad spec fails for good and keeps it', async () => {
  const root = join(tmp, 'runs');
  const spec = { budget: 'smoke', id: 'dense', method: 'dense', seed: 0, train: { model: 'lenet_300_100', dataset: 'mnist', epochs: 50, batchSize: 64, lr: 0.1 }, prune: null, threads: 1 };
  const t = new RunThread();
  try {
    await t.warm();
    assert.equal(t.started, 1);
    await assert.rejects(t.run({ reproduction: 'pmp', spec, root, dir: 'slow/seed_0' }, 300), (e: Error) => e.name === 'Error' && e.message === 'timed out after 0.3 s (--job-timeout)');
    await assert.rejects(t.run({ reproduction: 'pmp', spec: { ...spec, threads: 0 }, root, dir: 'bad/seed_0' }),
      (e: Error) => e.name === 'UnrecoverableError' && /^ConfigError: invalid pmp run: threads: /.test(e.message));
    assert.equal(t.started, 2, 'a fresh thread after the terminated one');
    // Two runs in the kept thread, then the same run in a fresh one: the same model, byte for byte.
    const tiny = { ...spec, train: { ...spec.train, epochs: 1, subset: 300 } };
    await t.run({ reproduction: 'pmp', spec: tiny, root, dir: 'a/seed_0' });
    await t.run({ reproduction: 'pmp', spec: { ...tiny, seed: 1 }, root, dir: 'b/seed_1' });
    assert.equal(t.started, 2, 'kept after a configuration error and between runs');
    const fresh = new RunThread();
    try {
      await fresh.run({ reproduction: 'pmp', spec: { ...tiny, seed: 1 }, root, dir: 'c/seed_1' });
    } finally {
      await fresh.close();
    }
    assert.ok(readFileSync(join(root, 'b/seed_1/model.safetensors')).equals(readFileSync(join(root, 'c/seed_1/model.safetensors'))));
    assert.ok(!readFileSync(join(root, 'a/seed_0/model.safetensors')).equals(readFileSync(join(root, 'c/seed_1/model.safetensors'))));
  } finally {
    await t.close();
  }
});

test('parsed datasets are cached only when asked, and a file rewritten since is parsed again', async () => {
  const src = join(dataDir, 'mnist');
  const dir = join(tmp, 'data', 'mnist');
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(src).filter((f) => f.startsWith('t10k'))) copyFileSync(join(src, f), join(dir, f));
  const opts = { dataDir: join(tmp, 'data'), download: false };
  const off1 = await loadRaw('mnist', 'test', opts), off2 = await loadRaw('mnist', 'test', opts);
  assert.notEqual(off1.images, off2.images, 'off by default: parsed each time');
  cacheRawDatasets(1 << 28);
  try {
    const a = await loadRaw('mnist', 'test', opts), b = await loadRaw('mnist', 'test', opts);
    assert.equal(a, b, 'the second load is the cached one');
    assert.deepEqual([a.n, a.labels[0], a.labels[9999]], [10000, off1.labels[0], off1.labels[9999]]);
    // The first label rewritten (IDX labels: an 8-byte header, then one byte per image).
    const lf = join(dir, readdirSync(dir).find((f) => f.startsWith('t10k-labels'))!);
    const bytes = lf.endsWith('.gz') ? gunzipSync(readFileSync(lf)) : readFileSync(lf);
    bytes[8] = (bytes[8] + 1) % 10;
    writeFileSync(lf, lf.endsWith('.gz') ? gzipSync(bytes) : bytes);
    const c = await loadRaw('mnist', 'test', opts);
    assert.notEqual(c, a);
    assert.equal(c.labels[0], (a.labels[0] + 1) % 10);
    assert.equal(await loadRaw('mnist', 'test', opts), c);
  } finally {
    cacheRawDatasets(0);
  }
});
