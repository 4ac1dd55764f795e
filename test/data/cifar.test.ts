import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../../src/core/errors.js';
import { cifarRecordSize, concatCifar, parseCifar, readCifar } from '../../src/data/cifar.js';
import { cifarBytes, cifarRecord, tempDir } from './fixtures.js';

const dir = tempDir();

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

function throwsDataset(fn: () => unknown, file: string, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetError, `expected DatasetError, got ${String(err)}`);
    assert.equal(err.file, file);
    assert.ok(err.message.includes(file), `message should name ${file}: ${err.message}`);
    assert.match(err.message, re);
    return true;
  });
}

test('cifar: record sizes', () => {
  assert.equal(cifarRecordSize('cifar10'), 3073);
  assert.equal(cifarRecordSize('cifar100'), 3074);
});

test('cifar10: labels and [N,3,32,32] pixels element by element', () => {
  const records = [cifarRecord(0, 3), cifarRecord(1, 9), cifarRecord(2, 0)];
  const file = write('data_batch_1.bin', cifarBytes(records, 1));
  const b = readCifar(file, 'cifar10');
  assert.equal(b.n, 3);
  assert.deepEqual(Array.from(b.labels), [3, 9, 0]);
  assert.equal(b.coarseLabels, undefined);
  assert.equal(b.images.length, 3 * 3 * 32 * 32);
  for (let i = 0; i < 3; i++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          // Record layout: 1024 R, 1024 G, 1024 B, each row-major; image index [i, c, y, x].
          const want = records[i].pixels[c * 1024 + y * 32 + x];
          assert.equal(b.images[((i * 3 + c) * 32 + y) * 32 + x], want);
        }
      }
    }
  }
});

test('cifar100: coarse then fine label bytes', () => {
  const records = [cifarRecord(0, 99, 19), cifarRecord(1, 42, 7)];
  const b = parseCifar(cifarBytes(records, 2), 'train.bin', 'cifar100');
  assert.equal(b.n, 2);
  assert.deepEqual(Array.from(b.labels), [99, 42]);
  assert.deepEqual(Array.from(b.coarseLabels!), [19, 7]);
  assert.deepEqual(Array.from(b.images.subarray(3072)), Array.from(records[1].pixels));
  assert.deepEqual(Array.from(b.images.subarray(0, 3072)), Array.from(records[0].pixels));
});

test('cifar: a size that is not a whole number of records', () => {
  const good = cifarBytes([cifarRecord(0, 1), cifarRecord(1, 2)], 1);
  const file = write('short_batch.bin', good.subarray(0, good.length - 100));
  throwsDataset(() => readCifar(file, 'cifar10'), file, /size 6046 is not a multiple of the cifar10 record size 3073/);
  // CIFAR-10 bytes read as CIFAR-100: 2 * 3073 is not a multiple of 3074.
  const swapped = write('swapped.bin', good);
  throwsDataset(() => readCifar(swapped, 'cifar100'), swapped, /record size 3074/);
  const empty = write('empty.bin', new Uint8Array(0));
  throwsDataset(() => readCifar(empty, 'cifar10'), empty, /empty file/);
});

test('cifar: labels out of range', () => {
  const ten = write('ten.bin', cifarBytes([cifarRecord(0, 1), cifarRecord(1, 10)], 1));
  throwsDataset(() => readCifar(ten, 'cifar10'), ten, /record 1: label 10 out of range 0\.\.9/);
  const fine = write('fine.bin', cifarBytes([cifarRecord(0, 100, 3)], 2));
  throwsDataset(() => readCifar(fine, 'cifar100'), fine, /record 0: fine label 100 out of range 0\.\.99/);
  const coarse = write('coarse.bin', cifarBytes([cifarRecord(0, 5, 20)], 2));
  throwsDataset(() => readCifar(coarse, 'cifar100'), coarse, /record 0: coarse label 20 out of range 0\.\.19/);
});

test('cifar: concat keeps batch order', () => {
  const a = parseCifar(cifarBytes([cifarRecord(0, 1), cifarRecord(1, 2)], 1), 'a', 'cifar10');
  const b = parseCifar(cifarBytes([cifarRecord(2, 3)], 1), 'b', 'cifar10');
  const ab = concatCifar([a, b]);
  assert.equal(ab.n, 3);
  assert.deepEqual(Array.from(ab.labels), [1, 2, 3]);
  assert.deepEqual(Array.from(ab.images.subarray(2 * 3072)), Array.from(cifarRecord(2, 3).pixels));
  assert.deepEqual(Array.from(ab.images.subarray(0, 2 * 3072)), Array.from(a.images));
  const c = concatCifar([
    parseCifar(cifarBytes([cifarRecord(0, 1, 2)], 2), 'c', 'cifar100'),
    parseCifar(cifarBytes([cifarRecord(1, 3, 4)], 2), 'd', 'cifar100'),
  ]);
  assert.deepEqual(Array.from(c.coarseLabels!), [2, 4]);
});
