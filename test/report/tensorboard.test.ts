/**
 * TensorBoard event files (src/report/tensorboard.ts): CRC-32C against RFC 3720's test vectors,
 * TFRecord framing byte by byte, a written file decoded back (lengths and CRCs checked, the values
 * float32-equal), `topiary train --tensorboard` logging its history; and, where /usr/bin/python3 has
 * the tensorboard package, TensorBoard's own reader on the file (skipped with the reason otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c, maskedCrc32c, readEventFile, readTfRecords, TensorBoardWriter, tfRecord } from '../../src/report/tensorboard.js';
import { SerializationError } from '../../src/core/errors.js';

const PY = '/usr/bin/python3';
const ROOT = join(import.meta.dirname, '..', '..');

test('crc32c: the RFC 3720 (iSCSI) B.4 vectors and the common check value', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

test('maskedCrc32c: rotate right 15, add 0xa282ead8 (TensorFlow crc32c::Mask)', () => {
  // By hand (Python ints): rot(0xe3069283, 15) = 0x2507c60d; + 0xa282ead8 mod 2^32 = 0xc78ab0e5.
  assert.equal(maskedCrc32c(Buffer.from('123456789')), 0xc78ab0e5);
  // Of 32 zero bytes: rot(0x8a9136aa, 15) = 0x6d551522; + 0xa282ead8 = 0x0fd7fffa (the sum wraps).
  assert.equal(maskedCrc32c(new Uint8Array(32)), 0x0fd7fffa);
});

test('tfRecord: length LE, masked CRC of the length, data, masked CRC of the data; readTfRecords checks both', () => {
  const data = Buffer.from('hello tensorboard');
  const r = tfRecord(data);
  assert.equal(r.length, 8 + 4 + data.length + 4);
  assert.equal(r.readBigUInt64LE(0), BigInt(data.length));
  assert.equal(r.readUInt32LE(8), maskedCrc32c(r.subarray(0, 8)));
  assert.deepEqual(r.subarray(12, 12 + data.length), data);
  assert.equal(r.readUInt32LE(12 + data.length), maskedCrc32c(data));
  const two = Buffer.concat([r, tfRecord(new Uint8Array(0))]);
  assert.deepEqual(readTfRecords(two).map((x) => Buffer.from(x).toString()), ['hello tensorboard', '']);
  const bad = Buffer.from(two);
  bad[14] ^= 1; // a data byte
  assert.throws(() => readTfRecords(bad, 'f.tfevents'), (e: Error) => e instanceof SerializationError && /f\.tfevents: data CRC mismatch in the record at byte 0/.test(e.message));
  const badLen = Buffer.from(two);
  badLen[0] ^= 1;
  assert.throws(() => readTfRecords(badLen, 'g'), /g: length CRC mismatch at byte 0/);
  assert.throws(() => readTfRecords(two.subarray(0, two.length - 2), 'h'), /h: record at byte 33 claims 0 bytes, past the end/);
});

test('TensorBoardWriter: the version record, then scalars at their steps, float32 values', () => {
  const dir = mkdtempSync(join(tmpdir(), 'topiary-tb-'));
  try {
    const w = new TensorBoardWriter(join(dir, 'run'));
    w.scalars(0, { 'train/loss': 2.302585, lr: 0.1 }, 1000.5);
    w.scalars(1, { 'train/loss': 0.5, lr: 0.05, sparsity: 0.9 }, 1001.25);
    w.close();
    assert.match(w.file, /events\.out\.tfevents\.\d+\./);
    const ev = readEventFile(w.file);
    assert.equal(ev.length, 3);
    assert.equal(ev[0].fileVersion, 'brain.Event:2');
    assert.deepEqual(ev.slice(1), [
      { wallTime: 1000.5, step: 0, scalars: { 'train/loss': Math.fround(2.302585), lr: Math.fround(0.1) } },
      { wallTime: 1001.25, step: 1, scalars: { 'train/loss': 0.5, lr: Math.fround(0.05), sparsity: Math.fround(0.9) } },
    ]);
    assert.throws(() => w.scalars(2, { x: 1 }), /is closed/);
    assert.throws(() => new TensorBoardWriter(join(dir, 'run')).scalars(-1, {}), /step must be a non-negative integer/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function tbReader(): string | null {
  const r = spawnSync(PY, ['-c', 'import tensorboard'], { encoding: 'utf8' });
  if (r.error) return `${PY}: ${r.error.message}`;
  return r.status === 0 ? null : `${PY} has no tensorboard package (pip or Debian has none installed here)`;
}

test('topiary train --tensorboard: per-epoch scalars equal result.json history; a file for the folder is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'topiary-tb-cli-'));
  try {
    const out = join(dir, 'run'), tb = join(dir, 'tb');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'train', '--model', 'lenet_300_100', '--dataset', 'mnist',
      '--epochs', '2', '--subset', '256', '--batch-size', '64', '--lr', '0.05', '--momentum', '0.9', '--val-fraction', '0.25',
      '--threads', '1', '--out', out, '--tensorboard', tb], { encoding: 'utf8', env: { ...process.env, TOPIARY_THREADS: '1' } });
    assert.equal(r.status, 0, r.stderr);
    const files = readdirSync(tb);
    assert.equal(files.length, 1, files.join(','));
    const ev = readEventFile(join(tb, files[0])).slice(1);
    const hist = (JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { history: { epoch: number; lr: number; trainLoss: number; trainAccuracy: number; val: { loss: number; accuracy: number } }[] }).history;
    assert.deepEqual(ev.map((e) => e.step), [0, 1]);
    hist.forEach((h, i) => assert.deepEqual(ev[i].scalars, {
      'train/loss': Math.fround(h.trainLoss), 'train/accuracy': Math.fround(h.trainAccuracy), lr: Math.fround(h.lr),
      'val/loss': Math.fround(h.val.loss), 'val/accuracy': Math.fround(h.val.accuracy), sparsity: 0,
    }));
    // A file where the folder should be: one line naming it, exit 2, no run written.
    writeFileSync(join(dir, 'afile'), 'x');
    const bad = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'train', '--model', 'lenet_300_100', '--dataset', 'mnist',
      '--epochs', '1', '--subset', '64', '--out', join(dir, 'bad'), '--tensorboard', join(dir, 'afile')], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /tensorboard: .*afile is a file, not a folder/);
    assert.deepEqual(readdirSync(dir).sort(), ['afile', 'run', 'tb']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('TensorBoard itself reads the event file', { skip: tbReader() ?? false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'topiary-tb-py-'));
  try {
    const w = new TensorBoardWriter(dir);
    w.scalars(0, { 'train/loss': 1.5 });
    w.scalars(1, { 'train/loss': 0.75 });
    w.close();
    const py = [
      'import sys', 'from tensorboard.backend.event_processing.event_accumulator import EventAccumulator',
      'a = EventAccumulator(sys.argv[1]); a.Reload()', "print(','.join(f'{s.step}:{s.value}' for s in a.Scalars('train/loss')))",
    ].join('\n');
    const r = spawnSync(PY, ['-c', py, dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '0:1.5,1:0.75');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
