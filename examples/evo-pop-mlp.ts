// EVO-POP on your own MLP: neurons as populations under selection, then the lowest-mass 40% removed
// physically (a smaller network, not a masked one).
import { data, evaluate, manualSeed, nn, optim, populationModel, removeByMass, selection, train } from '../src/index.js';

manualSeed(0);
const trainSet = await data.loadDataset('mnist', { split: 'train', subset: 2000 });
const testSet = await data.loadDataset('mnist', { split: 'test', subset: 1000 });
const loader = new data.DataLoader(trainSet, { batchSize: 64, shuffle: true, seed: 0 });
const test = (m: nn.Module) => evaluate(m, new data.DataLoader(testSet, { batchSize: 500 }).epoch(0)).accuracy;

const mine = new nn.Sequential(new nn.Flatten(), new nn.Linear(784, 128), new nn.ReLU(), new nn.Linear(128, 64), new nn.ReLU(), new nn.Linear(64, 10));
const pop = populationModel(mine, { units: 'neurons' });
const optimizer = new optim.SGD(pop.namedParameters(), { lr: 0.05, momentum: 0.9 });
const sel = selection(pop, { dynamics: 'replicator', fitness: 'gradient', eta: 0.01 });
train({ model: pop, optimizer, epochs: 2, trainBatches: (e) => loader.epoch(e), callbacks: [sel] });

const { model: small, removed, total } = removeByMass(pop, 0.4);
console.log(`evo-pop: removed ${removed} of ${total} neurons, parameters ${pop.numParameters()} -> ${small.numParameters()}, ` +
  `test accuracy ${(100 * test(pop)).toFixed(2)}% -> ${(100 * test(small)).toFixed(2)}%`);
small.dispose();
optimizer.dispose();
pop.dispose();
