/**
 * Diagnostic for the engine benchmark: where one MLP training step spends its time, phase by phase
 * (batch indexing, forward + loss, backward, optimizer), in CPU seconds, for topiary and PyTorch
 * (bench/torch/mlp_phases.py), plus the eight GEMMs of a step alone: the floor that per-op
 * overhead sits on. Not part of `npm run bench`'s table; run it when the ratio moves.
 *
 *   node --import tsx bench/mlp-phases.ts [--reps 3]
 */
import { F, keep, manualSeed, noGrad, optim, rand, randperm, setNumThreads, tidy, type Tensor } from '../src/index.js';
import { alternate, cpuSince, med, parseFlags, pytorchWorker, topiaryWorker } from './lib/common.js';
import { mnistFlat } from './lib/mnist.js';

const BATCH = 128, STEPS = 300;

async function worker(): Promise<void> {
  setNumThreads(1);
  manualSeed(0);
  const train = await mnistFlat('train');
  const sizes = [784, 512, 256, 10];
  const params: Tensor[] = [];
  for (let i = 0; i < 3; i++) {
    params.push(keep(rand([sizes[i + 1], sizes[i]]).mul_(0.05).requiresGrad_(true)), keep(rand([sizes[i + 1]]).mul_(0.05).requiresGrad_(true)));
  }
  const [w1, b1, w2, b2, w3, b3] = params;
  const opt = new optim.SGD(params, { lr: 0.05 });
  const perm = keep(randperm(train.n));
  const phase = { index: 0, forward: 0, backward: 0, optimizer: 0, scope: 0 };
  for (let s = -10; s < STEPS; s++) {
    const on = s >= 0;
    let c = process.cpuUsage();
    const lap = (k: keyof typeof phase): void => { if (on) phase[k] += cpuSince(c); c = process.cpuUsage(); };
    tidy(() => {
      const idx = perm.narrow(0, ((s + 10) * BATCH) % (train.n - BATCH), BATCH);
      const xb = train.x.indexSelect(0, idx), yb = train.y.indexSelect(0, idx);
      lap('index');
      const loss = F.crossEntropy(F.linear(F.linear(F.linear(xb, w1, b1).relu(), w2, b2).relu(), w3, b3), yb);
      lap('forward');
      opt.zeroGrad();
      loss.backward();
      lap('backward');
      opt.step();
      lap('optimizer');
      return undefined;
    });
    lap('scope');
  }
  // The eight GEMMs of a step (3 forward, 3 weight gradients, 2 input gradients), nothing else.
  const x = train.x.narrow(0, 0, BATCH);
  const gemm = noGrad(() => tidy(() => {
    const h1 = rand([BATCH, 512]), h2 = rand([BATCH, 256]), g3 = rand([BATCH, 10]), g2 = rand([BATCH, 256]), g1 = rand([BATCH, 512]);
    const W1 = w1.detach(), W2 = w2.detach(), W3 = w3.detach();
    const once = (): void => tidy(() => {
      x.matmul(W1.T); h1.matmul(W2.T); h2.matmul(W3.T);
      g3.T.matmul(h2); g2.T.matmul(h1); g1.T.matmul(x);
      g3.matmul(W3); g2.matmul(W2);
    });
    for (let i = 0; i < 10; i++) once();
    const c0 = process.cpuUsage();
    for (let i = 0; i < STEPS; i++) once();
    return cpuSince(c0);
  }));
  const ms = (v: number): number => (v * 1000) / STEPS;
  console.log(JSON.stringify({
    engine: 'topiary', indexMs: ms(phase.index), forwardMs: ms(phase.forward), backwardMs: ms(phase.backward),
    optimizerMs: ms(phase.optimizer), scopeMs: ms(phase.scope), gemmMs: ms(gemm),
    stepMs: ms(phase.index + phase.forward + phase.backward + phase.optimizer + phase.scope),
  }));
}

function driver(reps: number): void {
  const r = alternate(reps, [topiaryWorker('mlp-phases.ts'), pytorchWorker('mlp_phases.py')], 'mlp-phases');
  const keys = ['indexMs', 'forwardMs', 'backwardMs', 'optimizerMs', 'scopeMs', 'stepMs', 'gemmMs'];
  const out: Record<string, unknown> = { bench: 'mlp-phases', reps, unit: 'CPU ms per step (median over processes)' };
  for (const k of keys) out[k] = { topiary: med(r.topiary, k), pytorch: med(r.pytorch, k), ratio: med(r.topiary, k) / med(r.pytorch, k) };
  console.log(JSON.stringify(out));
}

const flags = parseFlags();
if (flags.worker) await worker();
else driver(flags.reps);
