/**
 * safetensors: every dtype round-trips bit for bit with metadata, the bytes follow the format
 * (length prefix, JSON header, 8-byte aligned little-endian data), and saving is atomic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DisposedTensorError, SerializationError } from '../../src/core/errors.js';
import {
  Tensor, decodeSafetensors, dispose, encodeSafetensors, loadSafetensors, memory, saveSafetensors, tensor, tidy, zeros,
} from '../../src/tensor/index.js';

const dir = mkdtempSync(join(tmpdir(), 'topiary-st-'));
const startTensors = memory().tensors;

/** One tensor per dtype, with edge values: extremes, -0, NaN, infinities, a subnormal, int64 beyond 2^53. */
function everyDtype(): Record<string, Tensor> {
  return {
    f32: tensor(new Float32Array([1.5, -0, NaN, Infinity, -Infinity, 1e-40, 3.4028234663852886e38, -2.75]), { shape: [2, 4] }),
    f64: tensor(new Float64Array([Math.PI, -0, NaN, 5e-324, -1.7976931348623157e308, 0.1]), { shape: [3, 2] }),
    f16: tensor([0.5, -65504, 6.103515625e-5, 1 / 3], { dtype: 'float32' }).to('float16'),
    i64: tensor(new BigInt64Array([9007199254740993n, -9223372036854775808n, 9223372036854775807n, 0n])),
    i32: tensor(new Int32Array([-2147483648, 2147483647, 7])),
    i16: tensor(new Int16Array([-32768, 32767, -1, 0]), { shape: [2, 2] }),
    i8: tensor(new Int8Array([-128, 127, 3])),
    u8: tensor(new Uint8Array([0, 255, 17])),
    bool: tensor([[true, false], [false, true]]),
    scalar: tensor(new Float32Array([42.25]), { shape: [] }),
    empty: zeros([0, 3]),
  };
}

function bytesOf(t: Tensor): Buffer {
  const a = t.dtype === 'float16' ? null : t.toTypedArray();
  return a ? Buffer.from(a.buffer, a.byteOffset, a.byteLength) : Buffer.from(encodeSafetensors({ t }).subarray(-t.numel * 2));
}

test('every dtype round-trips bit for bit, with shapes and metadata', () => {
  tidy(() => {
    const src = everyDtype();
    const meta = { format: 'pt', note: 'topiary test, ünïcödé', step: '12' };
    const path = join(dir, 'all.safetensors');
    saveSafetensors(path, src, meta);
    const { tensors, metadata } = loadSafetensors(path);
    assert.deepEqual(metadata, meta);
    assert.deepEqual(Object.keys(tensors).sort(), Object.keys(src).sort());
    for (const [name, t] of Object.entries(src)) {
      const u = tensors[name];
      assert.equal(u.dtype, t.dtype, `${name} dtype`);
      assert.deepEqual(u.shape, t.shape, `${name} shape`);
      assert.ok(bytesOf(u).equals(bytesOf(t)), `${name} bytes`);
    }
    assert.deepEqual(tensors.i64.toTypedArray(), new BigInt64Array([9007199254740993n, -9223372036854775808n, 9223372036854775807n, 0n]));
    assert.ok(Object.is(tensors.f32.dataSync()[1], -0));
    assert.ok(Number.isNaN(tensors.f64.dataSync()[2]));
    assert.deepEqual(tensors.f16.to('float32').dataSync(), [0.5, -65504, 6.103515625e-5, 0.333251953125]);
    assert.deepEqual(tensors.bool.toArray(), [[1, 0], [0, 1]]);
    assert.equal(tensors.scalar.item(), 42.25);
    assert.deepEqual(tensors.empty.shape, [0, 3]);
    dispose(tensors);
  });
});

test('the bytes follow the format: LE length, padded JSON header, aligned data in sorted order', () => {
  tidy(() => {
    const buf = encodeSafetensors({ y: tensor(new Int16Array([1, -2])), x: tensor([1.5, -2]) }, { a: 'b' });
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0, 'data starts 8-byte aligned');
    const json = buf.subarray(8, 8 + n).toString('utf8');
    assert.equal(json.trimEnd(), '{"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"I16","shape":[2],"data_offsets":[8,12]}}');
    const data = buf.subarray(8 + n);
    assert.equal(data.length, 12);
    assert.equal(data.readFloatLE(0), 1.5);
    assert.equal(data.readFloatLE(4), -2);
    assert.equal(data.readInt16LE(8), 1);
    assert.equal(data.readInt16LE(10), -2);
  });
});

test('a file written by another writer (hand-built, unpadded, unsorted) decodes', () => {
  const header = '{"b":{"dtype":"I64","shape":[2],"data_offsets":[8,24]},"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}';
  const data = Buffer.alloc(24);
  data.writeDoubleLE(-0.125, 0);
  data.writeBigInt64LE(-5n, 8);
  data.writeBigInt64LE(1n << 40n, 16);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const file = Buffer.concat([len, Buffer.from(header), data]);
  // Decode from an unaligned view inside a larger buffer: the reader must copy, not alias.
  const outer = Buffer.concat([Buffer.alloc(3), file]);
  const view = outer.subarray(3);
  const { tensors, metadata } = decodeSafetensors(view);
  assert.deepEqual(metadata, {});
  assert.deepEqual(tensors.a.dataSync(), [-0.125]);
  assert.deepEqual(tensors.b.dataSync(), [-5, 2 ** 40]);
  outer.fill(0);
  assert.deepEqual(tensors.b.dataSync(), [-5, 2 ** 40], 'decoded tensors own their bytes');
  dispose(tensors);
});

test('non-contiguous tensors are saved in logical order', () => {
  tidy(() => {
    const t = tensor([[1, 2, 3], [4, 5, 6]]).T; // [3, 2], a strided view
    assert.equal(t.isContiguous(), false);
    const { tensors } = decodeSafetensors(encodeSafetensors({ t }));
    assert.deepEqual(tensors.t.toArray(), [[1, 4], [2, 5], [3, 6]]);
  });
});

test('saving is atomic: a new file replaces the old one by rename, and nothing temporary is left', () => {
  tidy(() => {
    const path = join(dir, 'atomic.safetensors');
    saveSafetensors(path, { w: tensor([1, 2, 3]) });
    const first = statSync(path).ino;
    // A hard link keeps the old inode: an in-place rewrite would change what it sees, a rename does not.
    const old = join(dir, 'old-link.safetensors');
    linkSync(path, old);
    saveSafetensors(path, { w: tensor([7, 8, 9, 10]) });
    assert.notEqual(statSync(path).ino, first, 'the path now names a new file');
    assert.deepEqual(loadSafetensors(path).tensors.w.dataSync(), [7, 8, 9, 10]);
    assert.deepEqual(loadSafetensors(old).tensors.w.dataSync(), [1, 2, 3], 'the old file was never written into');
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp')), []);
  });
});

test('a failed save leaves the previous file intact and no temporary file', () => {
  tidy(() => {
    const path = join(dir, 'keep.safetensors');
    saveSafetensors(path, { w: tensor([1, 2]) });
    const before = readFileSync(path);
    const gone = tensor([5]);
    gone.dispose();
    assert.throws(() => saveSafetensors(path, { a: tensor([3]), b: gone }), DisposedTensorError);
    assert.ok(readFileSync(path).equals(before));
    // The target is a directory: the rename fails, the temporary file is removed, the error is typed.
    const target = join(dir, 'a-directory');
    mkdirSync(target);
    writeFileSync(join(target, 'x'), 'x');
    assert.throws(() => saveSafetensors(target, { w: tensor([1]) }), (e: unknown) => e instanceof SerializationError && /a-directory/.test(e.message));
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp')), []);
  });
});

test('no test here leaked a tensor', () => {
  rmSync(dir, { recursive: true, force: true });
  assert.equal(memory().tensors, startTensors);
});
