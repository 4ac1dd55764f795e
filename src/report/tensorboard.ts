/**
 * TensorBoard event files: scalars per epoch, the files TensorBoard, tensorboardX and TensorFlow's
 * summary readers watch. An event file is a TFRecord file of serialized `tensorboard.Event`
 * messages; each record is
 *   uint64 length (LE) | uint32 masked CRC32C of the length bytes | data | uint32 masked CRC32C of data
 * (TensorFlow's tensorflow/core/lib/io/record_writer.cc). The messages are encoded with
 * @bufbuild/protobuf from types generated out of src/report/proto/tensorboard_events.proto (the
 * scalar part of TensorBoard's event.proto and summary.proto). No npm package writes these files
 * without TensorFlow itself (tfjs-node's summaryFileWriter needs libtensorflow), so the framing and
 * the CRC (a table, a dozen lines) are here; see docs/design.md.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ArgumentError, SerializationError } from '../core/errors.js';
import { EventSchema, SummarySchema, Summary_ValueSchema, type Event } from './proto/tensorboard_events_pb.js';

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1; // Castagnoli, reflected
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli; iSCSI, RFC 3720), as TFRecord uses. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC32C_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15, add a constant (so a CRC of data holding CRCs stays strong). */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: length, its masked CRC, the data, the data's masked CRC. */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** The records of a TFRecord file, every length and CRC checked; a bad one is named with the file and offset. */
export function readTfRecords(buf: Uint8Array, file = 'TFRecord data'): Uint8Array[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < b.length) {
    if (off + 12 > b.length) throw new SerializationError(`${file}: truncated record header at byte ${off}`);
    const len = b.readBigUInt64LE(off);
    if (b.readUInt32LE(off + 8) !== maskedCrc32c(b.subarray(off, off + 8))) throw new SerializationError(`${file}: length CRC mismatch at byte ${off}`);
    const n = Number(len);
    if (off + 12 + n + 4 > b.length) throw new SerializationError(`${file}: record at byte ${off} claims ${n} bytes, past the end`);
    const data = b.subarray(off + 12, off + 12 + n);
    if (b.readUInt32LE(off + 12 + n) !== maskedCrc32c(data)) throw new SerializationError(`${file}: data CRC mismatch in the record at byte ${off}`);
    out.push(new Uint8Array(data));
    off += 12 + n + 4;
  }
  return out;
}

/** A decoded event: the version line, or scalars (tag -> value) at a step. */
export interface TensorBoardEvent { wallTime: number; step: number; fileVersion?: string; scalars?: Record<string, number> }

/** The events of an event file (lengths and CRCs checked). */
export function readEventFile(path: string): TensorBoardEvent[] {
  return readTfRecords(readFileSync(path), path).map((r, i) => {
    let e: Event;
    try {
      e = fromBinary(EventSchema, r);
    } catch (err) {
      throw new SerializationError(`${path}: record ${i} is not a tensorboard.Event (${(err as Error).message})`, { cause: err });
    }
    const out: TensorBoardEvent = { wallTime: e.wallTime, step: Number(e.step) };
    if (e.what.case === 'fileVersion') out.fileVersion = e.what.value;
    if (e.what.case === 'summary') {
      out.scalars = {};
      for (const v of e.what.value.value) if (v.value.case === 'simpleValue') out.scalars[v.tag] = v.value.value;
    }
    return out;
  });
}

let fileCounter = 0;

/**
 * Appends events to one new event file in `dir` (created if missing), named as TensorFlow names
 * them (`events.out.tfevents.<seconds>.<host>.<pid>.<n>`), so TensorBoard pointed at `dir` or a
 * folder above it finds the run. Each write goes to disk at once (a live TensorBoard shows it).
 */
export class TensorBoardWriter {
  readonly file: string;
  private fd: number | null;

  constructor(dir: string) {
    if (typeof dir !== 'string' || dir === '') throw new ArgumentError('TensorBoardWriter: dir must be a folder path');
    mkdirSync(dir, { recursive: true });
    const now = Date.now() / 1000;
    this.file = join(dir, `events.out.tfevents.${Math.floor(now)}.${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}.${process.pid}.${fileCounter++}`);
    this.fd = openSync(this.file, 'wx');
    this.write(create(EventSchema, { wallTime: now, step: 0n, what: { case: 'fileVersion', value: 'brain.Event:2' } }));
  }

  /** Scalars at a step (non-finite values are written as they are: TensorBoard shows NaN). */
  scalars(step: number, values: Record<string, number>, wallTime = Date.now() / 1000): void {
    if (!(Number.isInteger(step) && step >= 0)) throw new ArgumentError(`TensorBoardWriter.scalars: step must be a non-negative integer, got ${step}`);
    const value = Object.entries(values).map(([tag, v]) => create(Summary_ValueSchema, { tag, value: { case: 'simpleValue', value: v } }));
    this.write(create(EventSchema, { wallTime, step: BigInt(step), what: { case: 'summary', value: create(SummarySchema, { value }) } }));
  }

  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }

  private write(e: Event): void {
    if (this.fd === null) throw new ArgumentError(`TensorBoardWriter: ${this.file} is closed`);
    writeSync(this.fd, tfRecord(toBinary(EventSchema, e)));
    fsyncSync(this.fd);
  }
}

/** What one epoch logs: the fields of a training loop's epoch record, plain numbers. */
export interface EpochScalars {
  epoch: number;
  lr: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  sparsity?: number;
}

/** Tags as the per-epoch scalars are written (and read back by tests). */
export function epochTags(r: EpochScalars): Record<string, number> {
  const out: Record<string, number> = { 'train/loss': r.trainLoss, 'train/accuracy': r.trainAccuracy, lr: r.lr };
  if (r.valLoss !== undefined) out['val/loss'] = r.valLoss;
  if (r.valAccuracy !== undefined) out['val/accuracy'] = r.valAccuracy;
  if (r.sparsity !== undefined) out.sparsity = r.sparsity;
  return out;
}
