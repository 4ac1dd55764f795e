/**
 * Unstructured sparsity that saves space and time (issue 10, section 4).
 *
 *   node --import tsx bench/sparse-linear.ts [--part lenet|threshold|all] [--reps 9] [--no-doc]
 *
 * lenet: LeNet-300-100 magnitude-pruned per layer to 90%, 95% and 98% (random PyTorch-default
 *   weights: the timing and the file sizes do not depend on training; the positions of the kept
 *   weights do not either, beyond their count). File sizes: dense safetensors, the compressed file,
 *   gzip of both, and the ONNX export (dense initializers) with its gzip size. Median CPU time
 *   of one forward pass, eval mode and noGrad, at batch 1 and batch 128, one thread: the dense path
 *   (withDenseInference) and the automatic sparse path alternating in the same process, round by round.
 * threshold: the sparse kernel against libtorch's dense linear, weights [10, 100] to [1024, 1024],
 *   densities 2% to 50%, batches 1, 8 and 128: the crossover density of each, from which the rule in
 *   src/nn/sparse/linear.ts (SPARSE_RULE) is set.
 * CPU time (not wall-clock) because the machine is shared: it leaves out the time spent waiting for a core.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../src/core/binding.js';
import { manualSeed, setNumThreads, torchVersion } from '../src/core/runtime.js';
import { exportOnnx } from '../src/graph/onnx-export.js';
import { createModel } from '../src/models/registry.js';
import type { Module } from '../src/nn/module.js';
import { gzipSize, saveSparseSafetensors, sparseLinear, SPARSE_RULE, withDenseInference } from '../src/nn/sparse/index.js';
import { F, noGrad, rand, randn, saveSafetensors, tidy, type Tensor } from '../src/tensor/index.js';
import { machine, median } from './lib/common.js';
import { updateSection } from './report.js';

const argv = process.argv.slice(2);
const flag = (name: string, dflt: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : dflt; };
const part = flag('part', 'all');
const reps = Number(flag('reps', '9'));
const noDoc = argv.includes('--no-doc');
const COMMAND = 'node --import tsx bench/sparse-linear.ts';

// One thread everywhere, OpenBLAS included: its pool must be pinned before it starts.
if (process.env.OPENBLAS_NUM_THREADS !== '1') {
  const r = spawnSync(process.execPath, process.execArgv.concat(process.argv.slice(1)), {
    stdio: 'inherit', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
  });
  process.exit(r.status ?? 1);
}
setNumThreads(1);

/** CPU microseconds per call of each function, median over rounds; the functions alternate within each round. */
function alternate(fns: Record<string, () => void>, iters: number, rounds = reps): Record<string, number> {
  for (const f of Object.values(fns)) for (let i = 0; i < Math.max(3, iters >> 3); i++) f();
  const acc: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? Object.entries(fns).reverse() : Object.entries(fns);
    for (const [k, f] of order) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < iters; i++) f();
      const c = process.cpuUsage(c0);
      (acc[k] ??= []).push((c.user + c.system) / iters);
    }
  }
  return Object.fromEntries(Object.entries(acc).map(([k, v]) => [k, median(v)]));
}

function prune(model: Module, sparsity: number): void {
  tidy(() => noGrad(() => {
    for (const [name, p] of model.namedParameters()) {
      if (!name.endsWith('weight')) continue;
      const k = Math.max(1, Math.round(p.numel * (1 - sparsity)));
      const thr = p.abs().flatten().topk(k).values.narrow(0, k - 1, 1).item();
      p.mul_(p.abs().ge(thr));
    }
  }));
}

const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

function lenet(): string {
  const dir = mkdtempSync(join(tmpdir(), 'topiary-sparse-bench-'));
  const rows: string[] = [];
  const summary: Record<string, unknown>[] = [];
  try {
    for (const sparsity of [0.9, 0.95, 0.98]) {
      manualSeed(0);
      const model = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 }).eval();
      prune(model, sparsity);
      const sd = model.stateDict();
      const dense = join(dir, 'dense.safetensors'), sparse = join(dir, 'sparse.safetensors');
      saveSafetensors(dense, sd);
      saveSparseSafetensors(sparse, sd);
      const onnx = join(dir, 'model.onnx');
      exportOnnx(model, { inputShape: [1, 28, 28], out: onnx }); // dense initializers, as the issue asks
      const ds = statSync(dense).size, ss = statSync(sparse).size, gz = gzipSize(dense), sgz = gzipSize(sparse);
      const os = statSync(onnx).size, ogz = gzipSize(onnx);
      const lat: Record<number, Record<string, number>> = {};
      let maxDiff = 0;
      for (const batch of [1, 128]) {
        const x = rand([batch, 1, 28, 28]);
        const run = (dense: boolean) => () => tidy(() => noGrad(() => (dense ? withDenseInference(() => model.call(x)) : model.call(x)))).dispose();
        noGrad(() => tidy(() => {
          const a = withDenseInference(() => model.call(x)), b = model.call(x);
          maxDiff = Math.max(maxDiff, a.sub(b).abs().max().item());
        }));
        lat[batch] = alternate({ dense: run(true), sparse: run(false) }, batch === 1 ? 2000 : 100);
        x.dispose();
      }
      model.dispose();
      const s1 = lat[1].dense / lat[1].sparse, s128 = lat[128].dense / lat[128].sparse;
      rows.push(`| ${sparsity * 100}% | ${kb(ds)} | ${kb(ss)} (1/${(ds / ss).toFixed(1)}) | ${kb(gz)} (1/${(ds / gz).toFixed(2)}) | ${kb(sgz)} | ${kb(os)} / ${kb(ogz)} (1/${(os / ogz).toFixed(2)}) | ` +
        `${lat[1].dense.toFixed(1)} / ${lat[1].sparse.toFixed(1)} µs: **${s1.toFixed(2)}x** | ${lat[128].dense.toFixed(0)} / ${lat[128].sparse.toFixed(0)} µs: **${s128.toFixed(2)}x** | ${maxDiff.toExponential(1)} |`);
      summary.push({ sparsity, denseBytes: ds, sparseBytes: ss, denseGzip: gz, sparseGzip: sgz, onnxBytes: os, onnxGzip: ogz, b1: lat[1], b128: lat[128], maxDiff });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ part: 'lenet', summary }));
  return [
    '| sparsity | dense safetensors | compressed (ratio) | gzip of dense safetensors (ratio) | gzip of compressed | ONNX (dense) / its gzip (ratio) | batch 1: dense / sparse CPU per forward | batch 128: dense / sparse | max abs diff |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

const SHAPES: [number, number][] = [[10, 100], [100, 300], [300, 784], [1024, 1024]];
const DENSITIES = [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5];
const BATCHES = [1, 8, 128];

function threshold(): string {
  const minElements = Math.max(...SPARSE_RULE.map((r) => r.minElements));
  const lines: string[] = [];
  const crossings: Record<number, number[]> = {};
  for (const [out, inF] of SHAPES) {
    for (const batch of BATCHES) {
      const cells: string[] = [];
      let cross = Infinity;
      let fastest = 0; // the highest density up to which every measured point was faster
      for (const d of DENSITIES) {
        manualSeed(1);
        const w = tidy(() => randn([out, inF]).mul(rand([out, inF]).lt(d)));
        const b = randn([out]);
        const x = randn([batch, inF]);
        const work = out * inF * batch;
        const iters = Math.max(5, Math.min(3000, Math.round(3e7 / work)));
        const r = alternate({
          dense: () => noGrad(() => F.linear(x, w, b)).dispose(),
          sparse: () => sparseLinear(x, w, b).dispose(),
        }, iters, Math.min(reps, 7));
        const s = r.dense / r.sparse;
        if (s < 1 && cross === Infinity) cross = d;
        if (cross === Infinity) fastest = d;
        cells.push(`${s.toFixed(2)}`);
        for (const t of [w, b, x] as Tensor[]) t.dispose();
      }
      call('sparseCacheClear');
      if (out * inF >= minElements) (crossings[batch] ??= []).push(fastest);
      lines.push(`| [${out}, ${inF}] | ${batch} | ${cells.join(' | ')} | ${cross === Infinity ? `> ${DENSITIES[DENSITIES.length - 1]}` : `< ${cross}`} |`);
      process.stderr.write(`${lines[lines.length - 1]}\n`);
    }
  }
  const rule = SPARSE_RULE.map((r) => `batch ≤ ${r.maxBatch === Infinity ? '∞' : r.maxBatch}: density ≤ ${r.maxDensity}${r.minElements ? ` for weights of at least ${r.minElements} elements` : ''}`).join('; ');
  const lowest = Object.entries(crossings).map(([b, cs]) => `batch ${b}: ${Math.min(...cs)}`).join('; ');
  console.log(JSON.stringify({ part: 'threshold', crossings }));
  return [
    `Speed-up of the sparse kernel over libtorch's dense \`linear\` (dense CPU time / sparse CPU time; below 1 the sparse kernel is slower), one thread, random weights with the given density, medians of ${Math.min(reps, 7)} alternating rounds:`,
    '',
    `| weight [out, in] | batch | ${DENSITIES.map((d) => `${d * 100}%`).join(' | ')} | slower from |`,
    `|---|---:|${DENSITIES.map(() => '---:').join('|')}|---|`,
    ...lines,
    '',
    `The highest density at which the sparse kernel was faster for every weight of at least ${minElements} elements (and at every lower density): ${lowest}. ` +
      `The rule in use (\`SPARSE_RULE\`, src/nn/sparse/linear.ts; batch 8 stands for 2 to 31, batch 128 for 32 and more): ${rule}.`,
  ].join('\n');
}

const m = machine();
const head = `Measured ${new Date().toISOString().slice(0, 10)} on ${m.cores} × ${m.cpu}, libtorch ${torchVersion()} CPU, one thread ` +
  `(setNumThreads(1), OMP/OPENBLAS_NUM_THREADS=1), Node ${m.node}; 1-minute load average ${m.load1.toFixed(2)} at the start. ` +
  'CPU time per call (user + system of the process): the machine is shared, and CPU time leaves out the waits for a core.';
if (part === 'lenet' || part === 'all') {
  const body = `${head}\n\nLeNet-300-100, random PyTorch-default weights magnitude-pruned per layer (biases dense); forward pass in eval mode under noGrad, dense path and sparse path alternating round by round (${reps} rounds), medians. The ONNX file is \`exportOnnx\`'s (opset 17, dense initializers: onnxruntime gains nothing from sparse ones), listed with its gzip size as TF-MOT does.\n\n${lenet()}\n\nCommand: \`${COMMAND} --part lenet\``;
  if (!noDoc) updateSection('Sparse inference', 'sparse-lenet', body);
  else console.log(body);
}
if (part === 'threshold' || part === 'all') {
  const body = `${head}\n\n${threshold()}\n\nCommand: \`${COMMAND} --part threshold\``;
  if (!noDoc) updateSection('Sparse inference', 'sparse-threshold', body);
  else console.log(body);
}
