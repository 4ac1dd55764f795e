// Prune, fine-tune, export: global magnitude on a trained LeNet-300-100, then ONNX (opset 17), and
// the file checked in onnxruntime (a dev dependency) against topiary's own forward pass.
// (Importing an ONNX model to prune it comes with the ONNX import issue.)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { createModel, data, exportOnnx, magnitude, manualSeed, noGrad, optim, tidy, train } from '../src/index.js';

manualSeed(0);
const trainSet = await data.loadDataset('mnist', { split: 'train', subset: 2000 });
const loader = new data.DataLoader(trainSet, { batchSize: 64, shuffle: true, seed: 0 });
const model = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 });
const opt = new optim.SGD(model.namedParameters(), { lr: 0.05, momentum: 0.9 });
train({ model, optimizer: opt, epochs: 1, trainBatches: (e) => loader.epoch(e) });
const { target, record } = magnitude(model, { sparsity: 0.9 });
train({ model, optimizer: opt, epochs: 1, trainBatches: (e) => loader.epoch(1 + e), callbacks: [target.callback()] });

const out = join(mkdtempSync(join(tmpdir(), 'topiary-example-')), 'lenet-90.onnx');
const { bytes } = exportOnnx(model, { inputShape: [1, 28, 28], opset: 17, out });
const batch = loader.batch(Int32Array.from({ length: 8 }, (_, i) => i));
model.eval();
const ours = tidy(() => noGrad(() => model.call(batch.x).dataSync()));
const session = await ort.InferenceSession.create(out);
const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', Float32Array.from(batch.x.dataSync()), batch.x.shape) };
const theirs = (await session.run(feeds))[session.outputNames[0]].data as Float32Array;
const diff = Math.max(...Array.from(ours, (v, i) => Math.abs(v - theirs[i])));
console.log(`onnx: ${(100 * record.achieved).toFixed(2)}% sparse, ${bytes} bytes, max |topiary - onnxruntime| ${diff.toExponential(1)}`);
batch.x.dispose(); batch.y.dispose(); target.dispose(); opt.dispose(); model.dispose();
