/**
 * IDX reader (MNIST, Fashion-MNIST): http://yann.lecun.com/exdb/mnist/ , "FILE FORMATS".
 *
 * Header: two zero bytes, a type byte (0x08 = uint8), the number of dimensions, then each
 * dimension as a big-endian uint32; the data follows. Only uint8 is supported because every
 * dataset topiary reads uses it; other types are rejected rather than misread.
 */
import { constants as zc, gunzipSync } from 'node:zlib';
import { DatasetError } from '../core/errors.js';
import { readRegularFile } from '../core/safe-fs.js';

export interface IdxArray {
  /** Row-major values; owns its buffer exactly (byteOffset 0, no header, no neighbours). */
  data: Uint8Array;
  shape: number[];
}

/** What the caller expects the file to hold; checks the magic number and dimension count. */
export type IdxKind = 'images' | 'labels';

const UINT8 = 0x08;
const expectedDims: Record<IdxKind, number> = { images: 3, labels: 1 };

/** The most data an IDX header may declare: 1 GiB (MNIST's training images are 47 MB). */
export const MAX_IDX_BYTES = 2 ** 30;
/** Deflate's best ratio is 1032:1; a gzip file that would have to beat it is lying about its size. */
const DEFLATE_MAX_RATIO = 1032;
/** The most a gzip file read by maybeGunzip may inflate to (CIFAR-100's tar is 182 MB). */
export const MAX_GUNZIP_BYTES = 2 ** 30;

const hex8 = (n: number): string => '0x' + n.toString(16).padStart(8, '0');
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** True when the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

const tooLarge = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError;

/**
 * Inflates gzip bytes, stopping as soon as the output passes `maxBytes` (zlib works chunk by chunk
 * and gives up there: a bomb never inflates whole). A bad stream or an oversized output is a
 * DatasetError naming the file.
 */
function gunzipBounded(bytes: Uint8Array, file: string, maxBytes: number, what: string): Buffer {
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (err) {
    if (tooLarge(err)) throw new DatasetError(`${file}: inflates past ${what}; refusing it (a gzip bomb or a corrupt file)`, file, { cause: err });
    const why = err instanceof Error ? err.message : String(err);
    throw new DatasetError(`${file}: corrupt gzip stream (${why})`, file, { cause: err });
  }
}

/** Gunzips when the bytes are gzip (at most `maxBytes` out), else returns them unchanged; a bad stream is a DatasetError. */
export function maybeGunzip(bytes: Uint8Array, file: string, maxBytes = MAX_GUNZIP_BYTES): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  return gunzipBounded(bytes, file, maxBytes, `the ${mb(maxBytes)} accepted`);
}

/**
 * The first bytes a gzip stream inflates to, enough for an IDX header (4 + 4 * ndims bytes), from
 * a growing prefix of the compressed bytes: a prefix of n bytes inflates to at most 1032 n, so the
 * header is read without inflating the file.
 */
function gzipHead(raw: Uint8Array, file: string): Uint8Array {
  for (const n of [4096, 65536, 1 << 20, raw.length]) {
    const cut = Math.min(n, raw.length);
    let out: Buffer;
    try {
      out = gunzipSync(raw.subarray(0, cut), { finishFlush: zc.Z_SYNC_FLUSH, maxOutputLength: 64 << 20 });
    } catch (err) {
      if (tooLarge(err)) throw new DatasetError(`${file}: inflates past 64 MB before its IDX header ends; refusing it (a gzip bomb or a corrupt file)`, file, { cause: err });
      const why = err instanceof Error ? err.message : String(err);
      throw new DatasetError(`${file}: corrupt gzip stream (${why})`, file, { cause: err });
    }
    if ((out.length >= 4 && out.length >= 4 + 4 * out[3]) || cut === raw.length) return out;
  }
  return new Uint8Array(0);
}

interface Header { shape: number[]; count: number; headerBytes: number }

function parseHeader(bytes: Uint8Array, file: string, kind: IdxKind | undefined): Header {
  const fail = (what: string): never => {
    throw new DatasetError(`${file}: ${what}`, file);
  };
  if (bytes.length < 4) fail(`truncated: ${bytes.length} bytes, too short for an IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const ndims = bytes[3];
  if (kind !== undefined) {
    const want = (UINT8 << 8) | expectedDims[kind];
    if (magic !== want) fail(`bad magic number ${hex8(magic)} (expected ${hex8(want)} for IDX ${kind})`);
  } else {
    if (bytes[0] !== 0 || bytes[1] !== 0) fail(`bad magic number ${hex8(magic)} (an IDX file starts with two zero bytes)`);
    if (bytes[2] !== UINT8) fail(`unsupported IDX data type 0x${bytes[2].toString(16).padStart(2, '0')} (only 0x08 = uint8 is read)`);
    if (ndims === 0) fail('bad magic number: zero dimensions');
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    fail(`truncated: header needs ${headerBytes} bytes for ${ndims} dimensions, found ${bytes.length}`);
  }
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i);
    shape.push(d);
    count *= d;
  }
  // Products beyond 2^53 lose precision; any real file is far smaller, so this only catches garbage.
  if (!Number.isSafeInteger(count)) fail(`bad dimensions [${shape.join(', ')}]`);
  if (count > MAX_IDX_BYTES) fail(`header declares shape [${shape.join(', ')}], ${mb(count)} of data, more than the ${mb(MAX_IDX_BYTES)} an IDX file may hold here`);
  return { shape, count, headerBytes };
}

/**
 * Parses IDX bytes (gzip or not). `file` only names the source in errors.
 * With `kind`, the magic number must be 0x00000803 (images) or 0x00000801 (labels).
 * Gzip is inflated only up to the size the header declares: a longer stream is refused there.
 */
export function parseIdx(raw: Uint8Array, file: string, kind?: IdxKind): IdxArray {
  let bytes = raw;
  if (isGzip(raw)) {
    const { shape, count, headerBytes } = parseHeader(gzipHead(raw, file), file, kind);
    const total = headerBytes + count;
    if (total > DEFLATE_MAX_RATIO * raw.length + 1024) {
      throw new DatasetError(`${file}: header declares shape [${shape.join(', ')}] (${mb(total)}), more than ${raw.length} bytes of gzip can hold; refusing it`, file);
    }
    bytes = gunzipBounded(raw, file, total, `the ${total} bytes its IDX header declares (shape [${shape.join(', ')}])`);
  }
  const { shape, count, headerBytes } = parseHeader(bytes, file, kind);
  const found = bytes.length - headerBytes;
  if (found < count) throw new DatasetError(`${file}: truncated: expected ${count} bytes of data for shape [${shape.join(', ')}], found ${found}`, file);
  if (found > count) throw new DatasetError(`${file}: expected ${count} bytes of data for shape [${shape.join(', ')}], found ${found} (trailing bytes)`, file);
  // A copy, so `data.buffer` holds exactly the values: a later `new Tensor(data.buffer)` that
  // ignores byteOffset cannot pick up the header, and the decompressed buffer can be freed.
  const data = new Uint8Array(count);
  data.set(bytes.subarray(headerBytes));
  return { data, shape };
}

/** Reads and parses an IDX file (gzip or not); a missing file is a DatasetError naming the file. */
export function readIdx(file: string, kind?: IdxKind): IdxArray {
  return parseIdx(readBytes(file, MAX_IDX_BYTES + 1024), file, kind);
}

/**
 * Reads a dataset file: a regular file of at most `maxBytes` (a FIFO or a device is refused before
 * any read); "no such file" and friends become a DatasetError naming the file.
 */
export function readBytes(file: string, maxBytes = 2 ** 31 - 1): Uint8Array {
  const why = (m: string) => m === `${file}: cannot read (ENOENT)` ? 'file not found' : m.slice(file.length + 2);
  return readRegularFile(file, { maxBytes, error: (m, cause) => new DatasetError(`${file}: ${why(m)}`, file, cause === undefined ? undefined : { cause }) });
}
