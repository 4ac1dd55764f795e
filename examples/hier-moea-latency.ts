// HIER-MOEA ask/tell with your own objectives: validation error against a latency model measured on
// this machine (each layer's forward time, scaled by the fraction of its weights kept).
import { createModel, data, evaluate, hierMoeaLoop, manualSeed, nn, optim, tidy, train, zeros } from '../src/index.js';

manualSeed(0);
const trainSet = await data.loadDataset('mnist', { split: 'train', subset: 2000 });
const { train: tr, val } = data.splitTrainVal(trainSet, 0.2, 0);
const loader = new data.DataLoader(tr, { batchSize: 64, shuffle: true, seed: 0 });
const model = createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10, widths: [64] });
const optimizer = new optim.SGD(model.namedParameters(), { lr: 0.05, momentum: 0.9 });
train({ model, optimizer, epochs: 2, trainBatches: (e) => loader.epoch(e) });

// Milliseconds per forward of each Linear on a batch of 256 (the device's cost table).
const layers = model.modules().filter((m): m is nn.Linear => m instanceof nn.Linear);
const ms = layers.map((l) => tidy(() => {
  const x = zeros([256, l.inFeatures]), t0 = performance.now();
  for (let i = 0; i < 20; i++) l.call(x).dispose();
  return (performance.now() - t0) / 20;
}));
const latency = (masks: Uint8Array[]) => masks.reduce((s, m, i) => s + ms[i] * (m.reduce((a, b) => a + b, 0) / m.length), 0);
const error = () => 1 - evaluate(model, new data.DataLoader(val, { batchSize: 400 }).epoch(0)).accuracy;

const loop = hierMoeaLoop(model, { pop: 8, phase1Gens: 4, phase2Gens: 4, seed: 0 });
for (let batch = loop.ask(); batch; batch = loop.ask()) {
  loop.tell(batch.map((c) => { c.apply(); return [error(), latency(c.masks)]; }));
}
loop.restore();
const front = loop.front();
const f = (p: (typeof front)[number]) => `error ${(100 * p.objectives[0]).toFixed(2)}% at ${p.objectives[1].toFixed(3)} ms (kept ${(100 * p.kept).toFixed(1)}%)`;
console.log(`hier-moea: ${front.length} Pareto solutions, fastest ${f(front[0])}, most accurate ${f(front[front.length - 1])}`);
loop.dispose();
optimizer.dispose();
model.dispose();
