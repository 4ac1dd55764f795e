/**
 * Engine benchmark (issue 2): one epoch of the MLP 784-512-256-10 on MNIST written with raw tensors
 * (F.linear, relu, crossEntropy, backward, SGD lr 0.05 without momentum, batch 128, one thread),
 * against the same loop in PyTorch (bench/torch/mlp_epoch.py); and the fixed cost of one small op
 * (adding two 10-element tensors).
 *
 *   node --import tsx bench/mlp-epoch.ts [--reps 3] [--no-doc]
 *
 * Batches are indexed from a pre-loaded, normalized float tensor with a randperm on both sides (no
 * per-sample loader), so the comparison measures the engines, not the input pipelines. Each worker
 * also times 1000 forward passes (no autograd) to separate per-op overhead from kernel time.
 */
import { F, getNumThreads, keep, manualSeed, noGrad, optim, rand, randperm, setNumThreads, tidy, torchVersion, type Tensor } from '../src/index.js';
import { native } from '../src/core/binding.js';
import { alternate, cppWorker, cpuSince, machine, med, parseFlags, pytorchWorker, since, topiaryWorker } from './lib/common.js';
import { mnistFlat } from './lib/mnist.js';
import { fmt, table, updateSection } from './report.js';

const BATCH = 128, LR = 0.05, WARMUP_STEPS = 5;
const SMALL_OPS = 100_000, SMALL_TRIALS = 5, FORWARDS = 1000;
const COMMAND = 'node --import tsx bench/mlp-epoch.ts';

function uniformParam(shape: number[], fanIn: number): Tensor {
  const b = 1 / Math.sqrt(fanIn); // PyTorch's Linear default bound for the bias (and close to the weight's)
  return keep(noGrad(() => rand(shape).mul_(2 * b).sub_(b)).requiresGrad_(true));
}

async function worker(): Promise<void> {
  setNumThreads(1);
  manualSeed(0);
  const train = await mnistFlat('train');
  const test = await mnistFlat('test');
  const sizes = [784, 512, 256, 10];
  const params: Tensor[] = [];
  for (let i = 0; i < 3; i++) params.push(uniformParam([sizes[i + 1], sizes[i]], sizes[i]), uniformParam([sizes[i + 1]], sizes[i]));
  const [w1, b1, w2, b2, w3, b3] = params;
  const forward = (x: Tensor): Tensor => F.linear(F.linear(F.linear(x, w1, b1).relu(), w2, b2).relu(), w3, b3);
  const opt = new optim.SGD(params, { lr: LR });

  let lastLoss = NaN;
  const step = (xb: Tensor, yb: Tensor): void => tidy(() => {
    const loss = F.crossEntropy(forward(xb), yb);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return undefined;
  });

  // Warm-up (untimed): first-call allocations, JIT.
  tidy(() => { for (let i = 0; i < WARMUP_STEPS; i++) step(train.x.narrow(0, i * BATCH, BATCH), train.y.narrow(0, i * BATCH, BATCH)); });

  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const perm = randperm(train.n);
  for (let i = 0; i < train.n; i += BATCH) {
    tidy(() => {
      const idx = perm.narrow(0, i, Math.min(BATCH, train.n - i));
      const xb = train.x.indexSelect(0, idx), yb = train.y.indexSelect(0, idx);
      step(xb, yb);
    });
  }
  perm.dispose();
  const epochSeconds = since(t0);
  const epochCpuSeconds = cpuSince(c0);

  const acc = tidy(() => noGrad(() => forward(test.x).argmax(1).eq(test.y).to('float32').mean().item()));
  lastLoss = tidy(() => noGrad(() => F.crossEntropy(forward(train.x), train.y).item()));

  // 1000 forward passes of one batch, no autograd: per-op overhead plus kernels, no backward.
  const xb = train.x.narrow(0, 0, BATCH);
  noGrad(() => tidy(() => forward(xb))); // warm
  const f0 = process.cpuUsage();
  noGrad(() => { for (let i = 0; i < FORWARDS; i++) tidy(() => forward(xb)); });
  const forwardMs = (cpuSince(f0) * 1000) / FORWARDS;

  // The fixed cost of one small op: a.add(b) on 10 elements, results freed every 1000 ops.
  const a = keep(rand([10])), b = keep(rand([10]));
  const perOp: number[] = [], rawOp: number[] = [];
  for (let t = 0; t < SMALL_TRIALS; t++) {
    const s0 = process.cpuUsage();
    for (let k = 0; k < SMALL_OPS / 1000; k++) tidy(() => { for (let j = 0; j < 1000; j++) a.add(b); });
    perOp.push((cpuSince(s0) * 1e6) / SMALL_OPS);
    // The same through the addon directly (no Tensor wrapper, no scope): what the TS layer adds.
    const ah = a.h, bh = b.h;
    const s1 = process.cpuUsage();
    for (let k = 0; k < SMALL_OPS; k++) native.dispose(native.add(ah, bh, null));
    rawOp.push((cpuSince(s1) * 1e6) / SMALL_OPS);
  }
  console.log(JSON.stringify({
    engine: 'topiary', torch: torchVersion(), threads: getNumThreads(), epochSeconds, epochCpuSeconds, testAccuracy: acc, trainLoss: lastLoss,
    forwardMs, smallOpUs: Math.min(...perOp), smallOpUsMedian: medianOf(perOp), rawAddonOpUs: Math.min(...rawOp),
  }));
}

const medianOf = (xs: number[]): number => [...xs].sort((p, q) => p - q)[xs.length >> 1];

function driver(reps: number, noDoc: boolean): void {
  const m0 = machine();
  const r = alternate(reps, [topiaryWorker('mlp-epoch.ts'), pytorchWorker('mlp_epoch.py'), cppWorker('mlp_epoch')], 'mlp-epoch');
  const pair = (key: string) => {
    const t = med(r.topiary, key), p = med(r.pytorch, key), c = med(r.cpp, key);
    return { topiary: t, pytorch: p, ratio: t / p, cpp: c, cppRatio: c / p };
  };
  const summary = {
    bench: 'mlp-epoch', reps, machine: m0, loadDuring: r.load,
    epochWall: { ...pair('epochSeconds'), target: 0.8 },
    epochCpu: { ...pair('epochCpuSeconds'), target: 0.8 },
    forwardMs: pair('forwardMs'),
    smallOpUs: { ...pair('smallOpUs'), target: 5, rawAddon: med(r.topiary, 'rawAddonOpUs') },
    testAccuracy: { topiary: med(r.topiary, 'testAccuracy'), pytorch: med(r.pytorch, 'testAccuracy') },
    trainLoss: pair('trainLoss'),
    runs: r,
  };
  console.log(JSON.stringify(summary));
  if (noDoc) return;
  const { epochWall: w, epochCpu: c, forwardMs: f, smallOpUs: o } = summary;
  const epoch = 'MLP 784-512-256-10, one MNIST epoch (469 steps, batch 128, SGD lr 0.05)';
  const rows = [
    { what: `${epoch}: wall-clock`, topiary: fmt.s(w.topiary), pytorch: fmt.s(w.pytorch), ratio: fmt.ratio(w.topiary, w.pytorch), target: '≤ 0.8', command: COMMAND },
    { what: `${epoch}: CPU time`, topiary: fmt.s(c.topiary), pytorch: fmt.s(c.pytorch), ratio: fmt.ratio(c.topiary, c.pytorch), target: '≤ 0.8', command: COMMAND },
    ...(r.cpp.length ? [{ what: 'the same epoch as a plain C++ loop over libtorch (the floor for any binding): CPU time', topiary: fmt.s(c.cpp) + ' (C++)', pytorch: fmt.s(c.pytorch), ratio: fmt.ratio(c.cpp, c.pytorch) + ' (C++ / PyTorch)', target: '(reference)', command: 'bash bench/cpp/build.sh && ' + COMMAND }] : []),
    { what: 'same MLP, one forward pass of a batch of 128, no autograd (mean of 1000): CPU time', topiary: `${f.topiary.toFixed(3)} ms`, pytorch: `${f.pytorch.toFixed(3)} ms`, ratio: fmt.ratio(f.topiary, f.pytorch), target: '(diagnostic)', command: COMMAND },
    { what: 'one small op: add two 10-element tensors, CPU time per op (best of 5 × 100,000)', topiary: fmt.us(o.topiary), pytorch: fmt.us(o.pytorch), ratio: fmt.ratio(o.topiary, o.pytorch), target: '≤ 5 µs', command: COMMAND },
  ];
  const loads = r.load.map((l) => l.toFixed(2)).join(', ');
  updateSection('Engine', 'engine', [
    `Measured 2026-11-21 on ${m0.cores} × ${m0.cpu}, libtorch ${String(r.topiary[0]?.torch)} CPU, one thread on all sides ` +
    `(setNumThreads(1) / torch.set_num_threads(1), plus OMP/MKL/OPENBLAS_NUM_THREADS=1), Node ${m0.node}; ${reps} repetitions per engine, ` +
    `each a fresh process, in rotating order; medians. 1-minute load average before each round: ${loads} on ${m0.cores} cores. ` +
    'Other jobs shared the machine: every engine saw the same load, but wall-clock seconds include time spent waiting for a core; ' +
    'CPU time (user + system of the process over the timed loop) does not, and is the steadier ratio.',
    '',
    table(rows),
    'All loops index batches from a pre-loaded normalized float tensor [60000, 784] with a randperm; five warm-up steps untimed. ' +
    `After the epoch: test accuracy topiary ${fmt.pct(summary.testAccuracy.topiary)}, PyTorch ${fmt.pct(summary.testAccuracy.pytorch)}; ` +
    `training loss topiary ${summary.trainLoss.topiary.toFixed(6)}, PyTorch ${summary.trainLoss.pytorch.toFixed(6)} (same seed, same kernels). ` +
    `The small op through the addon directly (no Tensor wrapper, no scope): ${fmt.us(o.rawAddon)}.`,
  ].join('\n'));
}

const flags = parseFlags();
if (flags.worker) await worker();
else driver(flags.reps, flags.noDoc);
