/** Helpers for the hardening tests: the CLI as a user runs it, one-line error checks, snapshots of folders. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataRoot, repoRoot } from '../nn/util.js';

export { dataRoot, repoRoot };

export const mnistPresent = existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte.gz')) || existsSync(join(dataRoot, 'mnist', 'train-images-idx3-ubyte'));
export const skipNoMnist = !mnistPresent && `real MNIST not found under ${dataRoot} (set TOPIARY_DATA to a folder holding mnist/)`;

export interface Ran { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** `node bin/topiary.js <args>`, synchronously. */
export function topiary(args: string[], o: { cwd?: string; env?: Record<string, string>; timeout?: number } = {}): Ran {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/topiary.js'), ...args], {
    cwd: o.cwd ?? repoRoot, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: dataRoot, ...o.env }, timeout: o.timeout ?? 120_000,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** The same without waiting. */
export function topiaryAsync(args: string[], o: { cwd?: string; env?: Record<string, string> } = {}): Promise<Ran> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [join(repoRoot, 'bin/topiary.js'), ...args], { cwd: o.cwd ?? repoRoot, env: { ...process.env, TOPIARY_DATA: dataRoot, ...o.env } });
    let stdout = '', stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    p.on('close', (status, signal) => done({ status, signal, stdout, stderr }));
  });
}

/** Informational notes a command may print before its work (the recipe defaults it applied). */
const NOTE = /^topiary: .* defaults from .*\(flags or --recipe override them\)$/;

/** stderr without the hints and notes: what remains of a refused command must be its one error line. */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && l !== '(run with --verbose for the stack)' && l !== '(run with --help for usage)' && !NOTE.test(l));
}

/** A refusal as the rules want it: non-zero exit, no signal, one `topiary:` line (plus the --verbose hint), no stack. */
export function assertOneLine(r: Ran, expect: RegExp[], what: string): string {
  assert.equal(r.signal, null, `${what}: killed by ${r.signal}\n${r.stderr}`);
  assert.notEqual(r.status, 0, `${what}: exit 0\n${r.stdout}\n${r.stderr}`);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `${what}: expected one error line, got:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /internal error|^\s+at /m, `${what}: a stack trace:\n${r.stderr}`);
  for (const e of expect) assert.match(lines[0], e, `${what}: ${lines[0]}`);
  return lines[0];
}

/** Every path under `dir` with its size and content hash-ish (bytes), for "left intact" checks. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n), r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(p);
      if (st.isDirectory()) { out[r + '/'] = 'dir'; walk(p, r); } else out[r] = readFileSync(p).toString('base64');
    }
  };
  walk(dir, '');
  return out;
}

/** What a command did: its exit code and output; `uncaught` when an error escaped the command (a crash in a real process). */
export interface Outcome { code: number; stdout: string; stderr: string; uncaught?: unknown }

/** The fuzz invariant: exit 0, or exactly one clean error line and a non-zero exit; never a stack trace or an uncaught error. */
export function assertInvariant(args: string[], r: Outcome, what: string): void {
  const show = `${what}: topiary ${args.map((a) => (a.length > 60 ? `${a.slice(0, 60)}...` : a)).join(' ')}\n--- exit ${r.code}\n${r.stderr.slice(0, 2000)}`;
  assert.equal(r.uncaught, undefined, `uncaught ${String((r.uncaught as Error)?.stack ?? r.uncaught)}\n${show}`);
  assert.doesNotMatch(r.stderr, /internal error|^\s+at .+\(.*:\d+:\d+\)|^\s+at file:/m, `a stack trace\n${show}`);
  // No command at all (`topiary`, `topiary --`): commander prints the usage, which is fine.
  if (r.code !== 0 && !r.stderr.startsWith('Usage: topiary [options] [command]')) {
    const lines = errorLines(r.stderr).filter((l) => !/^\(.*\)$/.test(l) && !/^epoch \d+\/\d+ /.test(l) && !/^evaluating candidates|^phase \d|^generation/.test(l));
    assert.equal(lines.length, 1, `expected one error line\n${show}`);
    assert.match(lines[0], /^(topiary: |error: )/, `the error line names topiary\n${show}`);
    assert.ok(lines[0].length < 1000, `a short line\n${show}`);
  }
}

