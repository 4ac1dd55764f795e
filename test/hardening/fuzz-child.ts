/**
 * The in-process half of test/hardening/cli-fuzz.test.ts, in its own process (its stdout and
 * stderr are captured case by case, which a test runner's own output must not go through).
 * Writes {ok, error, tally, seconds} as JSON to the file named by its first argument.
 *
 * Property-based fuzz of the command line (fast-check, seeded): a few hundred generated command
 * lines over train, prune, evo, search, reproduce, export and shrink, each a valid tiny
 * run with zero or more hostile mutations (bad numbers, hex, FIFOs, /dev/zero, oversized or
 * corrupt files, NaN and relabelled models, unusable --out folders, unknown flags and junk).
 * The invariant for every one: exit 0, or exactly one clean error line and a non-zero exit;
 * never a stack trace, an uncaught error, a hang past the timeout, or a write outside --out.
 *
 * Most cases run in-process (buildCli() with captured output, on a tiny generated MNIST folder),
 * so a few hundred fit in well under two minutes on two cores; a few run as real processes to
 * check exit codes, signals and timeouts as a user sees them. Reproduce cases always carry an
 * invalid argument (a valid one would start a long reproduction). Seed: TOPIARY_FUZZ_SEED (11).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import type { Command } from 'commander';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { createModel } from '../../src/models/registry.js';
import { encodeSafetensors, saveSafetensors, tidy } from '../../src/tensor/index.js';
import { assertInvariant, repoRoot, type Outcome } from './helpers.js';

process.env.TOPIARY_CLI_IMPORT = '1';
const { buildCli } = await import('../../src/cli/main.js');

const SEED = Number(process.env.TOPIARY_FUZZ_SEED ?? 11);
const RUNS = Number(process.env.TOPIARY_FUZZ_RUNS ?? 300);
const root = mkdtempSync(join(tmpdir(), 'topiary-fuzz-'));
const resultFile = process.argv[2];

// ---- a tiny MNIST (96 training, 32 test images) and hostile files -----------------------------------
const DATA = join(root, 'data');
function idx(dims: number[], data: Uint8Array): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h.writeUInt32BE(0x0800 | dims.length, 0);
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([h, data]));
}
for (const folder of ['mnist', 'fashion-mnist']) {
  mkdirSync(join(DATA, folder), { recursive: true });
  for (const [split, n] of [['train', 96], ['t10k', 32]] as const) {
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
    const pixels = Uint8Array.from({ length: n * 784 }, (_, i) => ((Math.floor(i / 784) % 10) * 25 + (i % 7)) & 0xff);
    writeFileSync(join(DATA, folder, `${split}-images-idx3-ubyte.gz`), idx([n, 28, 28], pixels));
    writeFileSync(join(DATA, folder, `${split}-labels-idx1-ubyte.gz`), idx([n], labels));
  }
}
const F = join(root, 'files');
mkdirSync(F);
const file = (name: string, content: string | Buffer) => { writeFileSync(join(F, name), content); return join(F, name); };
const FIFO = join(F, 'fifo');
spawnSync('mkfifo', [FIFO]);
const PLAIN = file('plain.txt', 'hello\n');
const BIG = file('big.yaml', `model: mlp\n#${'x'.repeat(1_100_000)}\n`);
const NOTYAML = file('bad.yaml', 'model: [unclosed\n');
const UNKNOWN_KEY = file('unknown.yaml', 'model: mlp\nlerningRate: 3\n');
const LIST_YAML = file('list.yaml', '- 1\n- 2\n');
const BADZIP = join(root, 'badzip');
cpSync(DATA, BADZIP, { recursive: true });
writeFileSync(join(BADZIP, 'mnist', 'train-images-idx3-ubyte.gz'), Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(64, 7)]));
const trainCfg = validate(TrainConfig, { model: 'mlp', dataset: 'mnist', epochs: 1, batchSize: 32, lr: 0.05, subset: 64, valFraction: 0.25, threads: 1 });
const mlpState = (f: (sd: Record<string, import('../../src/tensor/index.js').Tensor>) => Buffer) => tidy(() => {
  const m = createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10 });
  try { return f(m.stateDict()); } finally { m.dispose(); }
});
const meta = { model: 'mlp', dataset: 'mnist', config: JSON.stringify(trainCfg) };
const NAN_MODEL = join(F, 'nan.safetensors');
tidy(() => {
  const m = createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10 });
  saveSafetensors(NAN_MODEL, Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, t.mul(NaN)])), meta);
  m.dispose();
});
const relabel = (b: Buffer) => {
  const n = Number(b.readBigUInt64LE(0));
  return Buffer.concat([b.subarray(0, 8), Buffer.from(b.subarray(8, 8 + n).toString().replace(/"F32"/g, '"I32"')), b.subarray(8 + n)]);
};
const RELABELLED = file('relabelled.safetensors', mlpState((sd) => relabel(encodeSafetensors(sd, meta))));
const NOTJSON_META = file('notjson.safetensors', mlpState((sd) => encodeSafetensors(sd, { ...meta, config: '{not json' })));
const TRUNCATED = file('truncated.safetensors', mlpState((sd) => encodeSafetensors(sd, meta).subarray(0, 200)));
const HUGE_HEADER = file('huge-header.safetensors', Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]), Buffer.alloc(8)]));
const LONG = join(root, 'x'.repeat(300));

// ---- in-process runs of the real command tree -------------------------------------------------------

function quiet(cmd: Command, sink: (s: string) => void): void {
  cmd.exitOverride();
  cmd.configureOutput({ writeOut: sink, writeErr: sink });
  for (const c of cmd.commands) quiet(c, sink);
}

async function inProcess(args: string[]): Promise<Outcome> {
  let stdout = '', stderr = '';
  const program = buildCli();
  quiet(program, (s) => { stderr += s; });
  const out = process.stdout.write.bind(process.stdout), err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => { stdout += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { stderr += String(s); return true; }) as typeof process.stderr.write;
  process.exitCode = undefined;
  let code = 0, uncaught: unknown;
  try {
    await program.parseAsync(['node', 'topiary', ...args]);
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    const ce = e as { code?: unknown; exitCode?: unknown } | null;
    if (ce && typeof ce.code === 'string' && ce.code.startsWith('commander.') && typeof ce.exitCode === 'number') {
      code = ce.exitCode;
    } else {
      uncaught = e;
      code = 1;
    }
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = undefined;
  }
  return { code, stdout, stderr, uncaught };
}

/** Paths and sizes under a folder (symlinks not followed), to see writes. */
function listing(dir: string, skip: string[] = []): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try { names = readdirSync(d); } catch { return; }
    for (const n of names) {
      const p = join(d, n);
      if (skip.includes(p)) continue;
      const st = lstatSync(p);
      out.push(`${p}:${st.isDirectory() ? 'd' : st.size}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}
const top = (d: string) => { try { return readdirSync(d).sort().join(','); } catch { return '-'; } };
const repoTop = () => [repoRoot, join(repoRoot, 'runs'), join(repoRoot, 'docs', 'results')].map(top).join('|');

// ---- the generator --------------------------------------------------------------------------------
const badInt = fc.constantFrom('0', '-1', '1.5', '0x10', '1e3', 'abc', '', ' ', '99999999999999999999', 'Infinity', 'NaN', '1_0', '0b11');
const badNum = fc.constantFrom('-1', '0', 'x', '', '0x1', '1e400', 'NaN', '-Infinity', '1,2', '.', '--');
const hostileFile = fc.constantFrom(FIFO, '/dev/zero', '/dev/null', PLAIN, BIG, F, join(F, 'missing'), '', RELABELLED, NAN_MODEL, NOTJSON_META, TRUNCATED, HUGE_HEADER);
const hostileRecipe = fc.constantFrom(FIFO, '/dev/zero', BIG, NOTYAML, UNKNOWN_KEY, LIST_YAML, PLAIN, F, join(F, 'missing.yaml'), '');
const hostileOut = fc.constantFrom(PLAIN, '/dev/null', '', ' ', LONG, '/sys/kernel/topiary-fuzz', '/proc/self/topiary-fuzz', join(PLAIN, 'sub'), FIFO);
/** For commands whose --out is a file: existing files and FIFOs are theirs to decide about (covered by a spawned case). */
const hostileOutFile = fc.constantFrom('/dev/null', LONG, '/sys/kernel/topiary-fuzz', '/proc/self/topiary-fuzz', join(PLAIN, 'sub'), F);
const junk = fc.oneof(fc.constantFrom('--no-such-flag', '-x', '--', '--lr', '---', 'extra', '--out', '--json'), fc.string({ maxLength: 12 }).map((s) => `--${s}`));

type Mut = [string, fc.Arbitrary<string>] | [string];
const trainMuts: Mut[] = [
  ['--epochs', badInt], ['--batch-size', badInt], ['--subset', fc.constantFrom('1', '0', '2', '64.5', '-5', '0x40')], ['--lr', fc.oneof(badNum, fc.constant('1e6'))],
  ['--model', fc.constantFrom('resnet7', '', 'lenet5', 'lenet_300_100', '__proto__', 'constructor', 'mlp ')], ['--dataset', fc.constantFrom('imagenet', '', 'fashion_mnist', 'MNIST', 'toString')],
  ['--device', fc.constantFrom('x', 'cuda', 'cuda:99', 'gpu', '', 'cpu ')], ['--recipe', hostileRecipe], ['--out', hostileOut],
  ['--data-dir', fc.constantFrom(PLAIN, BADZIP)], ['--val-fraction', fc.constantFrom('0.6', '-0.1', '0', '1', 'x')], ['--widths', fc.constantFrom('0', 'a,b', '1.5', '8,', ',', '0x8')],
  ['--seed', badInt], ['--threads', fc.constantFrom('0', '-1', 'abc', '1.5')], ['--stop-after-epochs', badInt], ['--momentum', badNum], ['--warmup-epochs', badInt],
  ['--label-smoothing', fc.constantFrom('2', '-1', 'x')], ['--optimizer', fc.constantFrom('sgdd', '')], ['--schedule', fc.constantFrom('nope', '')], ['--init', fc.constantFrom('nope', '')],
  ['--rotation', badNum], ['--crop-padding', badInt], ['--nesterov'], ['--flip'], ['--json'],
];
const pruneMuts: Mut[] = [
  ['--method', fc.constantFrom('pmp', 'gmp', 'snip', 'grasp', 'magnitude', 'lth', 'nope', '')], ['--sparsity', fc.constantFrom('1', '-0.1', '0.99', 'x', '0x1', '')],
  ['--from', hostileFile], ['--start-epoch', badInt], ['--end-epoch', badInt], ['--frequency', badInt], ['--samples', badInt], ['--scope', fc.constantFrom('nope', 'layer')],
  ['--granularity', fc.constantFrom('nope', 'structured')], ['--prunable', fc.constantFrom('(', '[', 'zzz')], ['--rewind-iteration', badInt], ['--control-rounds', fc.constantFrom('x', '1.5', '-1')],
];
const evoMuts: Mut[] = [
  ['--dynamics', fc.constantFrom('nope', 'none', '')], ['--fitness', fc.constantFrom('nope', '')], ['--eta', fc.oneof(badNum, fc.constant('1e308'))], ['--beta', fc.constantFrom('1', '-1', 'x')],
  ['--every', badInt], ['--epsilon', badNum], ['--prune-at', fc.constantFrom('1', '0.5,2', 'x', '', '0')], ['--criteria', fc.constantFrom('nope', '', 'mass,nope')],
  ['--finetune-epochs', badInt], ['--record-every', badInt], ['--cost', fc.constantFrom('mean', 'x', '')], ['--calibration-examples', badInt],
];
const searchMuts: Mut[] = [
  ['--from', hostileFile], ['--pop', fc.constantFrom('3', '0x4', '0', 'x')], ['--workers', fc.constantFrom('300', '0', '-1', '1.5', '0x2')], ['--device', fc.constantFrom('x', 'cuda:1', '')],
  ['--phase1-gens', badInt], ['--phase2-gens', badInt], ['--val-size', badInt], ['--tolerance', fc.constantFrom('2', '-1', 'x')], ['--recipe', hostileRecipe], ['--out', hostileOut],
  ['--magnitude-seeds', fc.constantFrom('1.5', 'x', '0')], ['--pick', fc.constantFrom('1', 'x')], ['--importance', fc.constantFrom('nope')], ['--model', fc.constantFrom('lenet5', 'nope')],
  ['--dataset', fc.constantFrom('cifar10', 'nope')], ['--data-dir', fc.constantFrom(PLAIN, BADZIP)], ['--eval-batch-size', badInt], ['--mutation-rate', badNum],
];

const mutations = (list: Mut[], max: number) => fc.array(fc.constantFrom(...list), { maxLength: max }).chain((ms) =>
  fc.tuple(...ms.map(([flag, arb]) => (arb ? arb.map((v) => [flag, v]) : fc.constant([flag]))), fc.array(junk, { maxLength: 1 }))
    .map((parts) => (parts as string[][]).flat()));
// Flags at most once each would be kinder to the user, but repeats (the last wins) are fair game too.

/** A generated command line; @OUT@ and @DIR@ stand for the case's --out and its folder (so a counterexample prints as plain text). */
interface Case { cmd: string; args: string[] }
const tiny = (out = '@OUT@') => ['--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--batch-size', '32', '--lr', '0.05', '--subset', '64',
  '--val-fraction', '0.25', '--threads', '1', '--data-dir', DATA, '--out', out];
/** A finished tiny training run (made in the first test) for search, export, shrink and prune --from. */
const GOOD = join(root, 'good');

const trainCase = fc.record({ cmd: fc.constant('train'), m: mutations(trainMuts, 3) }).map(({ cmd, m }): Case => ({ cmd, args: ['train', ...tiny(), ...m] }));
const pruneCase = fc.record({ m: mutations([...pruneMuts, ...trainMuts.slice(0, 10)], 3), from: fc.boolean() })
  .map(({ m, from }): Case => ({ cmd: 'prune', args: ['prune', ...tiny(), '--method', from ? 'magnitude' : 'random', '--sparsity', '0.5', ...(from ? ['--from', GOOD, '--no-finetune'] : []), ...m] }));
const evoCase = mutations([...evoMuts, ...trainMuts.slice(0, 10)], 3).map((m): Case => ({ cmd: 'evo', args: ['evo', ...tiny(), '--prune-at', '0.5', '--criteria', 'mass,random', ...m] }));
const searchCase = mutations(searchMuts, 3).map((m): Case => ({ cmd: 'search', args: ['search', '--from', join(GOOD, 'model.safetensors'), '--pop', '4', '--phase1-gens', '1', '--phase2-gens', '0',
  '--val-size', '16', '--finetune-epochs', '0', '--magnitude-seeds', '0.5', '--threads', '1', '--data-dir', DATA, '--out', '@OUT@', ...m] }));
// Always at least one invalid argument: a valid reproduce would start a real reproduction.
const reproduceCase = fc.record({
  name: fc.constantFrom('nope', 'pmp', 'hier-moea', 'evo-pop', ''),
  bad: fc.constantFrom(['--seeds', '0'], ['--seeds', 'x'], ['--seeds', '1.5'], ['--seeds', '0x3'], ['--budget', 'huge'], ['--budget', ''], ['--workers', '0'], ['--workers', 'x'], ['--workers', '300'], ['--no-such-flag']),
  m: fc.array(fc.constantFrom(['--budget', 'smoke'], ['--seeds', '1'], ['--json']), { maxLength: 1 }).map((x) => x.flat()),
}).map(({ name, bad, m }): Case => ({ cmd: 'reproduce', args: ['reproduce', name, '--out', '@OUT@', '--doc', '@DIR@/doc.md', ...m, ...bad] }));
const exportCase = fc.record({ from: fc.oneof(fc.constant('good'), hostileFile), m: fc.array(fc.constantFrom(['--opset', '12'], ['--opset', 'x'], ['--pick', 'nope'], ['--pick', 'shrunk'], ['--format', 'tflite'], ['--input-shape', '0,1'], ['--json']), { maxLength: 2 }).map((x) => x.flat()), out: fc.oneof(fc.constant('ok'), hostileOutFile) })
  .map(({ from, m, out }): Case => ({ cmd: 'export', args: ['export', '--from', from === 'good' ? GOOD : from, '--out', out === 'ok' ? '@OUT@/model.onnx' : out, ...m] }));
const shrinkCase = fc.oneof(fc.constant('good'), hostileFile).map((from): Case => ({ cmd: 'shrink', args: ['shrink', '--from', from === 'good' ? '@OUT@' : from] }));
const anyCase = fc.oneof(
  { arbitrary: trainCase, weight: 4 }, { arbitrary: pruneCase, weight: 3 }, { arbitrary: evoCase, weight: 2 }, { arbitrary: searchCase, weight: 3 },
  { arbitrary: reproduceCase, weight: 2 }, { arbitrary: exportCase, weight: 1 }, { arbitrary: shrinkCase, weight: 1 },
  { arbitrary: fc.array(junk, { minLength: 1, maxLength: 3 }).map((j): Case => ({ cmd: 'junk', args: j })), weight: 1 },
);

let n = 0;
/** Per command: cases that ran to exit 0, and cases refused with one line. */
const tally: Record<string, { ok: number; refused: number }> = {};
const watched = () => [listing(F), listing(DATA), listing(BADZIP), listing(GOOD), repoTop()].map((l) => (Array.isArray(l) ? l.join('\n') : l));

async function check(c: Case): Promise<void> {
  const dir = join(root, 'cases', String(n++));
  mkdirSync(dir, { recursive: true });
  const out = join(dir, 'out');
  // shrink works in a run folder: a fresh copy of the good run is its --out.
  if (c.cmd === 'shrink') cpSync(GOOD, out, { recursive: true });
  const args = c.args.map((a) => a.replaceAll('@OUT@', out).replaceAll('@DIR@', dir));
  const before = watched();
  const beforeCase = listing(dir, [out]);
  const r = await inProcess(args);
  assertInvariant(args, r, `case ${n - 1}`);
  const t = (tally[c.cmd] ??= { ok: 0, refused: 0 });
  if (r.code === 0) t.ok++; else t.refused++;
  assert.deepEqual(listing(dir, [out]), beforeCase, `a write outside --out: topiary ${args.join(' ')}`);
  assert.deepEqual(watched(), before, `a write outside --out (files, data, the repository): topiary ${args.join(' ')}`);
  rmSync(dir, { recursive: true, force: true });
}


const t0 = performance.now();
let error: string | null = null;
try {
  const r = await inProcess(['train', ...tiny(GOOD)]);
  assert.equal(r.code, 0, `the good run: ${r.stderr}`);
  await fc.assert(fc.asyncProperty(anyCase, async (c) => { await check(c); }), { seed: SEED, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true });
  assert.ok(Object.values(tally).reduce((a, v) => a + v.ok, 0) > 5, 'some generated lines are valid runs');
} catch (e) {
  error = (e as Error).message;
} finally {
  rmSync(root, { recursive: true, force: true });
}
writeFileSync(resultFile, JSON.stringify({ ok: error === null, error, tally, seed: SEED, runs: RUNS, seconds: (performance.now() - t0) / 1000 }));
