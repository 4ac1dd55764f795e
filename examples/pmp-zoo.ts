// Prune a zoo model with PMP while it trains: LeNet-300-100 on an MNIST subset, 90% of its weights.
// In your project: import { ... } from 'topiary'. Data: $TOPIARY_DATA (or the download cache).
import { createModel, data, evaluate, manualSeed, optim, pmp, train } from '../src/index.js';

manualSeed(0);
const trainSet = await data.loadDataset('mnist', { split: 'train', subset: 2000 });
const testSet = await data.loadDataset('mnist', { split: 'test', subset: 1000 });
const loader = new data.DataLoader(trainSet, { batchSize: 64, shuffle: true, seed: 0 });

const model = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 });
const optimizer = new optim.SGD(model.namedParameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
// Once per epoch: prune the active weights by magnitude to s(e) = 0.9 * min(1, (e + 1) / 3);
// the masks hold at the three points (before forward, after backward, after the step).
const pruning = pmp(model, { sparsity: 0.9, phase: 3 });
train({ model, optimizer, epochs: 4, trainBatches: (e) => loader.epoch(e), callbacks: [pruning] });

const acc = evaluate(model, new data.DataLoader(testSet, { batchSize: 500 }).epoch(0)).accuracy;
console.log(`pmp: sparsity ${(100 * pruning.sparsity()).toFixed(2)}%, test accuracy ${(100 * acc).toFixed(2)}%`);
pruning.dispose();
optimizer.dispose();
model.dispose();
