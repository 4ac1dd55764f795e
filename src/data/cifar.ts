/**
 * CIFAR-10 / CIFAR-100 binary reader: https://www.cs.toronto.edu/~kriz/cifar.html ("Binary version").
 *
 * A file is a run of fixed-size records: the label byte(s), then 3072 pixel bytes (1024 red,
 * 1024 green, 1024 blue, each a row-major 32x32 plane). That pixel block is already the
 * [3, 32, 32] layout, so images come out as [N, 3, 32, 32] by copying blocks, not by transposing.
 */
import { DatasetError } from '../core/errors.js';
import { readBytes } from './idx.js';

export type CifarVariant = 'cifar10' | 'cifar100';

export const CIFAR_PIXELS = 3 * 32 * 32;

export interface CifarBatch {
  /** [N, 3, 32, 32] uint8. */
  images: Uint8Array;
  /** CIFAR-10: the class (0..9). CIFAR-100: the fine class (0..99). */
  labels: Uint8Array;
  /** CIFAR-100 only: the superclass (0..19). */
  coarseLabels?: Uint8Array;
  n: number;
}

const layout: Record<CifarVariant, { labelBytes: number; fine: number; coarse?: number }> = {
  cifar10: { labelBytes: 1, fine: 10 },
  cifar100: { labelBytes: 2, fine: 100, coarse: 20 },
};

/** Bytes per record: 3073 for CIFAR-10, 3074 for CIFAR-100. */
export function cifarRecordSize(variant: CifarVariant): number {
  return layout[variant].labelBytes + CIFAR_PIXELS;
}

/** Parses the bytes of one CIFAR binary file. `file` only names the source in errors. */
export function parseCifar(bytes: Uint8Array, file: string, variant: CifarVariant): CifarBatch {
  const { labelBytes, fine, coarse } = layout[variant];
  const record = labelBytes + CIFAR_PIXELS;
  if (bytes.length === 0) throw new DatasetError(`${file}: empty file, no ${variant} records`, file);
  if (bytes.length % record !== 0) {
    throw new DatasetError(
      `${file}: size ${bytes.length} is not a multiple of the ${variant} record size ${record} ` +
        `(${Math.floor(bytes.length / record)} whole records and ${bytes.length % record} bytes left over); ` +
        'truncated, or not a ' + variant + ' binary file',
      file,
    );
  }
  const n = bytes.length / record;
  const images = new Uint8Array(n * CIFAR_PIXELS);
  const labels = new Uint8Array(n);
  const coarseLabels = coarse !== undefined ? new Uint8Array(n) : undefined;
  for (let i = 0; i < n; i++) {
    const at = i * record;
    // CIFAR-100 stores the coarse label first, then the fine one.
    const label = bytes[at + labelBytes - 1];
    if (label >= fine) {
      const which = coarse !== undefined ? 'fine label' : 'label';
      throw new DatasetError(`${file}: record ${i}: ${which} ${label} out of range 0..${fine - 1}`, file);
    }
    labels[i] = label;
    if (coarseLabels !== undefined && coarse !== undefined) {
      const c = bytes[at];
      if (c >= coarse) throw new DatasetError(`${file}: record ${i}: coarse label ${c} out of range 0..${coarse - 1}`, file);
      coarseLabels[i] = c;
    }
    images.set(bytes.subarray(at + labelBytes, at + record), i * CIFAR_PIXELS);
  }
  return coarseLabels ? { images, labels, coarseLabels, n } : { images, labels, n };
}

/** Reads and parses one CIFAR binary file; a missing file is a DatasetError naming it. */
export function readCifar(file: string, variant: CifarVariant): CifarBatch {
  return parseCifar(readBytes(file), file, variant);
}

/** Concatenates batches in the given order (CIFAR-10's training set is data_batch_1..5). */
export function concatCifar(batches: readonly CifarBatch[]): CifarBatch {
  if (batches.length === 1) return batches[0];
  const n = batches.reduce((s, b) => s + b.n, 0);
  const images = new Uint8Array(n * CIFAR_PIXELS);
  const labels = new Uint8Array(n);
  const withCoarse = batches.length > 0 && batches.every((b) => b.coarseLabels !== undefined);
  const coarseLabels = withCoarse ? new Uint8Array(n) : undefined;
  let at = 0;
  for (const b of batches) {
    images.set(b.images, at * CIFAR_PIXELS);
    labels.set(b.labels, at);
    if (coarseLabels && b.coarseLabels) coarseLabels.set(b.coarseLabels, at);
    at += b.n;
  }
  return coarseLabels ? { images, labels, coarseLabels, n } : { images, labels, n };
}
