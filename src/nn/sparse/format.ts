/**
 * Compressed state dicts for pruned models, inside a plain safetensors file: each tensor is stored
 * as whichever of three encodings is smallest, decided per tensor.
 *   dense:   the tensor itself, as in any safetensors file (biases, BatchNorm buffers, dense layers).
 *   csr:     `name:values` [nnz] in the tensor's dtype, `name:indices` [nnz] (U16 when a row has at
 *            most 65,536 columns, else U32) and `name:indptr` [rows + 1] (U32); rows = shape[0].
 *   bitmask: `name:values` [nnz] and `name:bitmask` [ceil(numel / 8)] (U8, little-endian bit order).
 * The encodings and the original shapes and dtypes are listed in `__metadata__["topiary.sparse"]`.
 * Every stored element loads back bit-identical (NaN payloads and subnormals included). Zeros are
 * not stored, and a float -0.0 is a zero: pruning by multiplying with a mask turns every pruned
 * negative weight into -0.0, so keeping their signs would cost one bit per pruned weight (a 98%
 * sparse LeNet-300-100 would shrink 1.8x instead of 36x). They load back as +0.0, which compares
 * equal; `exactZeros: true` stores them too, for a file that is bit-identical in every element.
 * Any safetensors reader opens the file; only this one reassembles it.
 * Decoding trusts nothing: every offset, count, index and bit is checked, and a file that would
 * decode to more than `maxBytes` is refused before anything is allocated.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { call } from '../../core/binding.js';
import { type DType, dtypeCode, elementSize } from '../../core/dtype.js';
import { SerializationError } from '../../core/errors.js';
import { Tensor } from '../../tensor/tensor.js';

const ST_OF: Record<DType, string> = {
  float32: 'F32', float64: 'F64', float16: 'F16', int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};
const DTYPE_OF: Record<string, DType> = Object.fromEntries(Object.entries(ST_OF).map(([k, v]) => [v, k as DType]));
/** Element sizes of every dtype this reader accepts in the file (index parts use U16 and U32). */
const ST_SIZE: Record<string, number> = { F32: 4, F64: 8, F16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4 };
const META_KEY = 'topiary.sparse';
const MAX_HEADER = 100 * 1024 * 1024;
/** Default ceiling on the decoded size of one file (a tiny file may claim an enormous all-zero tensor). */
export const DEFAULT_MAX_BYTES = 8 * 1024 ** 3;

export type Encoding = 'dense' | 'csr' | 'bitmask';
interface SparseInfo { encoding: 'csr' | 'bitmask'; dtype: string; shape: number[] }
interface Part { dtype: string; shape: number[]; bytes: Uint8Array }

/** The raw bytes of one element-size as unsigned words: bit-exact (a Float32Array read may alter NaNs). */
function words(bytes: Uint8Array, esize: number): Uint8Array | Uint16Array | Uint32Array {
  // new Uint8Array(x) copies (Buffer's slice() would not), to an offset of 0.
  const copy = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  if (esize === 1) return copy;
  if (esize === 2) return new Uint16Array(copy.buffer, copy.byteOffset, copy.byteLength / 2);
  return new Uint32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4); // 8-byte elements: word pairs
}

export interface SparseEncodeOptions {
  /** Store float -0.0 elements too, so that every element comes back bit-identical (default false). */
  exactZeros?: boolean;
}

function encodeOne(name: string, t: Tensor, exactZeros: boolean): { encoding: Encoding; parts: [string, Part][] } {
  const st = ST_OF[t.dtype];
  if (!st) throw new SerializationError(`sparse safetensors: tensor '${name}' has unsupported dtype ${t.dtype}`);
  const shape = t.shape;
  const bytes = new Uint8Array(call('toBuffer', t.h) as ArrayBuffer);
  const esize = elementSize(t.dtype);
  const n = bytes.length / esize;
  const dense: [string, Part][] = [[name, { dtype: st, shape, bytes }]];
  const rows = shape.length >= 2 ? shape[0] : 1;
  if (n === 0 || n > 0xffffffff) return { encoding: 'dense', parts: dense };
  const cols = n / rows;
  const w = words(bytes, esize);
  const per = esize === 8 ? 2 : 1; // words per element
  // Bits to ignore when testing for zero: the sign bit of floats (the high word's for float64).
  const sign = exactZeros ? 0 : t.dtype === 'float32' || t.dtype === 'float64' ? 0x80000000 : t.dtype === 'float16' ? 0x8000 : 0;
  const body = ~sign >>> 0;
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    if (per === 1 ? (w[i] & body) !== 0 : w[2 * i] !== 0 || (w[2 * i + 1] & body) !== 0) keep.push(i);
  }
  const nnz = keep.length;
  const idxSize = cols <= 65536 ? 2 : 4;
  const csrBytes = nnz * esize + nnz * idxSize + (rows + 1) * 4;
  const maskBytes = nnz * esize + Math.ceil(n / 8);
  if (n * esize <= Math.min(csrBytes, maskBytes)) return { encoding: 'dense', parts: dense };
  const values = new Uint8Array(nnz * esize);
  keep.forEach((i, k) => values.set(bytes.subarray(i * esize, (i + 1) * esize), k * esize));
  const valuesPart: [string, Part] = [`${name}:values`, { dtype: st, shape: [nnz], bytes: values }];
  if (csrBytes <= maskBytes) {
    const indices = idxSize === 2 ? new Uint16Array(nnz) : new Uint32Array(nnz);
    const indptr = new Uint32Array(rows + 1);
    keep.forEach((i, k) => {
      indices[k] = i % cols;
      indptr[Math.floor(i / cols) + 1]++;
    });
    for (let r = 0; r < rows; r++) indptr[r + 1] += indptr[r];
    return {
      encoding: 'csr',
      parts: [valuesPart,
        [`${name}:indices`, { dtype: idxSize === 2 ? 'U16' : 'U32', shape: [nnz], bytes: new Uint8Array(indices.buffer) }],
        [`${name}:indptr`, { dtype: 'U32', shape: [rows + 1], bytes: new Uint8Array(indptr.buffer) }]],
    };
  }
  const mask = new Uint8Array(Math.ceil(n / 8));
  for (const i of keep) mask[i >> 3] |= 1 << (i & 7);
  return { encoding: 'bitmask', parts: [valuesPart, [`${name}:bitmask`, { dtype: 'U8', shape: [mask.length], bytes: mask }]] };
}

/** Encode named tensors, each as the smallest of dense, csr and bitmask (see the file comment). */
export function encodeSparseSafetensors(tensors: Record<string, Tensor>, metadata: Record<string, string> = {}, opts: SparseEncodeOptions = {}): Buffer {
  if (META_KEY in metadata) throw new SerializationError(`sparse safetensors: metadata key '${META_KEY}' is reserved`);
  const table: Record<string, SparseInfo> = {};
  const parts = new Map<string, Part>();
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name];
    const enc = encodeOne(name, t, opts.exactZeros ?? false);
    if (enc.encoding !== 'dense') table[name] = { encoding: enc.encoding, dtype: ST_OF[t.dtype], shape: t.shape };
    for (const [k, p] of enc.parts) {
      if (parts.has(k)) throw new SerializationError(`sparse safetensors: the entry name '${k}' is used twice (a tensor name ends in ':values', ':indices', ':indptr' or ':bitmask')`);
      parts.set(k, p);
    }
  }
  const header: Record<string, unknown> = {};
  const meta = { ...metadata };
  if (Object.keys(table).length) meta[META_KEY] = JSON.stringify({ version: 1, tensors: table });
  if (Object.keys(meta).length) header.__metadata__ = meta;
  let offset = 0;
  const names = [...parts.keys()].sort();
  for (const k of names) {
    const p = parts.get(k)!;
    header[k] = { dtype: p.dtype, shape: p.shape, data_offsets: [offset, offset + p.bytes.length] };
    offset += p.bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const hbuf = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hbuf.length));
  return Buffer.concat([len, hbuf, ...names.map((k) => parts.get(k)!.bytes)]);
}

export interface SparseDecoded {
  tensors: Record<string, Tensor>;
  /** The user's metadata (without the sparse table). */
  metadata: Record<string, string>;
  /** How each tensor was stored. */
  encodings: Record<string, Encoding>;
}
export interface SparseDecodeOptions { /** Refuse files that decode to more bytes than this (default 8 GiB). */ maxBytes?: number }

/** Decode a file written by encodeSparseSafetensors (or any plain safetensors file). */
export function decodeSparseSafetensors(buf: Uint8Array, source = '<buffer>', opts: SparseDecodeOptions = {}): SparseDecoded {
  const fail = (why: string): never => { throw new SerializationError(`${source}: not a valid sparse safetensors file: ${why}`); };
  const { parts, metadata } = parseContainer(buf, fail);
  let table: Record<string, SparseInfo> = {};
  const userMeta = { ...metadata };
  if (META_KEY in metadata) {
    delete userMeta[META_KEY];
    let parsed: unknown;
    try { parsed = JSON.parse(metadata[META_KEY]); } catch (e) { fail(`metadata '${META_KEY}' is not JSON (${(e as Error).message})`); }
    const p = parsed as { version?: unknown; tensors?: unknown };
    if (typeof p !== 'object' || p === null || p.version !== 1) fail(`metadata '${META_KEY}' has an unknown version ${JSON.stringify(p?.version)} (this reader knows 1)`);
    if (typeof p.tensors !== 'object' || p.tensors === null || Array.isArray(p.tensors)) fail(`metadata '${META_KEY}' has no tensor table`);
    table = p.tensors as Record<string, SparseInfo>;
  }
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const used = new Set<string>();
  const plan: [string, () => { dtype: DType; shape: number[]; bytes: Uint8Array }][] = [];
  let total = 0;
  for (const [name, info] of Object.entries(table)) {
    const bad = (why: string): never => fail(`tensor '${name}': ${why}`);
    if (typeof info !== 'object' || info === null) bad('its table entry is not an object');
    const dt = DTYPE_OF[info.dtype];
    if (!dt) bad(`unknown dtype ${JSON.stringify(info.dtype)}`);
    const shape = checkShape(info.shape, bad);
    if (parts.has(name)) bad('is stored both dense and compressed');
    const esize = elementSize(dt);
    const n = shape.reduce((a, c) => a * c, 1);
    total += n * esize;
    if (total > maxBytes) bad(`decodes past the limit of ${maxBytes} bytes (maxBytes)`);
    const part = (suffix: string, dtypes: string[], len: number | null): Part => {
      const k = `${name}:${suffix}`;
      const q = parts.get(k);
      if (!q) return bad(`the entry '${k}' is missing`);
      if (!dtypes.includes(q.dtype)) bad(`'${k}' has dtype ${q.dtype}, expected ${dtypes.join(' or ')}`);
      if (q.shape.length !== 1 || (len !== null && q.shape[0] !== len)) bad(`'${k}' has shape [${q.shape}], expected [${len ?? 'n'}]`);
      used.add(k);
      return q;
    };
    const values = part('values', [info.dtype], null);
    const nnz = values.shape[0];
    if (nnz > n) bad(`${nnz} stored values for ${n} elements`);
    if (info.encoding === 'csr') {
      const rows = shape.length >= 2 ? shape[0] : 1;
      const cols = rows === 0 ? 0 : n / rows;
      const indices = part('indices', ['U16', 'U32'], nnz);
      const indptr = part('indptr', ['U32'], rows + 1);
      plan.push([name, () => ({ dtype: dt, shape, bytes: fromCsr(values.bytes, indices, indptr.bytes, rows, cols, esize, bad) })]);
    } else if (info.encoding === 'bitmask') {
      const mask = part('bitmask', ['U8'], Math.ceil(n / 8));
      plan.push([name, () => ({ dtype: dt, shape, bytes: fromBitmask(values.bytes, mask.bytes, n, nnz, esize, bad) })]);
    } else {
      bad(`unknown encoding ${JSON.stringify(info.encoding)} (csr, bitmask)`);
    }
  }
  for (const [k, q] of parts) {
    if (used.has(k) || k in table) continue;
    if (/:(values|indices|indptr|bitmask)$/.test(k) && k.slice(0, k.lastIndexOf(':')) in table) fail(`unexpected entry '${k}'`);
    const dt = DTYPE_OF[q.dtype];
    if (!dt) fail(`tensor '${k}' has dtype ${q.dtype}, which only index entries may use`);
    total += q.bytes.length;
    if (total > maxBytes) fail(`tensor '${k}' decodes past the limit of ${maxBytes} bytes (maxBytes)`);
    plan.push([k, () => ({ dtype: dt, shape: q.shape, bytes: q.bytes })]);
  }
  const tensors: Record<string, Tensor> = {};
  const encodings: Record<string, Encoding> = {};
  try {
    for (const [name, make] of plan) {
      const { dtype, shape, bytes } = make();
      tensors[name] = new Tensor(call('fromBuffer', bytes, shape, dtypeCode(dtype), null));
      encodings[name] = table[name]?.encoding ?? 'dense';
    }
  } catch (e) {
    for (const t of Object.values(tensors)) t.dispose();
    throw e;
  }
  return { tensors, metadata: userMeta, encodings };
}

function checkShape(shape: unknown, bad: (why: string) => never): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`bad shape ${JSON.stringify(shape)}`);
  const s = shape as number[];
  if (s.reduce((a, c) => a * c, 1) > Number.MAX_SAFE_INTEGER / 8) bad(`shape [${s}] is implausibly large`);
  return s;
}

/** The safetensors layer: header, entries, offsets (contiguous, no holes, no overlaps, in bounds). */
function parseContainer(buf: Uint8Array, fail: (why: string) => never): { parts: Map<string, Part>; metadata: Record<string, string> } {
  if (buf.length < 8) fail(`only ${buf.length} bytes (truncated)`);
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER)) fail(`header length ${n} is implausible`);
  const hlen = Number(n);
  if (8 + hlen > buf.length) fail(`header of ${hlen} bytes runs past the end of the file (${buf.length} bytes; truncated?)`);
  let header: Record<string, unknown>;
  try { header = JSON.parse(view.subarray(8, 8 + hlen).toString('utf8')); } catch (e) { return fail(`header is not JSON (${(e as Error).message})`); }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata) || !Object.values(metadata).every((v) => typeof v === 'string')) {
    fail('__metadata__ is not an object of strings');
  }
  const dataStart = 8 + hlen;
  const dataLen = buf.length - dataStart;
  const spans: [number, number, string][] = [];
  const parts = new Map<string, Part>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const bad = (why: string): never => fail(`tensor '${name}': ${why}`);
    const { dtype, shape, data_offsets: off } = (info ?? {}) as { dtype?: string; shape?: unknown; data_offsets?: unknown };
    const esize = dtype !== undefined ? ST_SIZE[dtype] : undefined;
    if (esize === undefined) bad(`unknown dtype ${JSON.stringify(dtype)}`);
    const s = checkShape(shape, bad);
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[1] < off[0]) bad(`bad data_offsets ${JSON.stringify(off)}`);
    const [b, e] = off as [number, number];
    if (e > dataLen) bad(`ends at byte ${e} of a ${dataLen}-byte data section (truncated?)`);
    const need = s.reduce((a, c) => a * c, 1) * (esize as number);
    if (need !== e - b) bad(`shape [${s}] of ${dtype} needs ${need} bytes, data_offsets give ${e - b}`);
    spans.push([b, e, name]);
    parts.set(name, { dtype: dtype as string, shape: s, bytes: buf.subarray(dataStart + b, dataStart + e) });
  }
  spans.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  let at = 0;
  for (const [b, e, name] of spans) {
    if (b !== at) fail(b < at ? `tensor '${name}' overlaps the one before it (bytes ${b}-${e})` : `a hole of ${b - at} bytes before tensor '${name}'`);
    at = e;
  }
  if (at !== dataLen) fail(`${dataLen - at} bytes after the last tensor`);
  return { parts, metadata };
}

function fromCsr(values: Uint8Array, indicesPart: Part, indptrBytes: Uint8Array, rows: number, cols: number, esize: number, bad: (why: string) => never): Uint8Array {
  const ptr = words(indptrBytes, 4) as Uint32Array;
  const idx = words(indicesPart.bytes, indicesPart.dtype === 'U16' ? 2 : 4) as Uint16Array | Uint32Array;
  const nnz = idx.length;
  if (ptr[0] !== 0) bad(`indptr starts at ${ptr[0]}, not 0`);
  if (ptr[rows] !== nnz) bad(`indptr ends at ${ptr[rows]}, but there are ${nnz} values`);
  const out = new Uint8Array(rows * cols * esize);
  const per = esize === 8 ? 2 : 1;
  const src = words(values, esize);
  const dst = words(out, esize);
  for (let r = 0; r < rows; r++) {
    const a = ptr[r], e = ptr[r + 1];
    if (e < a || e > nnz) bad(`indptr is not non-decreasing within [0, ${nnz}] at row ${r} (${a} then ${e})`);
    let prev = -1;
    for (let p = a; p < e; p++) {
      const c = idx[p];
      if (c >= cols) bad(`column index ${c} at row ${r} is out of range (${cols} columns)`);
      if (c <= prev) bad(`column indices of row ${r} are not strictly increasing (${prev} then ${c})`);
      prev = c;
      const o = r * cols + c;
      if (per === 1) dst[o] = src[p];
      else { dst[2 * o] = src[2 * p]; dst[2 * o + 1] = src[2 * p + 1]; }
    }
  }
  return out;
}

function fromBitmask(values: Uint8Array, mask: Uint8Array, n: number, nnz: number, esize: number, bad: (why: string) => never): Uint8Array {
  let count = 0;
  for (let i = 0; i < mask.length; i++) for (let v = mask[i]; v; v &= v - 1) count++;
  if (count !== nnz) bad(`the bitmask marks ${count} elements, but there are ${nnz} values`);
  if (n % 8 && mask[mask.length - 1] >> (n % 8)) bad(`the bitmask marks elements past the end (${n} elements)`);
  const out = new Uint8Array(n * esize);
  const per = esize === 8 ? 2 : 1;
  const src = words(values, esize);
  const dst = words(out, esize);
  let p = 0;
  for (let i = 0; i < n; i++) {
    if (!(mask[i >> 3] & (1 << (i & 7)))) continue;
    if (per === 1) dst[i] = src[p];
    else { dst[2 * i] = src[2 * p]; dst[2 * i + 1] = src[2 * p + 1]; }
    p++;
  }
  return out;
}

/** Write atomically (temporary name, fsync, rename): a failed write never replaces a good file. */
export function saveSparseSafetensors(path: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}, opts: SparseEncodeOptions = {}): number {
  const data = encodeSparseSafetensors(tensors, metadata, opts);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* it may not exist */ }
    throw new SerializationError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  return data.length;
}

export function loadSparseSafetensors(path: string, opts: SparseDecodeOptions = {}): SparseDecoded {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new SerializationError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  return decodeSparseSafetensors(buf, path, opts);
}

/** The size in bytes of a file after gzip (node:zlib, level 9 by default), as TF-MOT reports it. */
export function gzipSize(path: string, level = 9): number {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new SerializationError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  return gzipSync(buf, { level }).length;
}
