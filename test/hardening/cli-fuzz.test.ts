/**
 * Property-based fuzz of the command line (fast-check, seeded): a few hundred generated command
 * lines over train, prune, evo, search, reproduce, export and shrink, each a valid tiny run with
 * zero or more hostile mutations (bad numbers, hex, FIFOs, /dev/zero, oversized or corrupt files,
 * NaN and relabelled models, unusable --out folders, unknown flags and junk). The invariant for
 * every one: exit 0, or exactly one clean error line and a non-zero exit; never a stack trace, an
 * uncaught error, a hang past the timeout, or a write outside --out.
 *
 * The generated lines run in-process (buildCli() with captured output, on a tiny generated MNIST)
 * in one child process, test/hardening/fuzz-child.ts, so that a few hundred fit in well under two
 * minutes on two cores; a sample runs as real processes, to check exit codes, signals and time
 * limits as a user sees them. Seed: TOPIARY_FUZZ_SEED (default 11), cases: TOPIARY_FUZZ_RUNS (300).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { assertInvariant, repoRoot } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'topiary-fuzz-spawned-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('fuzz: generated command lines in-process (seeded): exit 0 or one clean line, no stack, no write outside --out', () => {
  const result = join(root, 'fuzz.json');
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/hardening/fuzz-child.ts'), result], { cwd: repoRoot, encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.signal, null, `the fuzz process was killed (${r.signal}): a hang?\n${r.stderr.slice(-2000)}`);
  assert.equal(r.status, 0, r.stderr.slice(-4000));
  const f = JSON.parse(readFileSync(result, 'utf8')) as { ok: boolean; error: string | null; tally: Record<string, { ok: number; refused: number }>; seed: number; runs: number; seconds: number };
  console.log(`# fuzz: ${f.runs} cases (seed ${f.seed}) in ${f.seconds.toFixed(1)} s: ` + Object.entries(f.tally).map(([k, v]) => `${k} ${v.ok} ran, ${v.refused} refused`).join('; '));
  assert.ok(f.ok, f.error ?? '');
});

// A tiny MNIST for the spawned cases (they stop at validation, or at the data).
const DATA = join(root, 'data');
function idx(dims: number[], data: Uint8Array): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h.writeUInt32BE(0x0800 | dims.length, 0);
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([h, data]));
}
mkdirSync(join(DATA, 'mnist'), { recursive: true });
for (const [split, n] of [['train', 96], ['t10k', 32]] as const) {
  writeFileSync(join(DATA, 'mnist', `${split}-images-idx3-ubyte.gz`), idx([n, 28, 28], new Uint8Array(n * 784)));
  writeFileSync(join(DATA, 'mnist', `${split}-labels-idx1-ubyte.gz`), idx([n], Uint8Array.from({ length: n }, (_, i) => i % 10)));
}
const FIFO = join(root, 'fifo');
spawnSync('mkfifo', [FIFO]);
const PLAIN = join(root, 'plain.txt');
writeFileSync(PLAIN, 'hello\n');
const tiny = (out: string) => ['--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--batch-size', '32', '--lr', '0.05', '--subset', '64',
  '--val-fraction', '0.25', '--threads', '1', '--data-dir', DATA, '--out', out];

test('spawned: real processes on a sample of hostile lines exit non-zero with one line, no signal, within the time limit', async () => {
  const cases: string[][] = [
    ['train', ...tiny(join(root, 's1')), '--recipe', FIFO],
    ['prune', ...tiny(PLAIN), '--method', 'random', '--sparsity', '0.5', '--epochs', '0x10'],
    ['evo', ...tiny('/dev/null')],
    ['search', '--from', '/dev/zero', '--out', join(root, 's4')],
    ['train', ...tiny(join(root, 's5')), '--data-dir', PLAIN],
  ];
  const run = (args: string[]) => new Promise<{ args: string[]; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((done) => {
    const p = spawn(process.execPath, [join(repoRoot, 'bin/topiary.js'), ...args], { cwd: repoRoot, env: { ...process.env, TOPIARY_CLI_IMPORT: '' } });
    let stdout = '', stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 90_000);
    p.on('close', (code, signal) => { clearTimeout(timer); done({ args, code, signal, stdout, stderr }); });
  });
  for (const r of await Promise.all(cases.map(run))) {
    assert.equal(r.signal, null, `${r.args.join(' ')}: killed by ${r.signal} (a hang past 90 s?)`);
    assertInvariant(r.args, { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr }, 'spawned');
    assert.notEqual(r.code, 0, `${r.args.join(' ')} must be refused`);
  }
});
