import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DatasetError } from '../../src/core/errors.js';
import { isGzip, parseIdx, readIdx } from '../../src/data/idx.js';
import { idxBytes, pattern, tempDir } from './fixtures.js';

const dir = tempDir();

/** Asserts a DatasetError whose message and `file` name `file` and whose message matches `re`. */
function throwsDataset(fn: () => unknown, file: string, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetError, `expected DatasetError, got ${String(err)}`);
    assert.equal(err.file, file);
    assert.ok(err.message.includes(file), `message should name ${file}: ${err.message}`);
    assert.match(err.message, re);
    return true;
  });
}

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

// 3 images of 4x5 and their labels.
const pixels = pattern(3 * 4 * 5);
const labelValues = Uint8Array.from([7, 0, 9]);
const imagesRaw = idxBytes([3, 4, 5], pixels);
const labelsRaw = idxBytes([3], labelValues);

test('idx: images, uncompressed and gzipped, parse element by element', () => {
  for (const [name, bytes] of [['img', imagesRaw], ['img.gz', gzipSync(imagesRaw)]] as const) {
    const { data, shape } = readIdx(write(name, bytes), 'images');
    assert.deepEqual(shape, [3, 4, 5]);
    assert.equal(data.length, 60);
    for (let i = 0; i < 60; i++) assert.equal(data[i], (i * 7 + 3) & 0xff, `${name} element ${i}`);
    // Owns its buffer exactly: no header bytes reachable through data.buffer.
    assert.equal(data.byteOffset, 0);
    assert.equal(data.buffer.byteLength, 60);
  }
});

test('idx: labels, uncompressed and gzipped', () => {
  for (const bytes of [labelsRaw, gzipSync(labelsRaw)]) {
    const { data, shape } = parseIdx(bytes, 'labels', 'labels');
    assert.deepEqual(shape, [3]);
    assert.deepEqual(Array.from(data), [7, 0, 9]);
  }
});

test('idx: gzip detected by magic, not by file name', () => {
  assert.equal(isGzip(gzipSync(labelsRaw)), true);
  assert.equal(isGzip(labelsRaw), false);
  // A gzipped file without .gz and a raw file named .gz both parse.
  assert.deepEqual(readIdx(write('gz-no-ext', gzipSync(labelsRaw)), 'labels').shape, [3]);
  assert.deepEqual(readIdx(write('raw.gz', labelsRaw), 'labels').shape, [3]);
});

test('idx: without a kind, any uint8 IDX parses (here 2-D)', () => {
  const { data, shape } = parseIdx(idxBytes([2, 3], pattern(6)), 'x');
  assert.deepEqual(shape, [2, 3]);
  assert.deepEqual(Array.from(data), Array.from(pattern(6)));
});

test('idx: truncated data names the file and both byte counts', () => {
  const file = write('trunc-idx3-ubyte', imagesRaw.subarray(0, imagesRaw.length - 7));
  throwsDataset(() => readIdx(file, 'images'), file, /truncated: expected 60 bytes of data for shape \[3, 4, 5\], found 53/);
  const gz = write('trunc-idx3-ubyte.gz', gzipSync(imagesRaw.subarray(0, imagesRaw.length - 7)));
  throwsDataset(() => readIdx(gz, 'images'), gz, /truncated: expected 60 bytes/);
});

test('idx: truncated header and trailing bytes are errors', () => {
  const short = write('short', imagesRaw.subarray(0, 10));
  throwsDataset(() => readIdx(short, 'images'), short, /truncated: header needs 16 bytes/);
  const tiny = write('tiny', Uint8Array.of(0, 0));
  throwsDataset(() => readIdx(tiny, 'labels'), tiny, /truncated/);
  const long = write('long', Buffer.concat([labelsRaw, Uint8Array.of(1, 2)]));
  throwsDataset(() => readIdx(long, 'labels'), long, /expected 3 bytes of data.*found 5 \(trailing bytes\)/);
});

test('idx: bad magic number', () => {
  // A labels file read as images.
  const file = write('swapped', labelsRaw);
  throwsDataset(() => readIdx(file, 'images'), file, /bad magic number 0x00000801 \(expected 0x00000803 for IDX images\)/);
  const junk = write('junk.gz', gzipSync(idxBytes([3], labelValues, 0x12345678)));
  throwsDataset(() => readIdx(junk, 'labels'), junk, /bad magic number 0x12345678 \(expected 0x00000801 for IDX labels\)/);
  // int32 data (type 0x0c) is refused rather than misread as bytes.
  const int32 = write('int32', idxBytes([3], labelValues, 0x0c01));
  throwsDataset(() => readIdx(int32), int32, /unsupported IDX data type 0x0c/);
});

test('idx: corrupt gzip stream', () => {
  const gz = gzipSync(imagesRaw);
  const flipped = Uint8Array.from(gz);
  for (let i = 12; i < flipped.length - 8; i++) flipped[i] ^= 0x5a;
  const file = write('flipped.gz', flipped);
  throwsDataset(() => readIdx(file, 'images'), file, /corrupt gzip stream/);
  const cut = write('cut.gz', gz.subarray(0, gz.length - 12));
  throwsDataset(() => readIdx(cut, 'images'), cut, /corrupt gzip stream/);
  // Only the CRC is wrong: zlib must still catch it.
  const crc = Uint8Array.from(gz);
  crc[crc.length - 6] ^= 1;
  const crcFile = write('crc.gz', crc);
  throwsDataset(() => readIdx(crcFile, 'images'), crcFile, /corrupt gzip stream/);
});

test('idx: a missing file is a DatasetError naming it', () => {
  const file = join(dir, 'nope-idx1-ubyte.gz');
  throwsDataset(() => readIdx(file, 'labels'), file, /file not found/);
});
