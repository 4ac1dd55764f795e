/**
 * What every benchmark shares: flags, MNIST location, medians, and the alternating driver.
 *
 * Each benchmark file is both a driver and a worker. The driver (no flags) starts one worker
 * process per repetition, alternating topiary and PyTorch (A, B, A, B, ...), so that both see the
 * same background load on a shared machine; each worker times its own work after loading data and
 * a short warm-up, and prints one JSON line. Separate processes keep the two engines from sharing
 * allocator caches or thread pools, and keep one slow repetition from colouring the next.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = resolve(BENCH_DIR, '..');
/** Debian's PyTorch 1.13 (the `python3` first on PATH may lack torch). */
export const PYTHON = process.env.TOPIARY_BENCH_PYTHON ?? '/usr/bin/python3';

/** The data root holding mnist/: $TOPIARY_DATA, else the shared folder beside the repository. */
export function dataRoot(): string {
  const root = process.env.TOPIARY_DATA ?? resolve(REPO_ROOT, '../shared/datasets');
  if (!existsSync(join(root, 'mnist'))) {
    throw new Error(`bench: MNIST not found under ${root}/mnist (set TOPIARY_DATA to the folder holding mnist/)`);
  }
  return root;
}

export interface Flags {
  /** Run one repetition in this process and print its JSON line. */
  worker: boolean;
  reps: number;
  /** Leave docs/benchmarks.md alone. */
  noDoc: boolean;
  /** Which part a worker runs, for benchmarks with several (e.g. lenet5, resnet20). */
  part: string;
}

export function parseFlags(argv = process.argv.slice(2)): Flags {
  const f: Flags = { worker: false, reps: 3, noDoc: false, part: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--worker') f.worker = true;
    else if (a === '--no-doc') f.noDoc = true;
    else if (a === '--reps') f.reps = Number(argv[++i]);
    else if (a === '--part') f.part = argv[++i] ?? '';
    else throw new Error(`bench: unknown flag ${a} (known: --reps N, --no-doc, --worker, --part NAME)`);
  }
  if (!(Number.isInteger(f.reps) && f.reps >= 1)) throw new Error(`bench: --reps must be a positive integer, got ${f.reps}`);
  return f;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Seconds since t0 (a performance.now() reading). */
export const since = (t0: number): number => (performance.now() - t0) / 1000;

/** One worker: a command line whose stdout's last JSON line is its result. */
export interface WorkerSpec {
  engine: 'topiary' | 'pytorch' | 'cpp';
  cmd: string;
  args: string[];
}

/** The worker command for a benchmark file run under tsx. */
export function topiaryWorker(file: string, ...args: string[]): WorkerSpec {
  return { engine: 'topiary', cmd: process.execPath, args: ['--import', 'tsx', join(BENCH_DIR, file), '--worker', ...args] };
}

export function pytorchWorker(script: string, ...args: string[]): WorkerSpec {
  return { engine: 'pytorch', cmd: PYTHON, args: [join(BENCH_DIR, 'torch', script), ...args] };
}

/** A plain C++ libtorch program built by bench/cpp/build.sh, or undefined when it is not built. */
export function cppWorker(name: string): WorkerSpec | undefined {
  const bin = join(REPO_ROOT, 'build/bench', name);
  return existsSync(bin) ? { engine: 'cpp', cmd: bin, args: [] } : undefined;
}

function runWorker(w: WorkerSpec): Record<string, unknown> {
  // One thread everywhere: at::set_num_threads(1) does not reach the pthread OpenBLAS that Debian's
  // libtorch calls (its GEMMs still use every core), so the environment pins BLAS and OpenMP too.
  const env = { ...process.env, TOPIARY_DATA: dataRoot(), OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' };
  const r = spawnSync(w.cmd, w.args, { cwd: REPO_ROOT, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    throw new Error(`bench: ${w.engine} worker failed (exit ${r.status ?? r.signal}): ${w.cmd} ${w.args.join(' ')}\n${r.stderr}`);
  }
  const line = r.stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`bench: ${w.engine} worker printed no JSON line:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line) as Record<string, unknown>;
}

export interface Alternated {
  topiary: Record<string, unknown>[];
  pytorch: Record<string, unknown>[];
  cpp: Record<string, unknown>[];
  /** 1-minute load average before each round. */
  load: number[];
}

/**
 * Runs `reps` rounds of one worker per engine, one process at a time; the order rotates every
 * round (A B, B A, ... for two engines) so that drift in the background load hits both alike.
 */
export function alternate(reps: number, workers: (WorkerSpec | undefined)[], label: string): Alternated {
  const ws = workers.filter((w): w is WorkerSpec => w !== undefined);
  const out: Alternated = { topiary: [], pytorch: [], cpp: [], load: [] };
  for (let r = 0; r < reps; r++) {
    out.load.push(loadavg()[0]);
    const order = r % 2 === 0 ? ws : [...ws].reverse();
    for (const w of order) {
      const res = runWorker(w);
      out[w.engine].push(res);
      process.stderr.write(`[${label}] rep ${r + 1}/${reps} ${w.engine}: ${JSON.stringify(res)}\n`);
    }
  }
  return out;
}

/** Medians of a numeric field over repetitions. */
export function med(rs: Record<string, unknown>[], key: string): number {
  return median(rs.map((r) => Number(r[key])).filter((v) => Number.isFinite(v)));
}

export function machine(): { cpu: string; cores: number; load1: number; node: string } {
  const c = cpus();
  return { cpu: c[0]?.model ?? 'unknown', cores: c.length, load1: loadavg()[0], node: process.version };
}

/**
 * CPU seconds of this process since c0 (a process.cpuUsage() reading). With one compute thread
 * this is the work done, without the time spent waiting for a core on a loaded machine.
 */
export function cpuSince(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}
