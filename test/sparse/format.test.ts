/**
 * The compressed safetensors format: bit-identical round trips (every dtype, -0 and NaN payloads,
 * all three encodings), the size of a 98% sparse LeNet-300-100, plain safetensors compatibility,
 * and hostile files refused with one error naming the file and the tensor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { SerializationError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/registry.js';
import {
  decodeSparseSafetensors, encodeSparseSafetensors, gzipSize, loadSparseSafetensors, saveSparseSafetensors,
} from '../../src/nn/sparse/index.js';
import { Tensor, encodeSafetensors, memory, noGrad, rand, saveSafetensors, tensor, tidy, zeros } from '../../src/tensor/index.js';
import { elementSize } from '../../src/core/dtype.js';

const dir = mkdtempSync(join(tmpdir(), 'topiary-sparse-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** The raw bytes of a tensor (the dense safetensors writer puts them last; float16 included). */
const rawBuffer = (t: Tensor): Buffer => Buffer.from(encodeSafetensors({ t }).subarray(encodeSafetensors({ t }).length - t.numel * elementSize(t.dtype)));

/** Sparse tensors of every dtype with edge values kept (-0, NaN with a payload, subnormals, int64 extremes). */
function sparseSet(): Record<string, Tensor> {
  return tidy(() => sparseSetInner());
}
function sparseSetInner(): Record<string, Tensor> {
  const f32 = new Float32Array(64 * 50);
  f32[3] = -0; f32[70] = 1.5; f32[71] = 1e-40; f32[3199] = -2.75;
  new Uint32Array(f32.buffer)[500] = 0x7fc01234; // NaN with a payload
  new Uint32Array(f32.buffer)[501] = 0x80000000; // -0.0
  const f64 = new Float64Array(40 * 40);
  f64[0] = Math.PI; f64[1599] = 5e-324; f64[800] = -0;
  const i64 = new BigInt64Array(300);
  i64[7] = -9223372036854775808n; i64[299] = 9223372036854775807n;
  const dense = rand([4, 5]);
  const u8 = new Uint8Array(1000);
  for (let i = 0; i < 1000; i += 3) u8[i] = (i % 251) + 1; // 33% dense: bitmask wins
  return {
    'layers.1.weight': tensor(f32, { shape: [64, 50] }),
    'conv.weight': tensor(f64, { shape: [10, 4, 5, 8] }),
    'f16.weight': tensor(new Float32Array(500).map((_, i) => (i % 97 === 0 ? i / 7 : 0)), { shape: [500] }).to('float16'),
    'counts': tensor(i64),
    'bytes': tensor(u8, { shape: [10, 100] }),
    'mask': tensor(new Uint8Array(4096).map((_, i) => (i % 50 === 0 ? 1 : 0)), { shape: [64, 64] }).to('bool'),
    'bias': dense,
    'scalar': tensor(new Float32Array([0]), { shape: [] }),
    'empty': zeros([0, 7]),
    'allzero': zeros([30, 30]),
  };
}

/** The bytes with every float -0.0 turned into +0.0 (what the default encoding promises). */
function canonicalZeros(t: Tensor): Buffer {
  const b = Buffer.from(rawBuffer(t));
  const esize = elementSize(t.dtype);
  if (t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16') {
    for (let o = 0; o < b.length; o += esize) {
      const hi = o + esize - 1; // little-endian: the sign is the top bit of the last byte
      let rest = b[hi] & 0x7f;
      for (let k = o; k < hi; k++) rest |= b[k];
      if (rest === 0) b[hi] = 0;
    }
  }
  return b;
}

test('every dtype round-trips through all three encodings: bit-identical, -0.0 as +0.0 unless exactZeros', () => {
  const before = memory().tensors;
  const ts = sparseSet();
  for (const exactZeros of [false, true]) {
    const buf = encodeSparseSafetensors(ts, { note: 'hello' }, { exactZeros });
    const d = decodeSparseSafetensors(buf, 'x.safetensors');
    assert.deepEqual(Object.keys(d.tensors).sort(), Object.keys(ts).sort());
    assert.deepEqual(d.metadata, { note: 'hello' });
    assert.equal(d.encodings['layers.1.weight'], 'csr');
    assert.equal(d.encodings['conv.weight'], 'csr');
    assert.equal(d.encodings['bytes'], 'bitmask');
    assert.equal(d.encodings['mask'], 'csr');
    assert.equal(d.encodings['bias'], 'dense');
    assert.equal(d.encodings['allzero'], 'bitmask');
    for (const [k, t] of Object.entries(ts)) {
      const got = d.tensors[k];
      assert.equal(got.dtype, t.dtype, k);
      assert.deepEqual(got.shape, t.shape, k);
      const want = exactZeros ? rawBuffer(t) : canonicalZeros(t);
      assert.ok(rawBuffer(got).equals(want), `${k} is not bit-identical (exactZeros ${exactZeros})`);
    }
    // A stored NaN payload keeps its bits; -0.0 keeps its sign only with exactZeros.
    const w = new Uint32Array(new Uint8Array(rawBuffer(d.tensors['layers.1.weight'])).buffer);
    assert.equal(w[500], 0x7fc01234);
    assert.equal(w[501], exactZeros ? 0x80000000 : 0);
    for (const t of Object.values(d.tensors)) t.dispose();
  }
  for (const t of Object.values(ts)) t.dispose();
  assert.ok(memory().tensors <= before); // <=: a collection may free earlier garbage meanwhile
});

test('a plain safetensors file reads as all-dense, and the sparse file opens in the plain reader', () => {
  const a = { w: rand([3, 4]) };
  const p = join(dir, 'plain.safetensors');
  saveSafetensors(p, a);
  const d = loadSparseSafetensors(p);
  assert.ok(rawBuffer(d.tensors.w).equals(rawBuffer(a.w)));
  assert.deepEqual(d.encodings, { w: 'dense' });
  // The sparse file's parts are ordinary safetensors entries (U16/U32 index dtypes included).
  const sp = encodeSparseSafetensors({ w: tensor(new Float32Array(1000).map((_, i) => (i === 5 ? 2 : 0)), { shape: [10, 100] }) });
  const hlen = Number(sp.readBigUInt64LE(0));
  const header = JSON.parse(sp.subarray(8, 8 + hlen).toString());
  assert.deepEqual(header['w:indices'], { dtype: 'U16', shape: [1], data_offsets: [0, 2] });
  assert.deepEqual(header['w:values'], { dtype: 'F32', shape: [1], data_offsets: [46, 50] });
  assert.deepEqual(header['w:indptr'].shape, [11]);
  assert.deepEqual(JSON.parse(header.__metadata__['topiary.sparse']), { version: 1, tensors: { w: { encoding: 'csr', dtype: 'F32', shape: [10, 100] } } });
  for (const t of [a.w, d.tensors.w]) t.dispose();
});

test('a 98% sparse LeNet-300-100 file is at most 1/20 of the dense file, and loads back bit-identical', () => {
  manualSeed(0);
  const model = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 });
  tidy(() => noGrad(() => {
    for (const [name, p] of model.namedParameters()) {
      if (!name.endsWith('weight')) continue;
      // Magnitude pruning per layer to 98%: keep the 2% largest |w|.
      const k = Math.max(1, Math.round(p.numel * 0.02));
      const thr = p.abs().flatten().topk(k).values.narrow(0, k - 1, 1).item();
      p.mul_(p.abs().ge(thr));
    }
  }));
  const sd = model.stateDict();
  const dense = join(dir, 'lenet.safetensors');
  const sparse = join(dir, 'lenet.sparse.safetensors');
  saveSafetensors(dense, sd);
  const written = saveSparseSafetensors(sparse, sd);
  const ds = statSync(dense).size, ss = statSync(sparse).size;
  assert.equal(written, ss);
  assert.ok(ss * 20 <= ds, `sparse file ${ss} bytes, dense ${ds}: ratio ${(ds / ss).toFixed(1)} < 20`);
  const back = loadSparseSafetensors(sparse);
  // Masking made every pruned negative weight -0.0: those come back +0.0, all else bit for bit.
  for (const [k, t] of Object.entries(sd)) assert.ok(rawBuffer(back.tensors[k]).equals(canonicalZeros(t)), k);
  for (const [k, t] of Object.entries(sd)) assert.ok(back.tensors[k].equal(t), k);
  // gzipSize is zlib's gzip of the file's bytes.
  assert.equal(gzipSize(dense), gzipSync(readFileSync(dense), { level: 9 }).length);
  assert.ok(gzipSize(dense) < ds);
  for (const t of Object.values(back.tensors)) t.dispose();
  model.dispose();
});

// ---- hostile and corrupt files ---------------------------------------------------------------
function header(buf: Buffer): Record<string, any> {
  return JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString());
}
function withHeader(buf: Buffer, h: Record<string, unknown>, data?: Buffer): Buffer {
  const old = Number(buf.readBigUInt64LE(0));
  const json = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data ?? buf.subarray(8 + old)]);
}
const sample = () => {
  const w = tensor(new Float32Array(4000).map((_, i) => (i % 800 === 3 ? i : 0)), { shape: [10, 400] });
  const m = tensor(new Uint8Array(1000).map((_, i) => (i % 4 === 0 ? 7 : 0)), { shape: [1000] });
  const buf = encodeSparseSafetensors({ w, m });
  w.dispose(); m.dispose();
  return buf;
};
const meta = (h: Record<string, any>) => JSON.parse(h.__metadata__['topiary.sparse']);
const setMeta = (h: Record<string, any>, m: unknown) => ({ ...h, __metadata__: { 'topiary.sparse': JSON.stringify(m) } });

function refuses(buf: Buffer, pattern: RegExp) {
  const before = memory().tensors;
  assert.throws(() => decodeSparseSafetensors(buf, 'bad.safetensors'), (e: unknown) => {
    assert.ok(e instanceof SerializationError, String(e));
    assert.match((e as Error).message, /^bad\.safetensors: /);
    assert.match((e as Error).message, pattern);
    return true;
  });
  assert.ok(memory().tensors <= before, 'nothing is left allocated'); // <=: a collection may free earlier garbage meanwhile
}

test('hostile files: every offset, count, index and bit is checked, and the error names file and tensor', () => {
  const good = sample();
  const h = header(good);
  assert.equal(meta(h).tensors.w.encoding, 'csr');
  assert.equal(meta(h).tensors.m.encoding, 'bitmask');
  const data = good.subarray(8 + Number(good.readBigUInt64LE(0)));
  const [pb] = h['w:indptr'].data_offsets;
  const [ib] = h['w:indices'].data_offsets;
  const [mb] = h['m:bitmask'].data_offsets;
  const patch = (at: number, bytes: number[]) => { const d = Buffer.from(data); bytes.forEach((b, i) => { d[at + i] = b; }); return withHeader(good, h, d); };

  refuses(good.subarray(0, 5), /truncated/);
  refuses(good.subarray(0, good.length - 3), /tensor '.*'.*(truncated|data section)|bytes after/);
  refuses(withHeader(good, { ...h, 'w:values': { ...h['w:values'], data_offsets: [0, 9999] } }), /tensor 'w:values'/);
  refuses(withHeader(good, { ...h, 'w:indices': { ...h['w:indices'], dtype: 'X9' } }), /tensor 'w:indices': unknown dtype/);
  refuses(withHeader(good, { ...h, 'w:indptr': { ...h['w:indptr'], shape: [10] } }), /tensor 'w:indptr'/);
  refuses(Buffer.concat([good, Buffer.alloc(8)]), /bytes after the last tensor/);
  // A column index past the row, an index out of order, an indptr that decreases or overruns.
  refuses(patch(ib, [0xff, 0xff]), /tensor 'w': column index 65535 at row 0 is out of range \(400 columns\)/);
  refuses(patch(pb + 4 * 10, [0x01, 0, 0, 0]), /tensor 'w': indptr ends at 1, but there are 5 values/);
  refuses(patch(pb + 4 * 3, [0x09, 0, 0, 0]), /tensor 'w': indptr is not non-decreasing/);
  refuses(patch(pb, [0x01, 0, 0, 0]), /tensor 'w': indptr starts at 1/);
  // Duplicate column in a row: row 1 holds column 3 only; make indptr give row 0 two entries with equal columns.
  const dup = Buffer.from(data); // every stored value sits in column 3 of an even row
  dup.writeUInt32LE(2, pb + 4); // row 0 now holds values 0 and 1, both in column 3
  refuses(withHeader(good, h, dup), /tensor 'w': column indices of row 0 are not strictly increasing \(3 then 3\)/);
  // Bitmask: a bit too many, a bit past the end.
  refuses(patch(mb, [0x13]), /tensor 'm': the bitmask marks 251 elements, but there are 250 values/);
  // Table entries: a missing part, a wrong dtype, an unknown encoding or version, a claimed bomb.
  const { 'w:indptr': ptrEntry, ...noPtr } = h;
  refuses(withHeader(good, { ...noPtr, other: ptrEntry }), /tensor 'w': the entry 'w:indptr' is missing/);
  refuses(withHeader(good, setMeta(h, { version: 1, tensors: { ...meta(h).tensors, w: { ...meta(h).tensors.w, dtype: 'F64' } } })), /tensor 'w': 'w:values' has dtype F32, expected F64/);
  refuses(withHeader(good, setMeta(h, { version: 1, tensors: { ...meta(h).tensors, w: { ...meta(h).tensors.w, encoding: 'coo' } } })), /tensor 'w': unknown encoding "coo"/);
  refuses(withHeader(good, setMeta(h, { version: 2, tensors: {} })), /unknown version 2/);
  refuses(withHeader(good, { ...h, __metadata__: { 'topiary.sparse': '{not json' } }), /is not JSON/);
  refuses(withHeader(good, setMeta(h, { version: 1, tensors: { ...meta(h).tensors, m: { encoding: 'bitmask', dtype: 'U8', shape: [1e6, 1e6] } } })), /tensor 'm': decodes past the limit/);
  refuses(withHeader(good, setMeta(h, { version: 1, tensors: { ...meta(h).tensors, w: { ...meta(h).tensors.w, shape: [10, -20] } } })), /tensor 'w': bad shape/);
  refuses(withHeader(good, setMeta(h, { version: 1, tensors: { ...meta(h).tensors, w: { ...meta(h).tensors.w, shape: [5, 20] } } })), /tensor 'w'/);
  // A stray part of a compressed tensor, and an index dtype used as a tensor.
  refuses(withHeader(good, { ...h, 'w:bitmask': { dtype: 'U8', shape: [0], data_offsets: [data.length, data.length] } }), /unexpected entry 'w:bitmask'/);
  refuses(withHeader(good, setMeta(h, { version: 1, tensors: { m: meta(h).tensors.m } })), /tensor 'w:indices' has dtype U16, which only index entries may use/);
  // Overlapping spans.
  refuses(withHeader(good, { ...h, 'w:values': { ...h['w:values'], data_offsets: [h['w:indices'].data_offsets[0], h['w:indices'].data_offsets[0] + 20] } }), /overlaps|hole/);
  // The lazy limit: a small maxBytes refuses a good file.
  assert.throws(() => decodeSparseSafetensors(good, 'ok.safetensors', { maxBytes: 100 }), /ok\.safetensors: .*tensor '.*': decodes past the limit of 100 bytes/);
});

test('save is atomic and load names a missing file', () => {
  const p = join(dir, 'atomic.safetensors');
  writeFileSync(p, 'old');
  const w = tensor([[1, 0], [0, 0]]);
  assert.throws(() => saveSparseSafetensors(p, { 'w:values': tensor([1, 2]), w }), /used twice/);
  assert.equal(readFileSync(p, 'utf8'), 'old', 'a refused save leaves the old file');
  saveSparseSafetensors(p, { w });
  assert.ok(!existsSync(`${p}.tmp-${process.pid}`));
  assert.throws(() => loadSparseSafetensors(join(dir, 'nope.safetensors')), /nope\.safetensors: cannot read \(ENOENT\)/);
  assert.throws(() => gzipSize(join(dir, 'nope.safetensors')), /nope\.safetensors: cannot read \(ENOENT\)/);
  w.dispose();
});
