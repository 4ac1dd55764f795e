/**
 * vit_tiny's training step against the same model in PyTorch (bench/torch/vit_step.py), same run,
 * alternating, one thread: one random 128×1×28×28 batch, train mode, SGD lr 0.05 momentum 0.9
 * weight decay 5e-4 (the MNIST recipe's optimizer), two warm-up steps untimed, the median of 8.
 * `--profile` (topiary only) splits a step into forward, backward and optimizer step.
 *
 *   node --import tsx bench/vit-step.ts [--reps 3] [--no-doc]
 *
 * Writes its block of the `## Transformers` section of docs/benchmarks.md.
 */
import { createModel, F, getNumThreads, keep, manualSeed, optim, randint, randn, setNumThreads, tidy, torchVersion, type Module, type Tensor } from '../src/index.js';
import { alternate, cpuSince, machine, med, median, parseFlags, pytorchWorker, since, topiaryWorker } from './lib/common.js';
import { fmt, table, updateSection } from './report.js';

const BATCH = 128, WARMUP = 2, STEPS = 8;
const COMMAND = 'node --import tsx bench/vit-step.ts';

function step(model: Module, opt: optim.SGD, x: Tensor, y: Tensor, t?: number[]): void {
  tidy(() => {
    const t0 = performance.now();
    const loss = F.crossEntropy(model.call(x), y);
    const t1 = performance.now();
    opt.zeroGrad();
    loss.backward();
    const t2 = performance.now();
    opt.step();
    if (t) t.push(t1 - t0, t2 - t1, performance.now() - t2);
    return undefined;
  });
}

function worker(): void {
  setNumThreads(1);
  manualSeed(0);
  const model = createModel('vit_tiny', { inputShape: [1, 28, 28], numClasses: 10 });
  model.train();
  const x = keep(randn([BATCH, 1, 28, 28])), y = keep(randint(0, 10, [BATCH]));
  const opt = new optim.SGD(model.namedParameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  for (let i = 0; i < WARMUP; i++) step(model, opt, x, y);
  const wall: number[] = [], cpu: number[] = [], parts: number[][] = [];
  for (let i = 0; i < STEPS; i++) {
    const c0 = process.cpuUsage(), t0 = performance.now(), p: number[] = [];
    step(model, opt, x, y, p);
    wall.push(since(t0));
    cpu.push(cpuSince(c0));
    parts.push(p);
  }
  const part = (k: number) => median(parts.map((p) => p[k])) / 1000;
  console.log(JSON.stringify({
    engine: 'topiary', torch: torchVersion(), threads: getNumThreads(), part: 'vit', stepSeconds: median(wall), stepCpuSeconds: median(cpu),
    forwardSeconds: part(0), backwardSeconds: part(1), optimizerSeconds: part(2), params: model.numParameters(),
  }));
}

function driver(reps: number, noDoc: boolean): void {
  const m0 = machine();
  const r = alternate(reps, [topiaryWorker('vit-step.ts'), pytorchWorker('vit_step.py')], 'vit-step');
  const both = (key: string) => ({ topiary: med(r.topiary, key), pytorch: med(r.pytorch, key) });
  const wall = both('stepSeconds'), cpu = both('stepCpuSeconds');
  const summary = { bench: 'vit-step', reps, machine: m0, loadDuring: r.load, wall: { ...wall, ratio: wall.topiary / wall.pytorch }, cpu: { ...cpu, ratio: cpu.topiary / cpu.pytorch },
    topiaryParts: { forward: med(r.topiary, 'forwardSeconds'), backward: med(r.topiary, 'backwardSeconds'), optimizer: med(r.topiary, 'optimizerSeconds') }, runs: r };
  console.log(JSON.stringify(summary));
  if (noDoc) return;
  const row = (what: string, v: { topiary: number; pytorch: number }) => ({ what, topiary: fmt.s(v.topiary), pytorch: fmt.s(v.pytorch), ratio: fmt.ratio(v.topiary, v.pytorch), target: '≤ 1.0', command: COMMAND });
  const p = summary.topiaryParts;
  const spread = (rs: Record<string, unknown>[]) => { const v = rs.map((x) => Number(x.stepCpuSeconds)); return `${fmt.s(Math.min(...v))} to ${fmt.s(Math.max(...v))}`; };
  updateSection('Transformers', 'vit-step', [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${m0.cores} × ${m0.cpu}, libtorch ${String(r.topiary[0]?.torch)} CPU (PyTorch ${String(r.pytorch[0]?.torch)}), ` +
    `one thread on both sides (setNumThreads(1) / torch.set_num_threads(1), OMP/MKL/OPENBLAS_NUM_THREADS=1), Node ${m0.node}; ${reps} repetitions per engine, ` +
    `each a fresh process, alternating; medians of 8 steps per process. 1-minute load average before each round: ${r.load.map((l) => l.toFixed(2)).join(', ')} ` +
    `on ${m0.cores} cores (other jobs shared the machine: wall-clock waits for a core; CPU time is the steadier ratio).`,
    '',
    table([
      row('vit_tiny, one training step on a 128×1×28×28 batch, SGD momentum 0.9: wall-clock (median of 8 steps)', wall),
      row('vit_tiny, one training step: CPU time', cpu),
    ]),
    `topiary's vit_tiny against the same network in PyTorch (nn.TransformerEncoderLayer, norm_first, batch_first, 4 heads of 16, MLP 128, exact GELU, no dropout; ` +
    `the same 139,018 parameters), train mode, two warm-up steps untimed. topiary's step (medians, wall-clock): forward ${fmt.s(p.forward)}, ` +
    `backward ${fmt.s(p.backward)}, optimizer step ${fmt.s(p.optimizer)}. The processes' CPU-time medians ranged ${spread(r.topiary)} (topiary) and ` +
    `${spread(r.pytorch)} (PyTorch): on this loaded machine a ratio near 1.0 is within that spread. LayerNorm and GELU are single libtorch ` +
    'calls, attention the same matmul / softmax sequence PyTorch 1.13 runs (it has no fused attention kernel), so no native op is missing.',
  ].join('\n'));
}

const flags = parseFlags();
if (flags.worker) worker();
else driver(flags.reps, flags.noDoc);
