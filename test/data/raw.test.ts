import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ArgumentError, DatasetError, RegistryError } from '../../src/core/errors.js';
import { loadRaw } from '../../src/data/raw.js';
import { cifar10, cifar100, mnist, type IdxDatasetSpec } from '../../src/data/sources.js';
import { cifarBytes, cifarRecord, fakeFetch, forbidNetwork, idxBytes, listAll, md5, pattern, tempDir } from './fixtures.js';

forbidNetwork();

async function rejectsDataset(p: Promise<unknown>, file: string, ...res: RegExp[]): Promise<void> {
  let caught: unknown;
  await p.catch((err) => (caught = err));
  assert.ok(caught instanceof DatasetError, `expected DatasetError, got ${String(caught)}`);
  assert.ok(caught.message.includes(file), `message should name ${file}: ${caught.message}`);
  for (const re of res) assert.match(caught.message, re);
}

function put(dir: string, name: string, bytes: Uint8Array): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), bytes);
}

/** An MNIST-format folder: train gzipped, test decompressed (both spellings must work). */
function writeIdxSet(dir: string, nTrain: number, nTest: number): { train: [Uint8Array, Uint8Array]; test: [Uint8Array, Uint8Array] } {
  const trainPx = pattern(nTrain * 784, 3, 1), trainLb = Uint8Array.from({ length: nTrain }, (_, i) => (i * 3) % 10);
  const testPx = pattern(nTest * 784, 5, 2), testLb = Uint8Array.from({ length: nTest }, (_, i) => 9 - (i % 10));
  put(dir, 'train-images-idx3-ubyte.gz', gzipSync(idxBytes([nTrain, 28, 28], trainPx)));
  put(dir, 'train-labels-idx1-ubyte.gz', gzipSync(idxBytes([nTrain], trainLb)));
  put(dir, 't10k-images-idx3-ubyte', idxBytes([nTest, 28, 28], testPx));
  put(dir, 't10k-labels-idx1-ubyte', idxBytes([nTest], testLb));
  return { train: [trainPx, trainLb], test: [testPx, testLb] };
}

test('loadRaw: mnist from a data root, gzipped and decompressed files', async () => {
  const root = tempDir();
  const want = writeIdxSet(join(root, 'mnist'), 4, 3);
  for (const split of ['train', 'test'] as const) {
    const ds = await loadRaw('mnist', split, { dataDir: root, download: false });
    const [px, lb] = want[split];
    assert.equal(ds.n, lb.length);
    assert.deepEqual(ds.shape, [1, 28, 28]);
    assert.equal(ds.numClasses, 10);
    assert.equal(ds.images.length, ds.n * 784);
    for (let i = 0; i < px.length; i++) assert.equal(ds.images[i], px[i], `${split} pixel ${i}`);
    assert.deepEqual(Array.from(ds.labels), Array.from(lb));
  }
});

test('loadRaw: fashion_mnist reads the fashion-mnist folder under $TOPIARY_DATA', async () => {
  const root = tempDir();
  const want = writeIdxSet(join(root, 'fashion-mnist'), 2, 2);
  const ds = await loadRaw('fashion_mnist', 'train', { env: { TOPIARY_DATA: root }, download: false });
  assert.deepEqual(Array.from(ds.labels), Array.from(want.train[1]));
  assert.deepEqual(ds.images, want.train[0]);
});

test('loadRaw: cifar10 train is data_batch_1..5 in order; test is test_batch', async () => {
  const root = tempDir();
  const dir = join(root, 'cifar-10-batches-bin');
  const records = cifar10.splits.train.map((_, b) => [cifarRecord(2 * b, b), cifarRecord(2 * b + 1, 9 - b)]);
  // Written in reverse order, so directory order cannot stand in for batch order.
  for (let b = 4; b >= 0; b--) put(dir, `data_batch_${b + 1}.bin`, cifarBytes(records[b], 1));
  put(dir, 'test_batch.bin', cifarBytes([cifarRecord(20, 6)], 1));
  const train = await loadRaw('cifar10', 'train', { dataDir: root, download: false });
  assert.equal(train.n, 10);
  assert.deepEqual(train.shape, [3, 32, 32]);
  assert.equal(train.numClasses, 10);
  assert.deepEqual(Array.from(train.labels), [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]);
  const flat = records.flat();
  for (let i = 0; i < 10; i++) assert.deepEqual(train.images.subarray(i * 3072, (i + 1) * 3072), flat[i].pixels, `image ${i}`);
  const testSplit = await loadRaw('cifar10', 'test', { dataDir: root, download: false });
  assert.deepEqual([testSplit.n, Array.from(testSplit.labels)], [1, [6]]);
  assert.deepEqual(testSplit.images, cifarRecord(20, 6).pixels);
});

test('loadRaw: cifar100 fine labels by default, coarse on request', async () => {
  const root = tempDir();
  const dir = join(root, 'cifar-100-binary');
  put(dir, 'train.bin', cifarBytes([cifarRecord(0, 99, 19), cifarRecord(1, 0, 3)], 2));
  const fine = await loadRaw('cifar100', 'train', { dataDir: root, download: false });
  assert.deepEqual([fine.n, fine.numClasses, Array.from(fine.labels)], [2, 100, [99, 0]]);
  const coarse = await loadRaw('cifar100', 'train', { dataDir: root, download: false, labels: 'coarse' });
  assert.deepEqual([coarse.numClasses, Array.from(coarse.labels)], [20, [19, 3]]);
  assert.deepEqual(coarse.images, fine.images);
  await assert.rejects(loadRaw('cifar10', 'train', { dataDir: root, download: false, labels: 'coarse' }), ArgumentError);
});

test('loadRaw: images and labels must agree; labels must be in range', async () => {
  const root = tempDir();
  const dir = join(root, 'mnist');
  put(dir, 't10k-images-idx3-ubyte.gz', gzipSync(idxBytes([3, 28, 28], pattern(3 * 784))));
  const labels = join(dir, 't10k-labels-idx1-ubyte.gz');
  put(dir, 't10k-labels-idx1-ubyte.gz', gzipSync(idxBytes([2], Uint8Array.of(1, 2))));
  await rejectsDataset(loadRaw('mnist', 'test', { dataDir: root, download: false }), labels, /2 labels for 3 images/);
  put(dir, 't10k-labels-idx1-ubyte.gz', gzipSync(idxBytes([3], Uint8Array.of(1, 10, 2))));
  await rejectsDataset(loadRaw('mnist', 'test', { dataDir: root, download: false }), labels, /label 10 at index 1 out of range 0\.\.9/);
  const images = join(dir, 't10k-images-idx3-ubyte.gz');
  put(dir, 't10k-images-idx3-ubyte.gz', gzipSync(idxBytes([3, 32, 32], pattern(3 * 1024))));
  await rejectsDataset(loadRaw('mnist', 'test', { dataDir: root, download: false }), images, /images are 32x32, mnist expects 28x28/);
});

test('loadRaw: bad arguments and missing files', async () => {
  const root = tempDir();
  await assert.rejects(loadRaw('svhn', 'train', { dataDir: root }), RegistryError);
  await assert.rejects(loadRaw('mnist', 'valid' as 'train', { dataDir: root }), ArgumentError);
  await rejectsDataset(loadRaw('cifar100', 'test', { dataDir: root, download: false }), join(root, 'cifar-100-binary'), /cifar100 files missing: test\.bin/);
});

test('loadRaw: a download with the wrong bytes fails on the official md5 and leaves nothing', async () => {
  const root = tempDir();
  const garbage = gzipSync(idxBytes([1, 28, 28], pattern(784)));
  const url = mnist.baseUrl + 't10k-images-idx3-ubyte.gz';
  const { fetch, calls } = fakeFetch({ [url]: garbage });
  await rejectsDataset(loadRaw('mnist', 'test', { dataDir: root, fetch }), join(root, 'mnist', 't10k-images-idx3-ubyte.gz'),
    new RegExp(`expected md5 ${mnist.splits.test.images.md5}, got ${md5(garbage)}`));
  assert.deepEqual(calls, [url]);
  assert.deepEqual(listAll(root), []);
});

test('loadRaw: a spec served by a fake mirror downloads, verifies and loads', async () => {
  const root = tempDir();
  const files = {
    images: gzipSync(idxBytes([2, 28, 28], pattern(2 * 784, 11))),
    labels: gzipSync(idxBytes([2], Uint8Array.of(3, 8))),
  };
  const spec: IdxDatasetSpec = {
    ...mnist,
    baseUrl: 'https://fake/',
    splits: {
      ...mnist.splits,
      test: {
        images: { name: 't10k-images-idx3-ubyte.gz', md5: md5(files.images) },
        labels: { name: 't10k-labels-idx1-ubyte.gz', md5: md5(files.labels) },
      },
    },
  };
  const { fetch } = fakeFetch({ 'https://fake/t10k-images-idx3-ubyte.gz': files.images, 'https://fake/t10k-labels-idx1-ubyte.gz': files.labels });
  const ds = await loadRaw(spec, 'test', { dataDir: root, fetch, verify: true });
  assert.deepEqual([ds.n, Array.from(ds.labels)], [2, [3, 8]]);
  assert.deepEqual(ds.images, pattern(2 * 784, 11));
  assert.deepEqual(listAll(root), ['mnist/t10k-images-idx3-ubyte.gz', 'mnist/t10k-labels-idx1-ubyte.gz']);
});

test('loadRaw: verify checks files already on disk against the official md5', async () => {
  const root = tempDir();
  writeIdxSet(join(root, 'mnist'), 1, 1);
  const file = join(root, 'mnist', 'train-images-idx3-ubyte.gz');
  await rejectsDataset(loadRaw('mnist', 'train', { dataDir: root, download: false, verify: true }), file,
    new RegExp(`expected md5 ${mnist.splits.train.images.md5}, got [0-9a-f]{32}`));
  // Decompressed files have no published md5: verify skips them rather than failing.
  const ds = await loadRaw('mnist', 'test', { dataDir: root, download: false, verify: true });
  assert.equal(ds.n, 1);
  assert.ok(cifar100.splits.test[0].md5 === undefined); // likewise CIFAR-100's extracted files
});
