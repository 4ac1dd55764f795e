/**
 * Unstructured sparsity that saves space and time (issue 10, section 4).
 *
 *   node --import tsx bench/sparse-linear.ts [--part lenet|threshold|conv|all] [--reps 9] [--no-doc]
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
 * conv: the sparse convolution (im2col + the CSR kernel) against libtorch's dense conv2d for LeNet-5's
 *   convolutions and two 64-channel ones at densities 2% to 20%, batches 1 and 128, from which
 *   SPARSE_CONV_RULE (src/nn/sparse/conv.ts) is set; then LeNet-5 whole at 90%, 95% and 98%.
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
import { gzipSize, saveSparseSafetensors, sparseConv2d, sparseLinear, SPARSE_CONV_RULE, SPARSE_RULE, withDenseInference } from '../src/nn/sparse/index.js';
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

/** Convolutions: LeNet-5's conv2 (and a 1x1 conv) against libtorch's dense conv, then LeNet-5 whole. */
const CONV_SHAPES: { name: string; w: [number, number, number, number]; x: [number, number, number]; o: { padding?: [number, number] } }[] = [
  { name: 'LeNet-5 conv2 [50, 20, 5, 5] on 20x12x12', w: [50, 20, 5, 5], x: [20, 12, 12], o: {} },
  { name: 'LeNet-5 conv1 [20, 1, 5, 5] on 1x28x28', w: [20, 1, 5, 5], x: [1, 28, 28], o: {} },
  { name: '1x1 [64, 64, 1, 1] on 64x8x8', w: [64, 64, 1, 1], x: [64, 8, 8], o: {} },
  { name: '3x3 [64, 64, 3, 3] on 64x8x8, padding 1', w: [64, 64, 3, 3], x: [64, 8, 8], o: { padding: [1, 1] } },
];
const CONV_DENSITIES = [0.02, 0.05, 0.1, 0.2];

function conv(): string {
  const lines: string[] = [];
  for (const c of argv.includes('--whole-only') ? [] : CONV_SHAPES) {
    for (const batch of [1, 128]) {
      const cells: string[] = [];
      for (const d of CONV_DENSITIES) {
        manualSeed(2);
        const w = tidy(() => randn(c.w).mul(rand(c.w).lt(d)));
        const b = randn([c.w[0]]);
        const x = randn([batch, ...c.x]);
        const o = { stride: [1, 1] as [number, number], padding: c.o.padding ?? [0, 0] as [number, number], dilation: [1, 1] as [number, number], groups: 1 };
        const work = c.w.reduce((a, v) => a * v, 1) * batch * c.x[1] * c.x[2];
        const iters = Math.max(5, Math.min(2000, Math.round(3e7 / work)));
        // Dense as Conv2d runs it on CPU (channels-last, the library's default) and in NCHW; the better of the two is the reference.
        const r = alternate({
          cl: () => noGrad(() => F.conv2d(x.contiguous('channels_last'), w.contiguous('channels_last'), b, o)).dispose(),
          nchw: () => noGrad(() => F.conv2d(x, w, b, o)).dispose(),
          sparse: () => sparseConv2d(x, w, b, o).dispose(),
        }, iters, Math.min(reps, 7));
        cells.push(`${(Math.min(r.cl, r.nchw) / r.sparse).toFixed(2)} (${r.sparse.toFixed(0)} µs)`);
        for (const t of [w, b, x] as Tensor[]) t.dispose();
      }
      call('sparseCacheClear');
      lines.push(`| ${c.name} | ${batch} | ${cells.join(' | ')} |`);
      process.stderr.write(`${lines[lines.length - 1]}\n`);
    }
  }
  // LeNet-5 whole, magnitude-pruned per layer: dense path against the automatic path (sparse chain for
  // the fully connected layers, sparse conv where SPARSE_CONV_RULE says), and the automatic path with
  // the conv rule off (convs dense), alternating.
  const whole: string[] = [];
  for (const sparsity of [0.9, 0.95, 0.98]) {
    manualSeed(0);
    const model = createModel('lenet5', { inputShape: [1, 28, 28], numClasses: 10 }).eval();
    prune(model, sparsity);
    const cells: string[] = [];
    for (const batch of [1, 128]) {
      const x = rand([batch, 1, 28, 28]);
      const saved = SPARSE_CONV_RULE.maxDensity;
      const r = alternate({
        dense: () => tidy(() => noGrad(() => withDenseInference(() => model.call(x)))).dispose(),
        auto: () => tidy(() => noGrad(() => model.call(x))).dispose(),
        denseConvs: () => { SPARSE_CONV_RULE.maxDensity = -1; try { tidy(() => noGrad(() => model.call(x))).dispose(); } finally { SPARSE_CONV_RULE.maxDensity = saved; } },
      }, batch === 1 ? 300 : 10);
      cells.push(`${r.dense.toFixed(0)} / ${r.denseConvs.toFixed(0)} / ${r.auto.toFixed(0)} µs: **${(r.dense / r.auto).toFixed(2)}x** (convs dense ${(r.dense / r.denseConvs).toFixed(2)}x)`);
      x.dispose();
    }
    model.dispose();
    whole.push(`| ${sparsity * 100}% | ${cells.join(' | ')} |`);
  }
  console.log(JSON.stringify({ part: 'conv', lines, whole }));
  return [
    `Speed-up of the sparse convolution (stride 1: direct, each nonzero adds a shifted input plane; otherwise im2col, then the CSR kernel in blocks of 16 positions) over libtorch's dense conv2d (the faster of channels-last, which Conv2d uses on CPU, and NCHW), one thread, random weights with the given density, medians of ${Math.min(reps, 7)} alternating rounds; sparse CPU time per call in brackets:`,
    '',
    `| convolution | batch | ${CONV_DENSITIES.map((d) => `${d * 100}%`).join(' | ')} |`,
    `|---|---:|${CONV_DENSITIES.map(() => '---:').join('|')}|`,
    ...lines,
    '',
    `LeNet-5 (Caffe: conv20-pool-conv50-pool-fc500-fc10), random weights magnitude-pruned per layer; CPU time per forward pass, eval, noGrad; dense path / automatic path with the convolutions kept dense / automatic path (conv rule: density ≤ ${SPARSE_CONV_RULE.maxDensity} for weights of at least ${SPARSE_CONV_RULE.minElements} elements):`,
    '',
    '| sparsity | batch 1 | batch 128 |',
    '|---|---:|---:|',
    ...whole,
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
if (part === 'conv' || part === 'all') {
  const body = `${head}\n\n${conv()}\n\nCommand: \`${COMMAND} --part conv\``;
  if (!noDoc) updateSection('Sparse inference', 'sparse-conv', body);
  else console.log(body);
}
if (part === 'threshold' || part === 'all') {
  const body = `${head}\n\n${threshold()}\n\nCommand: \`${COMMAND} --part threshold\``;
  if (!noDoc) updateSection('Sparse inference', 'sparse-threshold', body);
  else console.log(body);
}
