/**
 * The probe of issue 11, class by class (not a test file: a measurement for the closing
 * note). Each class is one hostile or careless input from the issue, run as a user runs it (the
 * CLI in a child process, or the API in-process); it counts as fixed when it is refused with one
 * clean line naming the problem and a non-zero exit (or, for the two recovery classes, when the
 * run goes through). Prints a table and the count.
 *
 *   TOPIARY_DATA=/work/shared/datasets node --import tsx test/hardening/probe.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DtypeError, ShapeError } from '../../src/core/errors.js';
import { Linear } from '../../src/nn/index.js';
import { encodeSafetensors, loadSafetensors, saveSafetensors, tensor, tidy } from '../../src/tensor/index.js';
import { dataRoot, errorLines, repoRoot } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'topiary-probe-'));
interface Ran { code: number | null; signal: string | null; stderr: string; stdout: string }
function cli(args: string[]): Promise<Ran> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [join(repoRoot, 'bin/topiary.js'), ...args], { cwd: repoRoot, env: { ...process.env, TOPIARY_DATA: dataRoot } });
    let stdout = '', stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), 180_000);
    p.on('close', (code, signal) => { clearTimeout(t); done({ code, signal, stderr, stdout }); });
  });
}
const cliSync = (args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin/topiary.js'), ...args], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, TOPIARY_DATA: dataRoot } });

const T = (out: string, lr = '0.05') => ['--model', 'mlp', '--dataset', 'mnist', '--epochs', '2', '--batch-size', '50', '--lr', lr, '--subset', '300', '--threads', '1', '--out', out];
const fresh = (name: string) => join(root, name);

// A run stopped after one epoch (a checkpoint to corrupt) and a finished one (a model to corrupt).
const R = fresh('R');
const r0 = cliSync(['train', ...T(R), '--stop-after-epochs', '1']);
if (r0.status !== 0) throw new Error(r0.stderr);
const DONE = fresh('done');
const d0 = cliSync(['train', ...T(DONE)]);
if (d0.status !== 0) throw new Error(d0.stderr);
const MODEL = join(DONE, 'model.safetensors');
const copyRun = (name: string, edit: (dir: string) => void = () => {}) => { const d = fresh(name); cpSync(R, d, { recursive: true }); edit(d); return d; };
const ck = (d: string) => join(d, 'checkpoints', 'epoch_0');

function rewriteModel(name: string, f: (b: Buffer) => Buffer): string {
  const p = fresh(`${name}.safetensors`);
  writeFileSync(p, f(readFileSync(MODEL)));
  return p;
}
function header(b: Buffer): { json: Record<string, unknown>; n: number } {
  const n = Number(b.readBigUInt64LE(0));
  return { json: JSON.parse(b.subarray(8, 8 + n).toString()), n };
}
const withHeader = (b: Buffer, json: Record<string, unknown>) => {
  const { n } = header(b);
  const h = Buffer.from(JSON.stringify(json).padEnd(n));
  if (h.length !== n) throw new Error('header grew');
  return Buffer.concat([b.subarray(0, 8), h, b.subarray(8 + n)]);
};
const NAN = fresh('nan.safetensors');
tidy(() => {
  const { tensors, metadata } = loadSafetensors(MODEL);
  saveSafetensors(NAN, Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.mul(NaN)])), metadata);
});
const RELABELLED = rewriteModel('relabelled', (b) => { const { json } = header(b); for (const v of Object.values(json)) if ((v as { dtype?: string }).dtype === 'F32') (v as { dtype: string }).dtype = 'I32'; return withHeader(b, json); });
const NOTJSON = rewriteModel('notjson', (b) => { const { json } = header(b); (json.__metadata__ as Record<string, string>).config = '{'.padEnd(((json.__metadata__ as Record<string, string>).config).length, ' '); return withHeader(b, json); });
const MANY = fresh('many.safetensors');
tidy(() => { const one = tensor([0]); const ts: Record<string, typeof one> = {}; for (let i = 0; i < 300_000; i++) ts[`t${i}`] = one; writeFileSync(MANY, encodeSafetensors(ts)); });
const FIFO = fresh('fifo');
spawnSync('mkfifo', [FIFO]);
const FILE = fresh('a-file');
writeFileSync(FILE, 'x');
// Data folders: the bomb, and an absurd header.
function dataWith(name: string, images: Buffer): string {
  const d = join(fresh(name), 'mnist');
  mkdirSync(d, { recursive: true });
  for (const f of ['train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']) cpSync(join(dataRoot, 'mnist', f), join(d, f));
  writeFileSync(join(d, 'train-images-idx3-ubyte.gz'), images);
  return fresh(name);
}
const hdr = (dims: number[]) => { const h = Buffer.alloc(4 + 4 * dims.length); h.writeUInt32BE(0x0800 | dims.length, 0); dims.forEach((x, i) => h.writeUInt32BE(x, 4 + 4 * i)); return h; };
const zeros = gzipSync(Buffer.alloc(64 << 20), { level: 9 });
const BOMB = dataWith('bomb', Buffer.concat([gzipSync(Buffer.concat([hdr([60000, 28, 28]), Buffer.alloc(64 << 20)]), { level: 9 }), ...Array(46).fill(zeros)]));
const ABSURD = dataWith('absurd', gzipSync(Buffer.concat([hdr([4000, 1000, 1000]), Buffer.alloc(16)])));

type Check = { name: string; run: () => Promise<{ ok: boolean; line: string }> };
const refused = (re: RegExp, after?: () => boolean) => async (args: string[]): Promise<{ ok: boolean; line: string }> => {
  const r = await cli(args);
  const lines = errorLines(r.stderr);
  const clean = r.signal === null && r.code !== 0 && lines.length === 1 && !/internal error|^\s+at /m.test(r.stderr) && re.test(lines[0]) && (after ? after() : true);
  return { ok: clean, line: lines.join(' | ').slice(0, 160) || `exit ${r.code}` };
};
const succeeds = (after: () => boolean) => async (args: string[]) => {
  const r = await cli(args);
  return { ok: r.code === 0 && after(), line: r.code === 0 ? 'exit 0' : errorLines(r.stderr).join(' | ').slice(0, 160) };
};
const c = (name: string, args: () => string[], how: (args: string[]) => Promise<{ ok: boolean; line: string }>): Check => ({ name, run: () => how(args()) });

const V = fresh('V');
const checks: Check[] = [
  c('1 traversal: latest.json path ../../V', () => {
    const d = copyRun('trav'); mkdirSync(V); cpSync(ck(d), V, { recursive: true }); writeFileSync(join(V, 'keep'), 'x');
    writeFileSync(join(d, 'checkpoints', 'latest.json'), JSON.stringify({ epoch: 0, path: '../../V' })); return ['train', ...T(d)];
  }, refused(/leads outside/, () => existsSync(join(V, 'keep')))),
  c('1 traversal: absolute path', () => { const d = copyRun('abs'); writeFileSync(join(d, 'checkpoints', 'latest.json'), JSON.stringify({ epoch: 0, path: V })); return ['train', ...T(d)]; }, refused(/absolute/, () => existsSync(join(V, 'keep')))),
  c('1 traversal: epoch folder a symlink out', () => { const d = copyRun('sym'); rmSync(ck(d), { recursive: true }); symlinkSync(V, ck(d)); return ['train', ...T(d)]; }, refused(/outside/, () => existsSync(join(V, 'keep')))),
  c('2 gzip bomb (3 GB)', () => ['train', ...T(fresh('o-bomb')), '--data-dir', BOMB], refused(/inflates past the 47040016 bytes/)),
  c('2 absurd IDX header (4 GB declared)', () => ['train', ...T(fresh('o-absurd')), '--data-dir', ABSURD], refused(/more than the/)),
  c('3 two processes: a held folder', () => ['train', ...T(HELD)], refused(/is in use by process \d+ on /)),
  c('4 divergence: --lr 1e6', () => ['train', ...T(fresh('o-lr'), '1e6')], refused(/training diverged: the loss is NaN at epoch \d of \d, batch \d+ \(step \d+\)/)),
  c('4 divergence: evo --eta 1e308', () => ['evo', ...T(fresh('o-eta')), '--eta', '1e308'], refused(/training diverged/)),
  c('4 NaN checkpoint resumed', () => { const d = copyRun('nanck'); cpSync(NAN, join(ck(d), 'model.safetensors')); return ['train', ...T(d)]; }, refused(/holds NaN or infinite values/)),
  c('4 search --from a NaN model', () => ['search', '--from', NAN, '--out', fresh('o-nan')], refused(/holds NaN or infinite values/)),
  c('4 safetensors header relabelled F32 -> I32', () => ['prune', ...T(fresh('o-rel')), '--method', 'magnitude', '--sparsity', '0.5', '--from', RELABELLED], refused(/int32 in the state dict but float32/)),
  c('4 --subset 1: empty validation split', () => ['train', ...T(fresh('o-sub')), '--subset', '1'], refused(/empty validation split/, () => !existsSync(fresh('o-sub')))),
  c('4 checkpoint missing optimizer.safetensors', () => { const d = copyRun('noopt'); rmSync(join(ck(d), 'optimizer.safetensors')); return ['train', ...T(d)]; }, refused(/optimizer\.safetensors: missing from the checkpoint/)),
  c('4 run.json deleted, rerun with another lr', () => { const d = copyRun('norun'); rmSync(join(d, 'run.json')); return ['train', ...T(d, '0.1')]; }, refused(/holds checkpoints but no run\.json/)),
  c('5 --recipe /dev/zero', () => ['train', '--recipe', '/dev/zero', '--out', fresh('o-z')], refused(/character device, not a regular file/)),
  c('5 --recipe FIFO', () => ['train', '--recipe', FIFO, '--out', fresh('o-f')], refused(/FIFO, not a regular file/)),
  c('5 prune --from /dev/zero', () => ['prune', ...T(fresh('o-pz')), '--method', 'magnitude', '--sparsity', '0.5', '--from', '/dev/zero'], refused(/not a regular file/)),
  c('5 search --from /dev/zero', () => ['search', '--from', '/dev/zero', '--out', fresh('o-sz')], refused(/not a regular file/)),
  c('5 search --workers 300', () => ['search', '--from', MODEL, '--workers', '300', '--out', fresh('o-w')], refused(/workers: 300 is more than the \d+ cores/)),
  ...(['train', 'prune', 'evo', 'search'] as const).flatMap((cmd) => ([
    ['a file', FILE], ['/dev/null', '/dev/null'], ['read-only', '/sys/kernel/topiary-probe'], ['empty', ''], ['too long', join(root, 'y'.repeat(300))],
  ] as const).map(([what, out]) => c(`5 ${cmd} --out ${what}`, () => {
    const base = cmd === 'search' ? ['search', '--from', MODEL] : [cmd, ...T('x').slice(0, -2), ...(cmd === 'prune' ? ['--method', 'random', '--sparsity', '0.5'] : [])];
    return [...base, '--out', out];
  }, refused(/--out|output folder/)))),
  c('5 checkpoint missing model.safetensors', () => { const d = copyRun('nomodel'); rmSync(join(ck(d), 'model.safetensors')); return ['train', ...T(d)]; }, refused(/model\.safetensors: missing from the checkpoint/)),
  c('5 state.json without rng', () => { const d = copyRun('norng'); const p = join(ck(d), 'state.json'); const s = JSON.parse(readFileSync(p, 'utf8')); delete s.rng; writeFileSync(p, JSON.stringify(s)); return ['train', ...T(d)]; }, refused(/rng is missing/)),
  c('5 state.json history not a list', () => { const d = copyRun('nohist'); const p = join(ck(d), 'state.json'); const s = JSON.parse(readFileSync(p, 'utf8')); s.history = {}; writeFileSync(p, JSON.stringify(s)); return ['train', ...T(d)]; }, refused(/history is not a list/)),
  c('5 metadata config not JSON (search --from)', () => ['search', '--from', NOTJSON, '--out', fresh('o-nj')], refused(/metadata 'config' is not JSON/)),
  c('6 kill debris (*.tmp-PID, half-deleted epoch_N) cleaned; resume works', () => {
    const d = copyRun('debris'); mkdirSync(join(d, 'checkpoints', '.epoch_1.tmp-99999')); writeFileSync(join(d, 'checkpoints', 'latest.json.tmp-99999'), '{'); mkdirSync(join(d, 'checkpoints', 'epoch_5')); DEBRIS = d; return ['train', ...T(d)];
  }, succeeds(() => !existsSync(join(DEBRIS, 'checkpoints', '.epoch_1.tmp-99999')) && !existsSync(join(DEBRIS, 'checkpoints', 'latest.json.tmp-99999')) && !existsSync(join(DEBRIS, 'checkpoints', 'epoch_5')))),
  c('6 bad --data-dir, then fixed with another setting', () => { const d = fresh('o-dd'); cliSync(['train', ...T(d), '--data-dir', FILE]); return ['train', ...T(d, '0.1')]; }, succeeds(() => true)),
  c('6 --device x (before any data)', () => ['train', ...T(fresh('o-dev')), '--device', 'x', '--data-dir', FILE], refused(/device: unknown device/)),
  c('6 --epochs 0x10', () => ['train', ...T(fresh('o-hex')), '--epochs', '0x10'], refused(/expected a decimal integer, got '0x10'/)),
  c('6 300,000 tensors: error line capped', () => ['prune', ...T(fresh('o-many')), '--method', 'magnitude', '--sparsity', '0.5', '--from', MANY], refused(/and \d+ more/)),
];
let DEBRIS = '';
// The held folder: a process holding its lock for the whole probe.
const HELD = fresh('held');
const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
  `import { lockRunFolder } from ${JSON.stringify(join(repoRoot, 'src/core/run-lock.ts'))}; lockRunFolder(${JSON.stringify(HELD)}, 'probe holder'); setInterval(() => {}, 1000);`], { cwd: repoRoot });
await new Promise((r) => setTimeout(r, 4000));

const results: { name: string; ok: boolean; line: string }[] = [];
const queue = [...checks];
await Promise.all([0, 1, 2].map(async () => {
  for (let ch = queue.shift(); ch; ch = queue.shift()) results.push({ name: ch.name, ...(await ch.run()) });
}));
holder.kill('SIGKILL');
// API classes, in-process.
const api = (name: string, f: () => void, cls: Function) => {
  try { f(); results.push({ name, ok: false, line: 'accepted' }); } catch (e) { results.push({ name, ok: e instanceof cls, line: `${(e as Error).constructor.name}: ${(e as Error).message}`.slice(0, 160) }); }
};
let deep: unknown = 1;
for (let i = 0; i < 100_000; i++) deep = [deep];
api('6 tensor() of a 100,000-deep array', () => tensor(deep as number[]), ShapeError);
api('6 loadStateDict: bool into a float weight', () => tidy(() => { const m = new Linear(2, 2); try { m.loadStateDict({ weight: tensor([[true, false], [false, true]]), bias: m.stateDict().bias }); } finally { m.dispose(); } }), DtypeError);

results.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(58)} ${r.line}`);
console.log(`\n${results.filter((r) => r.ok).length} of ${results.length} probe classes: a clean refusal (or, for the recovery classes, a clean run)`);
rmSync(root, { recursive: true, force: true });
