/**
 * IDX reader (MNIST, Fashion-MNIST): http://yann.lecun.com/exdb/mnist/ , "FILE FORMATS".
 *
 * Header: two zero bytes, a type byte (0x08 = uint8), the number of dimensions, then each
 * dimension as a big-endian uint32; the data follows. Only uint8 is supported because every
 * dataset topiary reads uses it; other types are rejected rather than misread.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DatasetError } from '../core/errors.js';

export interface IdxArray {
  /** Row-major values; owns its buffer exactly (byteOffset 0, no header, no neighbours). */
  data: Uint8Array;
  shape: number[];
}

/** What the caller expects the file to hold; checks the magic number and dimension count. */
export type IdxKind = 'images' | 'labels';

const UINT8 = 0x08;
const expectedDims: Record<IdxKind, number> = { images: 3, labels: 1 };

const hex8 = (n: number): string => '0x' + n.toString(16).padStart(8, '0');

/** True when the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Gunzips when the bytes are gzip, else returns them unchanged; a bad stream is a DatasetError. */
export function maybeGunzip(bytes: Uint8Array, file: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    return gunzipSync(bytes);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new DatasetError(`${file}: corrupt gzip stream (${why})`, file, { cause: err });
  }
}

/**
 * Parses IDX bytes (gzip or not). `file` only names the source in errors.
 * With `kind`, the magic number must be 0x00000803 (images) or 0x00000801 (labels).
 */
export function parseIdx(raw: Uint8Array, file: string, kind?: IdxKind): IdxArray {
  const bytes = maybeGunzip(raw, file);
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
  const found = bytes.length - headerBytes;
  if (found < count) fail(`truncated: expected ${count} bytes of data for shape [${shape.join(', ')}], found ${found}`);
  if (found > count) fail(`expected ${count} bytes of data for shape [${shape.join(', ')}], found ${found} (trailing bytes)`);
  // A copy, so `data.buffer` holds exactly the values: a later `new Tensor(data.buffer)` that
  // ignores byteOffset cannot pick up the header, and the decompressed buffer can be freed.
  const data = new Uint8Array(count);
  data.set(bytes.subarray(headerBytes));
  return { data, shape };
}

/** Reads and parses an IDX file (gzip or not); a missing file is a DatasetError naming it. */
export function readIdx(file: string, kind?: IdxKind): IdxArray {
  return parseIdx(readBytes(file), file, kind);
}

/** readFileSync that turns "no such file" and friends into a DatasetError naming the file. */
export function readBytes(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : err instanceof Error ? err.message : String(err);
    throw new DatasetError(`${file}: ${why}`, file, { cause: err });
  }
}
