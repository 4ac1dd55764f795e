/**
 * Training benchmark (issue 3), against PyTorch in the same run (bench/torch/lenet5_epoch.py), one thread:
 *   - one epoch of LeNet-5 (Caffe variant, src/models lenet5) on MNIST, SGD lr 0.01 momentum 0.9,
 *     batch 128, through topiary's own DataLoader (shuffled, normalized) and train() loop; the PyTorch
 *     side is the equivalent minimal loop (index a pre-loaded uint8 tensor with a randperm, convert,
 *     normalize, forward, loss, backward, step, and the loop's per-batch loss and accuracy reads);
 *   - training steps of ResNet-20 (src/models resnet20, option-A shortcuts) on one random
 *     128×3×32×32 batch, SGD lr 0.1 momentum 0.9 weight decay 5e-4, against the same network written
 *     in PyTorch;
 *   - the loader's share of the LeNet-5 epoch (DataLoader stats.ms / epoch time).
 *
 *   node --import tsx bench/lenet5-epoch.ts [--reps 3] [--no-doc]
 */
import { PerformanceObserver } from 'node:perf_hooks';
import {
  createModel, data, evaluate, F, getNumThreads, keep, manualSeed, optim, randint, randn, setNumThreads, tidy, torchVersion, train,
  type Module, type Tensor,
} from '../src/index.js';
import { alternate, cpuSince, dataRoot, machine, med, median, parseFlags, pytorchWorker, since, topiaryWorker } from './lib/common.js';
import { fmt, table, updateSection } from './report.js';

const BATCH = 128, WARMUP_STEPS = 3, RESNET_WARMUP = 2, RESNET_STEPS = 6;
const COMMAND = 'node --import tsx bench/lenet5-epoch.ts';

function sgdStep(model: Module, opt: optim.SGD, x: Tensor, y: Tensor): void {
  tidy(() => {
    const loss = F.crossEntropy(model.call(x), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return undefined;
  });
}

async function lenet5Worker(): Promise<Record<string, unknown>> {
  const dataDir = dataRoot();
  const ds = await data.loadDataset('mnist', { split: 'train', dataDir });
  const testDs = await data.loadDataset('mnist', { split: 'test', dataDir });
  const loader = new data.DataLoader(ds, { batchSize: BATCH, shuffle: true, seed: 0 });
  const model = createModel('lenet5', { inputShape: [1, 28, 28], numClasses: 10 });
  const opt = new optim.SGD(model.namedParameters(), { lr: 0.01, momentum: 0.9 });
  for (let i = 0; i < WARMUP_STEPS; i++) {
    using b = loader.batch(Array.from({ length: BATCH }, (_, k) => i * BATCH + k));
    sgdStep(model, opt, b.x, b.y);
  }
  loader.resetStats();
  const c0 = process.cpuUsage(), r0 = process.resourceUsage();
  const t0 = performance.now();
  let res: ReturnType<typeof train> | undefined;
  const gc = await gcTime(() => { res = train({ model, optimizer: opt, epochs: 1, trainBatches: (e) => loader.epoch(e) }); });
  const epochSeconds = since(t0) - gc.settleSeconds, epochCpuSeconds = cpuSince(c0);
  const epochSysSeconds = process.cpuUsage(c0).system / 1e6, pageFaults = process.resourceUsage().minorPageFault - r0.minorPageFault;
  const loaderMs = loader.stats.ms;
  const test = evaluate(model, new data.DataLoader(testDs, { batchSize: 1000 }).epoch(0));
  return {
    part: 'lenet5', epochSeconds, epochCpuSeconds, loaderMs, loaderShare: loaderMs / 1000 / epochSeconds,
    batches: loader.stats.batches, trainLoss: res!.history[0].trainLoss, testAccuracy: test.accuracy,
    epochSysSeconds, pageFaults, gcMs: gc.ms, gcCount: gc.count,
  };
}

async function resnet20Worker(): Promise<Record<string, unknown>> {
  manualSeed(0);
  const model = createModel('resnet20', { inputShape: [3, 32, 32], numClasses: 10 });
  model.train();
  const x = keep(randn([BATCH, 3, 32, 32])), y = keep(randint(0, 10, [BATCH]));
  const opt = new optim.SGD(model.namedParameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
  for (let i = 0; i < RESNET_WARMUP; i++) sgdStep(model, opt, x, y);
  const wall: number[] = [], cpu: number[] = [], sys: number[] = [], faults: number[] = [];
  const gc = await gcTime(() => {
    for (let i = 0; i < RESNET_STEPS; i++) {
      const c0 = process.cpuUsage(), r0 = process.resourceUsage(), t0 = performance.now();
      sgdStep(model, opt, x, y);
      wall.push(since(t0));
      cpu.push(cpuSince(c0));
      sys.push(process.cpuUsage(c0).system / 1e6);
      faults.push(process.resourceUsage().minorPageFault - r0.minorPageFault);
    }
  });
  return {
    part: 'resnet20', stepSeconds: median(wall), stepCpuSeconds: median(cpu), params: model.numParameters(),
    // Diagnostics: kernel time spent in page faults, and V8's garbage collections during the steps.
    stepSysSeconds: median(sys), stepPageFaults: median(faults), gcMsPerStep: gc.ms / RESNET_STEPS, gcPerStep: gc.count / RESNET_STEPS,
  };
}

/** Runs fn and sums V8's garbage-collection pauses (main thread) that happened during it. */
async function gcTime(fn: () => void): Promise<{ ms: number; count: number; settleSeconds: number }> {
  const seen: { start: number; ms: number }[] = [];
  const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) seen.push({ start: e.startTime, ms: e.duration }); });
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  fn();
  const t1 = performance.now();
  await new Promise((r) => setTimeout(r, 50)); // gc entries arrive on a later tick
  obs.disconnect();
  const during = seen.filter((e) => e.start >= t0 && e.start <= t1);
  return { ms: during.reduce((a, e) => a + e.ms, 0), count: during.length, settleSeconds: since(t1) };
}

async function worker(part: string): Promise<void> {
  setNumThreads(1);
  manualSeed(0);
  const r = part === 'resnet20' ? await resnet20Worker() : await lenet5Worker();
  console.log(JSON.stringify({ engine: 'topiary', torch: torchVersion(), threads: getNumThreads(), ...r }));
}

function driver(reps: number, noDoc: boolean): void {
  const m0 = machine();
  const le = alternate(reps, [topiaryWorker('lenet5-epoch.ts', '--part', 'lenet5'), pytorchWorker('lenet5_epoch.py', 'lenet5')], 'lenet5');
  const rn = alternate(reps, [topiaryWorker('lenet5-epoch.ts', '--part', 'resnet20'), pytorchWorker('lenet5_epoch.py', 'resnet20')], 'resnet20');
  const both = (r: typeof le, key: string, target: number) => {
    const t = med(r.topiary, key), p = med(r.pytorch, key);
    return { topiary: t, pytorch: p, ratio: t / p, target };
  };
  const summary = {
    bench: 'lenet5-epoch', reps, machine: m0, loadDuring: { lenet5: le.load, resnet20: rn.load },
    lenet5Wall: both(le, 'epochSeconds', 0.9), lenet5Cpu: both(le, 'epochCpuSeconds', 0.9),
    resnet20Wall: both(rn, 'stepSeconds', 1.0), resnet20Cpu: both(rn, 'stepCpuSeconds', 1.0),
    loaderShare: { topiary: med(le.topiary, 'loaderShare'), pytorch: med(le.pytorch, 'loaderShare'), target: 0.05 },
    testAccuracy: { topiary: med(le.topiary, 'testAccuracy'), pytorch: med(le.pytorch, 'testAccuracy') },
    resnet20Diag: {
      gcPerStep: med(rn.topiary, 'gcPerStep'), gcMsPerStep: med(rn.topiary, 'gcMsPerStep'),
      pageFaults: { topiary: med(rn.topiary, 'stepPageFaults'), pytorch: med(rn.pytorch, 'stepPageFaults') },
      sysSeconds: { topiary: med(rn.topiary, 'stepSysSeconds'), pytorch: med(rn.pytorch, 'stepSysSeconds') },
    },
    runs: { lenet5: le, resnet20: rn },
  };
  console.log(JSON.stringify(summary));
  if (noDoc) return;
  const s = summary;
  const row = (what: string, v: { topiary: number; pytorch: number }, target: string) =>
    ({ what, topiary: fmt.s(v.topiary), pytorch: fmt.s(v.pytorch), ratio: fmt.ratio(v.topiary, v.pytorch), target, command: COMMAND });
  const rows = [
    row('LeNet-5 (Caffe), one MNIST epoch, batch 128, SGD momentum 0.9: wall-clock', s.lenet5Wall, '≤ 0.9'),
    row('LeNet-5 (Caffe), one MNIST epoch: CPU time', s.lenet5Cpu, '≤ 0.9'),
    row('ResNet-20, one training step on a 128×3×32×32 batch: wall-clock (median of 6 steps)', s.resnet20Wall, '≤ 1.0'),
    row('ResNet-20, one training step: CPU time', s.resnet20Cpu, '≤ 1.0'),
    { what: 'loader share of the LeNet-5 epoch (time building batches / epoch time)', topiary: fmt.pct(s.loaderShare.topiary), pytorch: fmt.pct(s.loaderShare.pytorch), ratio: '', target: '< 5% (topiary)', command: COMMAND },
  ];
  const loads = [...le.load, ...rn.load].map((l) => l.toFixed(2)).join(', ');
  updateSection('Training', 'training', [
    `Measured 2026-11-21 on ${m0.cores} × ${m0.cpu}, libtorch ${String(le.topiary[0]?.torch)} CPU, one thread on both sides ` +
    `(setNumThreads(1) / torch.set_num_threads(1), plus OMP/MKL/OPENBLAS_NUM_THREADS=1), Node ${m0.node}; ${reps} repetitions per ` +
    `engine and part, each a fresh process, in alternating order; medians. 1-minute load average before each round: ${loads} ` +
    `on ${m0.cores} cores (other jobs shared the machine: both engines saw the same load; CPU time leaves out waiting for a core ` +
    'and is the steadier ratio).',
    '',
    table(rows),
    'LeNet-5: topiary runs its own `DataLoader` (shuffled, normalized, uint8 dataset in memory) and `train()` loop, which also ' +
    'reads each batch\'s loss and accuracy; the PyTorch side is the equivalent minimal loop doing the same work (randperm over a ' +
    'pre-loaded uint8 tensor, convert, normalize, forward, loss, backward, step, the same per-batch reads); three warm-up steps ' +
    `untimed. Test accuracy after the epoch: topiary ${fmt.pct(s.testAccuracy.topiary)}, PyTorch ${fmt.pct(s.testAccuracy.pytorch)}. ` +
    'ResNet-20: topiary\'s `resnet20` against the same network in PyTorch (option-A shortcuts: subsample and zero-pad channels; ' +
    'Kaiming-normal fan-out convolutions), train mode, SGD lr 0.1 momentum 0.9 weight decay 5e-4, two warm-up steps untimed. ' +
    `Per ResNet-20 step (medians): topiary ran ${s.resnet20Diag.gcPerStep} V8 garbage collections (${s.resnet20Diag.gcMsPerStep.toFixed(0)} ms ` +
    `of main-thread pauses, wall-clock) and took ${s.resnet20Diag.pageFaults.topiary.toFixed(0)} minor page faults ` +
    `(${fmt.s(s.resnet20Diag.sysSeconds.topiary)} in the kernel); PyTorch ${s.resnet20Diag.pageFaults.pytorch.toFixed(0)} page faults ` +
    `(${fmt.s(s.resnet20Diag.sysSeconds.pytorch)}).`,
  ].join('\n'));
}

const flags = parseFlags();
if (flags.worker) await worker(flags.part);
else driver(flags.reps, flags.noDoc);
