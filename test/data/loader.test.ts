import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { ArgumentError, DtypeError, ShapeError } from '../../src/core/errors.js';
import { cudaAvailable } from '../../src/core/device.js';
import { DataLoader, TensorDataset, horizontalFlip, loadDataset, randomAffine, randomCrop, splitTrainVal, type Batch } from '../../src/data/index.js';
import { dispose, memory, tidy, zeros } from '../../src/tensor/index.js';
import { forbidNetwork, idxBytes, pattern, tempDir } from './fixtures.js';

forbidNetwork();

const SHAPE = [2, 3, 3] as const; // two channels, so normalization is checked per channel
const PER = 18;
const MEAN = [0.25, 0.5];
const STD = [0.5, 0.2];

/** n samples whose pixels are distinct per sample and position; label i % 3. */
function tiny(n = 10): { ds: TensorDataset; px: Uint8Array; labels: number[] } {
  const px = pattern(n * PER, 7, 3);
  const labels = Array.from({ length: n }, (_, i) => i % 3);
  return { ds: TensorDataset.fromArrays(px, labels, { name: 'tiny', numClasses: 3, shape: SHAPE, mean: MEAN, std: STD }), px, labels };
}

const sorted = (a: ArrayLike<number>): number[] => Array.from(a).sort((x, y) => x - y);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

function collect(loader: DataLoader, epoch: number): number[][] {
  const out: number[][] = [];
  for (const b of loader.epoch(epoch)) {
    out.push(Array.from(b.indices));
    dispose(b);
  }
  return out;
}

test('TensorDataset: uint8 images [N, C, H, W], int64 labels, spec info; bad inputs are refused', () => {
  const before = memory().tensors;
  const { ds } = tiny();
  assert.deepEqual(ds.images.shape, [10, 2, 3, 3]);
  assert.equal(ds.images.dtype, 'uint8');
  assert.equal(ds.labels.dtype, 'int64');
  assert.equal(ds.length, 10);
  assert.deepEqual([ds.name, ds.numClasses, ds.shape, ds.mean, ds.std], ['tiny', 3, [2, 3, 3], MEAN, STD]);
  ds.dispose();
  ds.dispose();
  assert.throws(() => TensorDataset.fromArrays(new Uint8Array(17), [0], { numClasses: 3, shape: SHAPE }), ShapeError);
  assert.throws(() => TensorDataset.fromArrays(new Uint8Array(18), [3], { numClasses: 3, shape: SHAPE }), ArgumentError);
  assert.throws(() => TensorDataset.fromArrays(new Uint8Array(18), [0], { numClasses: 3, shape: SHAPE, mean: [0] }), ShapeError);
  const floats = zeros([2, 1, 2, 2]), labels = zeros([2], { dtype: 'int64' });
  assert.throws(() => new TensorDataset(floats, labels, { numClasses: 2 }), DtypeError);
  dispose([floats, labels]);
  assert.equal(memory().tensors, before);
});

test('DataLoader: every index exactly once per epoch, labels and pixels follow the indices', () => {
  const { ds, px, labels } = tiny();
  const loader = new DataLoader(ds, { batchSize: 3, shuffle: true, seed: 5, normalize: false });
  assert.equal(loader.length, 4);
  assert.equal(loader.size, 10);
  for (const e of [0, 1, 2]) {
    const seen: number[] = [];
    const sizes: number[] = [];
    for (const b of loader.epoch(e)) {
      sizes.push(b.indices.length);
      assert.deepEqual(b.x.shape, [b.indices.length, 2, 3, 3]);
      assert.equal(b.x.dtype, 'float32');
      assert.deepEqual(b.y.shape, [b.indices.length]);
      assert.equal(b.y.dtype, 'int64');
      assert.deepEqual(b.y.dataSync(), Array.from(b.indices, (i) => labels[i]));
      const xs = b.x.dataSync();
      b.indices.forEach((i, k) => {
        for (let j = 0; j < PER; j++) assert.equal(xs[k * PER + j], px[i * PER + j], `sample ${i} pixel ${j}`);
      });
      seen.push(...b.indices);
      dispose(b);
    }
    assert.deepEqual(sizes, [3, 3, 3, 1]);
    assert.deepEqual(sorted(seen), range(10));
  }
  ds.dispose();
});

test('DataLoader: order depends only on (seed, epoch), differs across epochs, unshuffled keeps the source order', () => {
  const { ds } = tiny(50);
  const a = new DataLoader(ds, { batchSize: 7, shuffle: true, seed: 11 });
  const b = new DataLoader(ds, { batchSize: 7, shuffle: true, seed: 11 });
  const c = new DataLoader(ds, { batchSize: 7, shuffle: true, seed: 12 });
  const a0 = collect(a, 0), a1 = collect(a, 1), a2 = collect(a, 2);
  // b starts at epoch 2, as a resumed run would: same order as a's third epoch.
  assert.deepEqual(collect(b, 2), a2);
  assert.deepEqual(collect(b, 0), a0);
  assert.notDeepEqual(a0, a1);
  assert.notDeepEqual(a1, a2);
  assert.notDeepEqual(collect(c, 0), a0);
  assert.deepEqual(Array.from(a.order(1)), a1.flat());
  const plain = new DataLoader(ds, { batchSize: 7 });
  assert.deepEqual(collect(plain, 0).flat(), range(50));
  assert.deepEqual(collect(plain, 3).flat(), range(50));
  ds.dispose();
});

test('DataLoader: dropLast leaves out the short batch; argument errors', () => {
  const { ds } = tiny();
  const loader = new DataLoader(ds, { batchSize: 3, shuffle: true, dropLast: true });
  assert.equal(loader.length, 3);
  assert.equal(loader.size, 9);
  const batches = collect(loader, 0);
  assert.deepEqual(batches.map((b) => b.length), [3, 3, 3]);
  assert.equal(new Set(batches.flat()).size, 9);
  assert.equal(new DataLoader(ds, { batchSize: 5, dropLast: true }).length, 2);
  assert.equal(new DataLoader(ds, { batchSize: 20, dropLast: true }).length, 0);
  assert.throws(() => new DataLoader(ds, { batchSize: 0 }), ArgumentError);
  assert.throws(() => new DataLoader(ds, { batchSize: 2.5 }), ArgumentError);
  assert.throws(() => new DataLoader({ dataset: ds, indices: Int32Array.from([0, 10]) }, { batchSize: 2 }), /index 10/);
  assert.throws(() => new DataLoader(ds, { batchSize: 2, normalize: { mean: [0], std: [1] } }), ShapeError);
  assert.throws(() => loader.epoch(-1).next(), ArgumentError);
  assert.throws(() => loader.batch([12]), ArgumentError);
  ds.dispose();
});

test('DataLoader: normalization (x / 255 - mean) / std per channel, element by element', () => {
  const { ds, px } = tiny();
  const check = (b: Batch, mean: number[], std: number[]) => {
    const xs = b.x.dataSync();
    b.indices.forEach((i, k) => {
      for (let j = 0; j < PER; j++) {
        const ch = Math.floor(j / 9);
        const want = (px[i * PER + j] / 255 - mean[ch]) / std[ch];
        assert.ok(Math.abs(xs[k * PER + j] - want) < 1e-5, `sample ${i} pixel ${j}: ${xs[k * PER + j]} vs ${want}`);
      }
    });
    dispose(b);
  };
  for (const b of new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 3 }).epoch(0)) check(b, MEAN, STD);
  const own = { mean: [0.1, 0.9], std: [2, 0.05] };
  for (const b of new DataLoader(ds, { batchSize: 10, normalize: own }).epoch(0)) check(b, own.mean, own.std);
  // normalize: false leaves pixels as floats 0..255: mean 0, std 1/255.
  for (const b of new DataLoader(ds, { batchSize: 10, normalize: false }).epoch(0)) check(b, [0, 0], [1 / 255, 1 / 255]);
  ds.dispose();
});

test('splitTrainVal: disjoint, complete, deterministic for the seed; loaders over the views', () => {
  const { ds } = tiny(100);
  const { train, val } = splitTrainVal(ds, 0.2, 7);
  assert.equal(val.indices.length, 20);
  assert.equal(train.indices.length, 80);
  assert.deepEqual(sorted([...train.indices, ...val.indices]), range(100));
  assert.deepEqual(Array.from(train.indices), sorted(train.indices));
  const again = splitTrainVal(ds, 0.2, 7);
  assert.deepEqual(again.val.indices, val.indices);
  assert.deepEqual(again.train.indices, train.indices);
  assert.notDeepEqual(splitTrainVal(ds, 0.2, 8).val.indices, val.indices);
  // A split of a view stays inside it.
  const inner = splitTrainVal(train, 0.25, 1);
  assert.deepEqual(sorted([...inner.train.indices, ...inner.val.indices]), sorted(train.indices));
  assert.equal(inner.val.indices.length, 20);
  const seen = collect(new DataLoader(val, { batchSize: 6, shuffle: true }), 0).flat();
  assert.deepEqual(sorted(seen), sorted(val.indices));
  assert.equal(splitTrainVal(ds, 0, 1).val.indices.length, 0);
  assert.throws(() => splitTrainVal(ds, 1, 1), ArgumentError);
  ds.dispose();
});

test('DataLoader: no tensor leaks across 3 epochs (with augmentation); stats count batches and time', () => {
  const { ds } = tiny(40);
  const loader = new DataLoader(ds, {
    batchSize: 8,
    shuffle: true,
    seed: 2,
    augment: [randomCrop({ padding: 1 }), horizontalFlip(), randomAffine({ degrees: 10, translate: 0.1 })],
  });
  const before = memory();
  for (let e = 0; e < 3; e++) for (const b of loader.epoch(e)) b[Symbol.dispose]();
  // Breaking out of an epoch early leaves nothing behind either.
  for (const b of loader.epoch(3)) {
    dispose(b);
    break;
  }
  const after = memory();
  assert.equal(after.tensors, before.tensors);
  assert.equal(after.bytes, before.bytes);
  const s = loader.stats;
  assert.equal(s.batches, 16);
  assert.equal(s.samples, 128);
  assert.ok(s.ms > 0);
  loader.resetStats();
  assert.deepEqual(loader.stats, { batches: 0, samples: 0, ms: 0 });
  ds.dispose();
});

test('DataLoader: augmentation is reproducible for (seed, epoch) and changes the pixels', () => {
  const { ds } = tiny(16);
  const mk = () => new DataLoader(ds, { batchSize: 16, seed: 9, augment: randomAffine({ degrees: 30, translate: 0.2 }) });
  const first = (l: DataLoader, e: number) => {
    const b = l.epoch(e).next().value as Batch;
    const v = b.x.dataSync();
    dispose(b);
    return v;
  };
  const a = mk(), b = mk();
  assert.deepEqual(first(b, 1), first(a, 1));
  assert.notDeepEqual(first(a, 0), first(a, 1));
  const plain = new DataLoader(ds, { batchSize: 16 });
  assert.notDeepEqual(first(a, 0), first(plain, 0));
  ds.dispose();
});

test('loadDataset: IDX files to tensors, subset is a seeded choice kept in file order', async () => {
  const root = tempDir();
  const n = 30;
  const px = pattern(n * 784, 3, 1);
  for (let i = 0; i < n; i++) px[i * 784] = i; // the first pixel names the sample
  const lb = Uint8Array.from({ length: n }, (_, i) => (i * 7) % 10);
  mkdirSync(join(root, 'mnist'), { recursive: true });
  writeFileSync(join(root, 'mnist', 'train-images-idx3-ubyte.gz'), gzipSync(idxBytes([n, 28, 28], px)));
  writeFileSync(join(root, 'mnist', 'train-labels-idx1-ubyte'), idxBytes([n], lb));
  const before = memory().tensors;
  const ds = await loadDataset('mnist', { split: 'train', dataDir: root, download: false });
  assert.deepEqual(ds.images.shape, [n, 1, 28, 28]);
  assert.deepEqual([ds.name, ds.numClasses, ds.shape, ds.mean, ds.std], ['mnist', 10, [1, 28, 28], [0.1307], [0.3081]]);
  assert.deepEqual(ds.labels.dataSync(), Array.from(lb));
  assert.deepEqual(Uint8Array.from(ds.images.dataSync()), px);
  ds.dispose();

  const sub = await loadDataset('mnist', { split: 'train', dataDir: root, download: false, subset: 8, seed: 4 });
  const sub2 = await loadDataset('mnist', { split: 'train', dataDir: root, download: false, subset: 8, seed: 4 });
  const sub3 = await loadDataset('mnist', { split: 'train', dataDir: root, download: false, subset: 8, seed: 5 });
  assert.equal(sub.length, 8);
  assert.ok(sub.images.equal(sub2.images));
  assert.ok(!sub.images.equal(sub3.images));
  const labels = sub.labels.dataSync();
  const images = sub.images.dataSync();
  const taken = Array.from({ length: 8 }, (_, k) => images[k * 784]);
  assert.equal(new Set(taken).size, 8);
  assert.deepEqual(taken, sorted(taken));
  taken.forEach((i, k) => {
    assert.equal(labels[k], lb[i]);
    for (let j = 0; j < 784; j++) assert.equal(images[k * 784 + j], px[i * 784 + j]);
  });
  dispose([sub, sub2, sub3].flatMap((d) => [d.images, d.labels]));
  assert.equal(memory().tensors, before);
  await assert.rejects(loadDataset('mnist', { split: 'train', dataDir: root, download: false, subset: 0 }), ArgumentError);
  await assert.rejects(loadDataset('nope', { split: 'train', dataDir: root }), /known datasets/);
});

test('DataLoader: batches on CUDA when asked', { skip: !cudaAvailable() && 'no CUDA in this libtorch' }, () => {
  const { ds, px } = tiny();
  const loader = new DataLoader(ds, { batchSize: 4, device: 'cuda', augment: [randomCrop({ padding: 1 }), horizontalFlip(), randomAffine({ degrees: 5 })] });
  const before = memory().tensors;
  for (const b of loader.epoch(0)) {
    assert.match(b.x.device, /^cuda/);
    assert.match(b.y.device, /^cuda/);
    dispose(b);
  }
  const b = new DataLoader(ds, { batchSize: 10, device: 'cuda', normalize: false }).epoch(0).next().value as Batch;
  assert.deepEqual(Uint8Array.from(b.x.dataSync()), px);
  dispose(b);
  assert.equal(memory().tensors, before);
  ds.dispose();
});

// ---- the real MNIST, when this machine has it ----------------------------------------------------------

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const root = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const present = existsSync(join(root, 'mnist', 'train-images-idx3-ubyte.gz')) || existsSync(join(root, 'mnist', 'train-images-idx3-ubyte'));
const skip = !present && `real MNIST not found under ${root} (set TOPIARY_DATA to a folder holding mnist/)`;

test('real MNIST: 60000 training images; a normalized batch has mean ~0 and std ~1', { skip }, async () => {
  const before = memory().tensors;
  const ds = await loadDataset('mnist', { split: 'train', dataDir: root, download: false });
  assert.equal(ds.length, 60000);
  assert.deepEqual(ds.images.shape, [60000, 1, 28, 28]);
  assert.equal(ds.images.dtype, 'uint8');
  assert.deepEqual(tidy(() => ds.labels.narrow(0, 0, 10).dataSync()), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  const loader = new DataLoader(ds, { batchSize: 10000, shuffle: true, seed: 1 });
  const b = loader.epoch(0).next().value as Batch;
  const [mean, std] = tidy(() => [b.x.mean().item(), b.x.std().item()]);
  assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 0.05, `std ${std}`);
  dispose(b);
  const { train, val } = splitTrainVal(ds, 1 / 12, 0);
  assert.deepEqual([train.indices.length, val.indices.length], [55000, 5000]);
  ds.dispose();
  const test_ = await loadDataset('mnist', { split: 'test', dataDir: root, download: false, subset: 1000 });
  assert.equal(test_.length, 1000);
  test_.dispose();
  assert.equal(memory().tensors, before);
});
