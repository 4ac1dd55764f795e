/**
 * An exclusive lock on a run folder, held for the whole run: `<folder>/run.lock`, created with
 * O_EXCL (atomic on local file systems) and holding the holder's PID, host, process start time and
 * command line. A second process is refused with a message naming the holder. A lock whose holder
 * is gone (same host, no such PID, or the PID now belongs to a process started at another time, or
 * the worker thread that took it was terminated) is stale and taken over; breaking it is itself guarded by an O_EXCL file, so two processes that
 * both find it stale cannot both take it. A lock from another host is never judged stale.
 *
 * Why not proper-lockfile: it proves liveness by refreshing the lock's mtime from a timer, and a
 * training epoch runs libtorch synchronously on the JS thread for minutes, starving the timer; the
 * lock would look stale mid-run (its default is 10 s) and a second process would take it.
 *
 * Re-entrant within a process: nested runs (a dense run inside a search's folder, a stage of a
 * pruning job) lock and release the same folder without conflict. Held locks are removed at exit;
 * one left by a killed process is stale by the rule above.
 */
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, realpathSync, rmdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, TopiaryError } from './errors.js';

/** Another process holds the run folder (or the folder cannot be locked at all). */
export class RunLockedError extends TopiaryError {
  override readonly code = 'RUN_LOCKED';
}

export const LOCK_NAME = 'run.lock';

/** `tid`/`tidStart`: the OS thread (a worker thread's runs lock too, and a terminated thread leaves its lock behind). */
interface Holder { pid: number; host: string; started: string; procStart?: string; tid?: number; tidStart?: string; command?: string }

/** The kernel's start time of a process (clock ticks since boot), where /proc has it. */
function procStart(pid: number): string | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** This OS thread's id and start time, where /proc has them (a worker thread has its own). */
function threadSelf(): { tid?: number; tidStart?: string } {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    const s = readFileSync('/proc/thread-self/stat', 'utf8');
    return { tid, tidStart: s.slice(s.lastIndexOf(')') + 2).split(' ')[19] };
  } catch {
    return {};
  }
}

function alive(h: Holder): boolean {
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  // The PID exists: the same process only if it started when the lock says.
  const now = procStart(h.pid);
  if (h.procStart && now && now !== h.procStart) return false;
  // A worker thread's lock: gone with the thread (terminated mid-run: no exit handler ran).
  if (h.tid !== undefined && h.tid !== h.pid && existsSync(`/proc/${h.pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${h.pid}/task/${h.tid}/stat`, 'utf8');
      if (h.tidStart && s.slice(s.lastIndexOf(')') + 2).split(' ')[19] !== h.tidStart) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function readHolder(file: string): Holder | null {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Holder;
    return typeof v?.pid === 'number' && typeof v.host === 'string' ? v : null;
  } catch {
    return null;
  }
}

const describe = (h: Holder | null) => h
  ? `process ${h.pid} on ${h.host} (since ${h.started}${h.command ? `: ${h.command}` : ''})`
  : 'a process that left an unreadable lock';

interface Held { count: number; dir: string; file: string; content: string; createdDir: string | null }
const held = new Map<string, Held>();
let exitHook = false;

function writeExclusive(file: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

function removeIfOurs(file: string, content: string): void {
  try {
    if (readFileSync(file, 'utf8') === content) rmSync(file, { force: true });
  } catch { /* already gone */ }
}

/** The topmost folder of `dir` that does not exist yet (what mkdir -p will create), or null. */
function firstMissing(dir: string): string | null {
  let d = resolve(dir), missing: string | null = null;
  while (!existsSync(d)) {
    missing = d;
    const up = resolve(d, '..');
    if (up === d) break;
    d = up;
  }
  return missing;
}

/**
 * An output folder that can be used: not empty, not too long, not something other than a folder,
 * under a folder that exists or can be made. Checked before any work, without writing.
 */
export function checkOutDir(out: string, flag = '--out'): string {
  const show = (v: string) => JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  const bad = (why: string): never => { throw new ConfigError(`${flag} ${show(out)}: ${why}`, [{ path: 'out', message: why }]); };
  if (out.trim() === '') bad('empty path');
  if (out.includes('\0')) bad('contains a NUL byte');
  if (Buffer.byteLength(out) > 4000) bad(`path too long (${Buffer.byteLength(out)} bytes)`);
  const long = resolve(out).split('/').find((p) => Buffer.byteLength(p) > 255);
  if (long !== undefined) bad(`a name in the path is too long (${Buffer.byteLength(long)} bytes, the limit is 255)`);
  let p = resolve(out);
  for (;;) {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') bad(`${p}: cannot be used (${code})`);
      const up = dirname(p);
      if (up === p) bad('no existing folder above it');
      p = up;
      continue;
    }
    if (!st.isDirectory()) bad(p === resolve(out) ? 'exists and is not a folder' : `${p} is not a folder`);
    try {
      accessSync(p, constants.W_OK | constants.X_OK);
    } catch {
      bad(`${p === resolve(out) ? 'the folder' : p} is not writable`);
    }
    return out;
  }
}

/**
 * Locks `dir` (created when missing) for this process; returns the release function. Throws
 * RunLockedError naming the holder when another live process has it.
 */
export function lockRunFolder(dir: string, command = process.argv.slice(2).join(' ')): () => void {
  checkOutDir(dir);
  const createdDir = firstMissing(dir);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new RunLockedError(`${dir}: cannot create the output folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  const key = realpathSync(dir);
  const mine = held.get(key);
  if (mine) {
    mine.count++;
    return once(() => release(key));
  }
  const file = join(dir, LOCK_NAME);
  const me: Holder = { pid: process.pid, host: hostname(), started: new Date().toISOString(), procStart: procStart(process.pid), ...threadSelf(), command: command.slice(0, 300) };
  const content = JSON.stringify(me) + '\n';
  const fail = (e: unknown): never => {
    removeCreated(resolve(dir), createdDir);
    if (e instanceof TopiaryError) throw e;
    throw new RunLockedError(`${file}: cannot create the lock (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  };
  try {
    for (let attempt = 0; ; attempt++) {
      if (writeExclusive(file, content)) break;
      const h = readHolder(file);
      const stale = h !== null && h.host === me.host && !alive(h);
      if (!stale || attempt >= 3) {
        throw new RunLockedError(`${dir} is in use by ${describe(h)}; wait for it to finish, or use another --out` +
          (h && h.host !== me.host ? ` (if that process is gone, remove ${file})` : h ? '' : ` (remove ${file} if no run uses this folder)`));
      }
      breakStale(file, h);
    }
  } catch (e) {
    fail(e);
  }
  held.set(key, { count: 1, dir: resolve(dir), file, content, createdDir });
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => { for (const h of held.values()) removeIfOurs(h.file, h.content); });
  }
  return once(() => release(key));
}

/** Removes a stale lock, under a second O_EXCL lock so that only one process breaks it. */
function breakStale(file: string, stale: Holder): void {
  const guard = `${file}.break`;
  const tag = JSON.stringify({ pid: process.pid, host: hostname(), procStart: procStart(process.pid), ...threadSelf() });
  if (!writeExclusive(guard, tag)) {
    // Another process is breaking it, or died doing so: a dead breaker's guard is removed.
    const g = readHolder(guard);
    if (g && g.host === hostname() && !alive({ ...g, started: '' })) rmSync(guard, { force: true });
    return;
  }
  try {
    const now = readHolder(file);
    if (now && now.pid === stale.pid && now.host === stale.host && now.procStart === stale.procStart && now.tid === stale.tid && now.started === stale.started) rmSync(file, { force: true });
  } finally {
    rmSync(guard, { force: true });
  }
}

function release(key: string): void {
  const h = held.get(key);
  if (!h) return;
  if (--h.count > 0) return;
  held.delete(key);
  removeIfOurs(h.file, h.content);
  removeCreated(h.dir, h.createdDir);
}

/** Folders made only to hold the lock of a run that then wrote nothing are removed again (rmdir: only when empty). */
function removeCreated(dir: string, top: string | null): void {
  if (!top) return;
  for (let d = dir; ; d = resolve(d, '..')) {
    try { rmdirSync(d); } catch { return; }
    if (d === top || d === resolve(d, '..')) return;
  }
}

function once(f: () => void): () => void {
  let done = false;
  return () => { if (!done) { done = true; f(); } };
}

/** Runs `body` with `dir` locked; the lock is released whatever happens. */
export async function withRunLock<T>(dir: string, body: () => Promise<T> | T): Promise<T> {
  const release = lockRunFolder(dir);
  try {
    return await body();
  } finally {
    release();
  }
}
