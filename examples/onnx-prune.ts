// Import an ONNX model, prune it, fine-tune it, export it again, and check the file in onnxruntime.
// The model to import is written here by topiary (a trained LeNet-300-100); a PyTorch export
// (opset 13-21) imports the same way.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { createModel, data, evaluate, exportOnnx, importOnnx, magnitude, manualSeed, noGrad, optim, tidy, train } from '../src/index.js';

manualSeed(0);
const dir = mkdtempSync(join(tmpdir(), 'topiary-example-'));
const loader = new data.DataLoader(await data.loadDataset('mnist', { split: 'train', subset: 2000 }), { batchSize: 64, shuffle: true, seed: 0 });
const testSet = new data.DataLoader(await data.loadDataset('mnist', { split: 'test', subset: 1000 }), { batchSize: 500 });
const dense = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 });
const denseOpt = new optim.SGD(dense.namedParameters(), { lr: 0.05, momentum: 0.9 });
train({ model: dense, optimizer: denseOpt, epochs: 1, trainBatches: (e) => loader.epoch(e) });
exportOnnx(dense, { inputShape: [1, 28, 28], out: join(dir, 'dense.onnx') });

const model = importOnnx(join(dir, 'dense.onnx'), { inputShape: [1, 28, 28] }); // a trainable Module backed by the graph
const { target, record } = magnitude(model, { sparsity: 0.9 });
const opt = new optim.SGD(model.namedParameters(), { lr: 0.05, momentum: 0.9 });
train({ model, optimizer: opt, epochs: 1, trainBatches: (e) => loader.epoch(1 + e), callbacks: [target.callback()] });
const acc = evaluate(model, testSet.epoch(0)).accuracy;
const { bytes } = exportOnnx(model, { inputShape: [1, 28, 28], out: join(dir, 'pruned.onnx') });

const b = loader.batch(Int32Array.from({ length: 8 }, (_, i) => i));
const ours = tidy(() => noGrad(() => model.eval().call(b.x).dataSync()));
const session = await ort.InferenceSession.create(join(dir, 'pruned.onnx'));
const res = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', Float32Array.from(b.x.dataSync()), b.x.shape) });
const diff = Math.max(...Array.from(ours, (v, i) => Math.abs(v - (res[session.outputNames[0]].data as Float32Array)[i])));
console.log(`onnx: imported, ${(100 * record.achieved).toFixed(2)}% sparse, test accuracy ${(100 * acc).toFixed(2)}%, ` +
  `exported ${bytes} bytes, max |topiary - onnxruntime| ${diff.toExponential(1)}`);
b.x.dispose(); b.y.dispose(); target.dispose(); opt.dispose(); denseOpt.dispose(); model.dispose(); dense.dispose();
