// One-shot global magnitude pruning of a trained network, then fine-tuning with the masks fixed.
import { createModel, data, evaluate, magnitude, manualSeed, optim, train } from '../src/index.js';

manualSeed(0);
const trainSet = await data.loadDataset('mnist', { split: 'train', subset: 2000 });
const testSet = await data.loadDataset('mnist', { split: 'test', subset: 1000 });
const loader = new data.DataLoader(trainSet, { batchSize: 64, shuffle: true, seed: 0 });
const test = () => evaluate(model, new data.DataLoader(testSet, { batchSize: 500 }).epoch(0)).accuracy;
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

const model = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 });
const sgd = () => new optim.SGD(model.namedParameters(), { lr: 0.05, momentum: 0.9 });
const dense = sgd();
train({ model, optimizer: dense, epochs: 2, trainBatches: (e) => loader.epoch(e) });
const denseAcc = test();

// 95% of the weights, one threshold across layers; the weights are zeroed now (apply: true).
const { target, record } = magnitude(model, { sparsity: 0.95, scope: 'global' });
const prunedAcc = test();
const fine = sgd();
train({ model, optimizer: fine, epochs: 1, trainBatches: (e) => loader.epoch(2 + e), callbacks: [target.callback()] });

console.log(`magnitude: kept ${record.kept} of ${record.total} weights (${pct(record.achieved)} sparse); ` +
  `test accuracy dense ${pct(denseAcc)}, pruned ${pct(prunedAcc)}, fine-tuned ${pct(test())}`);
target.dispose();
dense.dispose();
fine.dispose();
model.dispose();
