/**
 * Attack: two processes on one --out. run.json used to be checked, then written, with nothing in
 * between: two runs with different settings both passed, and one silently replaced or resumed the
 * other's work. Now the run folder is locked for the whole run (run.lock, O_EXCL, PID + host +
 * process start time); a second process is refused with a message naming the holder; a lock left
 * by a killed process is stale and taken over, by exactly one of several racing processes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockRunFolder, LOCK_NAME, RunLockedError } from '../../src/core/run-lock.js';
import { assertOneLine, repoRoot, skipNoMnist, topiary, topiaryAsync } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'topiary-lock-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const lockMod = JSON.stringify(join(repoRoot, 'src/core/run-lock.ts'));

/** A child process that takes the lock on `dir`, says so, and holds it until killed. */
function holder(dir: string): Promise<{ pid: number; kill: () => Promise<void> }> {
  const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    `import { lockRunFolder } from ${lockMod}; lockRunFolder(${JSON.stringify(dir)}, 'holder'); process.stdout.write('held\\n'); setInterval(() => {}, 1000);`], { cwd: repoRoot });
  return new Promise((ok, fail) => {
    p.stdout.setEncoding('utf8').on('data', (d: string) => { if (d.includes('held')) ok({ pid: p.pid!, kill: () => new Promise((done) => { p.on('exit', () => done()); p.kill('SIGKILL'); }) }); });
    p.on('exit', (code) => fail(new Error(`holder exited with ${code}`)));
  });
}

const train = (out: string, lr = '0.1', extra: string[] = []) => ['train', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--batch-size', '64', '--lr', lr,
  '--subset', '300', '--threads', '1', '--out', out, ...extra];

test('a held folder is refused naming the holder; after the holder is killed (SIGKILL) its stale lock is taken over', { skip: skipNoMnist }, async () => {
  const out = join(root, 'held');
  const h = await holder(out);
  const r = topiary(train(out));
  assertOneLine(r, [new RegExp(`is in use by process ${h.pid} on ${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(since [0-9T:.-]+Z: holder\\)`), /use another --out/], 'held folder');
  assert.ok(!existsSync(join(out, 'run.json')), 'the refused run wrote nothing');
  await h.kill();
  assert.ok(existsSync(join(out, LOCK_NAME)), 'SIGKILL leaves the lock file');
  const ok = topiary(train(out));
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(existsSync(join(out, 'result.json')));
  assert.ok(!existsSync(join(out, LOCK_NAME)), 'released at the end of the run');
});

test('the issue\'s race: two runs with different settings on one folder at once, exactly one runs', { skip: skipNoMnist }, async () => {
  const out = join(root, 'race');
  // Long enough (2 epochs of 3000 examples) that the two overlap.
  const extra = ['--subset', '3000', '--epochs', '2'];
  const [a, b] = await Promise.all([topiaryAsync(train(out, '0.1', extra)), topiaryAsync(train(out, '0.05', extra))]);
  const winners = [a, b].filter((r) => r.status === 0);
  assert.equal(winners.length, 1, `exactly one runs:\n${a.stderr}\n---\n${b.stderr}`);
  const loser = a.status === 0 ? b : a;
  assertOneLine(loser, [/is in use by process \d+ on .*|holds another run \(lr: /], 'the second run');
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { config: { lr: number } };
  const runJson = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { identity: { lr: number } };
  assert.equal(result.config.lr, runJson.identity.lr, 'result and run.json describe the same run');
  assert.equal(result.config.lr, a.status === 0 ? 0.1 : 0.05, 'the winner\'s settings');
});

test('several processes racing for a stale lock: exactly one takes it', async () => {
  const dir = join(root, 'stale-race');
  mkdirSync(dir);
  // A PID that is surely dead: a process that has exited.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  writeFileSync(join(dir, LOCK_NAME), JSON.stringify({ pid: Number(dead.stdout), host: hostname(), started: '2026-01-01T00:00:00.000Z', procStart: '1' }));
  const script = `import { lockRunFolder } from ${lockMod};
    try { lockRunFolder(${JSON.stringify(dir)}); process.stdout.write('got'); setTimeout(() => {}, 1500); }
    catch (e) { process.stdout.write(e.constructor.name + ': ' + e.message); }`;
  const runs = await Promise.all(Array.from({ length: 4 }, () => new Promise<string>((done) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot });
    let s = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { s += d; });
    p.on('close', () => done(s));
  })));
  assert.equal(runs.filter((s) => s === 'got').length, 1, runs.join('\n'));
  for (const s of runs.filter((x) => x !== 'got')) assert.match(s, /^RunLockedError: .* is in use by process \d+/);
  assert.ok(!existsSync(join(dir, LOCK_NAME)), 'the winner released it at exit');
});

test('in-process: re-entrant, released once per take; a lock of another host is refused with how to clear it; a PID reused by another process is stale', () => {
  const dir = join(root, 'inproc');
  mkdirSync(dir);
  const r1 = lockRunFolder(dir);
  const r2 = lockRunFolder(dir);
  r2();
  assert.ok(existsSync(join(dir, LOCK_NAME)), 'still held by the outer take');
  r1();
  assert.ok(!existsSync(join(dir, LOCK_NAME)));
  writeFileSync(join(dir, LOCK_NAME), JSON.stringify({ pid: 1, host: 'elsewhere.example', started: '2026-01-01T00:00:00.000Z' }));
  assert.throws(() => lockRunFolder(dir), (e: unknown) => e instanceof RunLockedError &&
    /in use by process 1 on elsewhere\.example .*if that process is gone, remove .*run\.lock/.test(e.message));
  // PID 1 exists here, but it did not start at the time the lock records: the lock is stale.
  writeFileSync(join(dir, LOCK_NAME), JSON.stringify({ pid: 1, host: hostname(), started: '2026-01-01T00:00:00.000Z', procStart: 'not-its-start-time' }));
  const r3 = lockRunFolder(dir);
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_NAME), 'utf8')).pid, process.pid);
  r3();
  // A folder made only for a run that then failed is removed again.
  const fresh = join(root, 'made', 'for', 'nothing');
  lockRunFolder(fresh)();
  assert.ok(!existsSync(join(root, 'made')), 'the folders it created are gone');
});

test('a worker thread terminated mid-run (a queue job past --job-timeout) leaves a lock that is stale, not a live holder', async () => {
  const { Worker } = await import('node:worker_threads');
  const dir = join(root, 'thread');
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('../../src/core/run-lock.ts', import.meta.url).href;
  const w = new Worker(`const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })
      .then((l) => { l.lockRunFolder(${JSON.stringify(dir)}, 'thread'); parentPort.postMessage('held'); setInterval(() => {}, 1000); });`, { eval: true });
  await new Promise<void>((ok) => w.on('message', () => ok()));
  assert.throws(() => lockRunFolder(dir), /in use by process \d+ .*thread\)/, 'while the thread lives, its lock holds');
  await w.terminate();
  assert.ok(existsSync(join(dir, LOCK_NAME)), 'terminate() runs no exit handler: the lock file stays');
  const release = lockRunFolder(dir);
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_NAME), 'utf8')).pid, process.pid);
  release();
});
