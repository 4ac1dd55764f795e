import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { RegistryError } from '../../src/core/errors.js';
import { candidateNames, dataRoot, datasetDir, findFile } from '../../src/data/locate.js';
import { datasetFiles, datasetNames, datasets, getDatasetSpec } from '../../src/data/sources.js';
import { tempDir } from './fixtures.js';

test('locate: dataDir, then TOPIARY_DATA, then XDG_CACHE_HOME, then ~/.cache', () => {
  const env = { TOPIARY_DATA: '/data/t', XDG_CACHE_HOME: '/xdg', HOME: '/home/u' };
  assert.equal(dataRoot({ dataDir: '/explicit', env }), '/explicit');
  assert.equal(dataRoot({ env }), '/data/t');
  assert.equal(dataRoot({ env: { ...env, TOPIARY_DATA: '' } }), '/xdg/topiary/datasets');
  assert.equal(dataRoot({ env: { HOME: '/home/u' } }), '/home/u/.cache/topiary/datasets');
  assert.equal(dataRoot({ env: {} }), join(homedir(), '.cache', 'topiary', 'datasets'));
  assert.equal(dataRoot({ dataDir: 'rel/dir', env }), resolve('rel/dir'));
});

test('locate: dataset folders follow the on-disk names, not the registry keys', () => {
  const env = {};
  assert.equal(datasetDir(getDatasetSpec('mnist'), { dataDir: '/r', env }), '/r/mnist');
  assert.equal(datasetDir(getDatasetSpec('fashion_mnist'), { dataDir: '/r', env }), '/r/fashion-mnist');
  assert.equal(datasetDir(getDatasetSpec('cifar10'), { dataDir: '/r', env }), '/r/cifar-10-batches-bin');
  assert.equal(datasetDir(getDatasetSpec('cifar100'), { dataDir: '/r', env }), '/r/cifar-100-binary');
});

test('locate: findFile accepts the .gz name and the decompressed one, .gz first', () => {
  const dir = tempDir();
  assert.deepEqual(candidateNames('a-idx1-ubyte.gz'), ['a-idx1-ubyte.gz', 'a-idx1-ubyte']);
  assert.deepEqual(candidateNames('test_batch.bin'), ['test_batch.bin']);
  assert.equal(findFile(dir, 'a-idx1-ubyte.gz'), undefined);
  writeFileSync(join(dir, 'a-idx1-ubyte'), '');
  assert.equal(findFile(dir, 'a-idx1-ubyte.gz'), join(dir, 'a-idx1-ubyte'));
  writeFileSync(join(dir, 'a-idx1-ubyte.gz'), '');
  assert.equal(findFile(dir, 'a-idx1-ubyte.gz'), join(dir, 'a-idx1-ubyte.gz'));
  mkdirSync(join(dir, 'b.bin')); // a folder is not a file
  assert.equal(findFile(dir, 'b.bin'), undefined);
});

test('sources: registry keys, shapes, classes and normalization', () => {
  assert.deepEqual(datasetNames, ['mnist', 'fashion_mnist', 'cifar10', 'cifar100']);
  const m = getDatasetSpec('mnist');
  assert.deepEqual([m.inputShape, m.numClasses, m.mean, m.std], [[1, 28, 28], 10, [0.1307], [0.3081]]);
  const f = getDatasetSpec('fashion_mnist');
  assert.deepEqual([f.inputShape, f.numClasses, f.mean, f.std], [[1, 28, 28], 10, [0.286], [0.353]]);
  const c10 = getDatasetSpec('cifar10');
  assert.deepEqual([c10.inputShape, c10.numClasses, c10.mean, c10.std], [[3, 32, 32], 10, [0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616]]);
  const c100 = getDatasetSpec('cifar100');
  assert.deepEqual([c100.inputShape, c100.numClasses, c100.mean, c100.std], [[3, 32, 32], 100, [0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762]]);
});

test('sources: files, URLs and md5s are well formed', () => {
  const m = datasets.mnist;
  assert.ok(m.format === 'idx' && m.baseUrl === 'https://ossci-datasets.s3.amazonaws.com/mnist/');
  assert.equal(m.splits.train.images.md5, 'f68b3c2dcbeaaa9fbdd348bbdeb94873');
  const c10 = datasets.cifar10;
  assert.ok(c10.format === 'cifar');
  assert.equal(c10.archive.url, 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz');
  assert.deepEqual(c10.splits.train.map((s) => s.name), [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`));
  for (const spec of Object.values(datasets)) {
    const files = datasetFiles(spec);
    assert.equal(new Set(files.map((f) => f.name)).size, files.length);
    for (const f of files) if (f.md5 !== undefined) assert.match(f.md5, /^[0-9a-f]{32}$/, `${spec.name} ${f.name}`);
    if (spec.format === 'cifar') assert.match(spec.archive.md5, /^[0-9a-f]{32}$/);
    assert.equal(spec.mean.length, spec.inputShape[0]);
    assert.equal(spec.std.length, spec.inputShape[0]);
  }
});

test('sources: an unknown name lists the known ones', () => {
  assert.throws(() => getDatasetSpec('imagenet'), (err: unknown) => {
    assert.ok(err instanceof RegistryError);
    assert.match(err.message, /unknown dataset 'imagenet'; known datasets: mnist, fashion_mnist, cifar10, cifar100/);
    return true;
  });
  assert.throws(() => getDatasetSpec('toString'), RegistryError); // no prototype keys
});
