/**
 * The real MNIST (and Fashion-MNIST) files, when this machine has them ($TOPIARY_DATA, else the shared folder beside
 * the repository, as scripts/test.sh sets it). Expected values were computed from the files with
 * an independent reader (Python's gzip module), not taken from memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyFiles } from '../../src/data/download.js';
import { loadRaw } from '../../src/data/raw.js';
import { fashionMnist, mnist } from '../../src/data/sources.js';
import { forbidNetwork } from './fixtures.js';

forbidNetwork();

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const root = process.env.TOPIARY_DATA || resolve(repo, '../shared/datasets');
const present = existsSync(join(root, 'mnist', 'train-images-idx3-ubyte.gz'));
const skip = !present && `real MNIST not found under ${root} (set TOPIARY_DATA to a folder holding mnist/)`;
const opts = { dataDir: root, download: false } as const;

test('real MNIST: official md5 of all four files', { skip }, async () => {
  await verifyFiles(mnist, join(root, 'mnist'));
});

test('real MNIST: train split', { skip }, async () => {
  const ds = await loadRaw('mnist', 'train', opts);
  assert.equal(ds.n, 60000);
  assert.equal(ds.images.length, 60000 * 784);
  assert.deepEqual(Array.from(ds.labels.subarray(0, 10)), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  let sum = 0;
  for (let i = 0; i < 784; i++) sum += ds.images[i];
  assert.equal(sum, 27525);
  const counts = new Array<number>(10).fill(0);
  for (const l of ds.labels) counts[l]++;
  // Per-class counts of the training set (also from the files): a check on every label at once.
  assert.deepEqual(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
});

test('real MNIST: test split', { skip }, async () => {
  const ds = await loadRaw('mnist', 'test', opts);
  assert.equal(ds.n, 10000);
  assert.equal(ds.labels[0], 7);
  let sum = 0;
  for (let i = 0; i < 784; i++) sum += ds.images[i];
  assert.equal(sum, 18454);
});

const fashionPresent = existsSync(join(root, 'fashion-mnist', 'train-images-idx3-ubyte.gz'));
const fashionSkip = !fashionPresent && `real Fashion-MNIST not found under ${root}/fashion-mnist`;

test('real Fashion-MNIST: md5s, and the fashion_mnist key reads the fashion-mnist folder', { skip: fashionSkip }, async () => {
  await verifyFiles(fashionMnist, join(root, 'fashion-mnist'));
  const ds = await loadRaw('fashion_mnist', 'train', opts);
  assert.equal(ds.n, 60000);
  assert.equal(ds.labels[0], 9); // ankle boot
  let sum = 0;
  for (let i = 0; i < 784; i++) sum += ds.images[i];
  assert.equal(sum, 76247);
});
