/**
 * Named tensors in the safetensors format: an 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets}}, then raw little-endian bytes. Nothing executes on load, and
 * every offset is checked, so a truncated or malformed file gives a SerializationError naming it.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { call } from '../core/binding.js';
import { type DType, dtypeCode, elementSize } from '../core/dtype.js';
import { SerializationError } from '../core/errors.js';
import { LIMITS, readRegularFile } from '../core/safe-fs.js';
import { Tensor } from './tensor.js';

const TO_ST: Partial<Record<DType, string>> = {
  float32: 'F32', float64: 'F64', float16: 'F16', int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};
const FROM_ST: Record<string, DType> = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));
const MAX_HEADER = 100 * 1024 * 1024;

export function encodeSafetensors(tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Buffer {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const st = TO_ST[t.dtype];
    if (!st) throw new SerializationError(`safetensors: tensor '${name}' has unsupported dtype ${t.dtype}`);
    const bytes = Buffer.from(call('toBuffer', t.h) as ArrayBuffer);
    header[name] = { dtype: st, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const hbuf = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hbuf.length));
  return Buffer.concat([len, hbuf, ...chunks]);
}

export interface Decoded { tensors: Record<string, Tensor>; metadata: Record<string, string> }

export function decodeSafetensors(buf: Uint8Array, source = '<buffer>'): Decoded {
  const fail = (why: string): never => { throw new SerializationError(`${source}: not a valid safetensors file: ${why}`); };
  if (buf.length < 8) fail(`only ${buf.length} bytes (truncated)`);
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER)) fail(`header length ${n} is implausible`);
  const hlen = Number(n);
  if (8 + hlen > buf.length) fail(`header of ${hlen} bytes runs past the end of the file (${buf.length} bytes; truncated?)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(view.subarray(8, 8 + hlen).toString('utf8'));
  } catch (e) {
    return fail(`header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + hlen;
  const dataLen = buf.length - dataStart;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const tensors: Record<string, Tensor> = {};
  try {
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const { dtype, shape, data_offsets: off } = (info ?? {}) as { dtype?: string; shape?: number[]; data_offsets?: number[] };
      const dt = dtype !== undefined ? FROM_ST[dtype] : undefined;
      if (!dt) fail(`tensor '${name}' has unknown dtype ${JSON.stringify(dtype)}`);
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor '${name}' has a bad shape ${JSON.stringify(shape)}`);
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[1] < off[0]) {
        fail(`tensor '${name}' has bad data_offsets ${JSON.stringify(off)}`);
      }
      const [b, e] = off as [number, number];
      if (e > dataLen) fail(`tensor '${name}' ends at byte ${e} of a ${dataLen}-byte data section (truncated?)`);
      const numel = (shape as number[]).reduce((a, c) => a * c, 1);
      if (numel * elementSize(dt as DType) !== e - b) fail(`tensor '${name}': shape [${shape}] of ${dt} needs ${numel * elementSize(dt as DType)} bytes, offsets give ${e - b}`);
      const bytes = new Uint8Array(buf.buffer, buf.byteOffset + dataStart + b, e - b);
      tensors[name] = new Tensor(call('fromBuffer', bytes, shape, dtypeCode(dt as DType), null));
    }
  } catch (e) {
    for (const t of Object.values(tensors)) t.dispose();
    throw e;
  }
  return { tensors, metadata };
}

/** Write atomically: a temporary name, fsync, then rename, so a crash never leaves half a file. */
export function saveSafetensors(path: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  const data = encodeSafetensors(tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      // writeSync may write less than asked; loop until every byte is out.
      for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    // Leave neither a half-written temporary file nor an untyped error behind.
    try { unlinkSync(tmp); } catch { /* it may not exist */ }
    throw new SerializationError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
}

/** The name of the first tensor holding a NaN or an infinity (float dtypes only), or undefined. */
export function firstNonFinite(tensors: Record<string, Tensor>): string | undefined {
  for (const [name, t] of Object.entries(tensors)) {
    if (!t.dtype.startsWith('float')) continue;
    const f = t.isfinite();
    const a = f.all();
    const ok = a.item() !== 0;
    a.dispose();
    f.dispose();
    if (!ok) return name;
  }
  return undefined;
}

/** Reads a safetensors file: a regular file (a FIFO or a device is refused unread) of at most `maxBytes` (8 GiB). */
export function loadSafetensors(path: string, maxBytes: number = LIMITS.safetensors): Decoded {
  return decodeSafetensors(readRegularFile(path, { maxBytes }), path);
}
