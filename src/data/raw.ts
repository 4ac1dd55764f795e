/**
 * A dataset split as plain typed arrays: locate the files, fetch what is missing, parse, check
 * that images and labels agree. No tensors here; a later layer wraps these arrays.
 */
import { ArgumentError, DatasetError } from '../core/errors.js';
import { concatCifar, readCifar } from './cifar.js';
import { ensureFiles, verifyFiles, type EnsureOptions } from './download.js';
import { readIdx } from './idx.js';
import { datasetDir, findFile, type LocateOptions } from './locate.js';
import { getDatasetSpec, type CifarDatasetSpec, type DatasetSpec, type FileSpec, type IdxDatasetSpec, type Split } from './sources.js';

export interface RawDataset {
  /** [n, C, H, W] uint8 pixels, row-major. */
  images: Uint8Array;
  /** [n] class indices in 0..numClasses-1. */
  labels: Uint8Array;
  n: number;
  /** Per-sample shape [C, H, W]. */
  shape: [number, number, number];
  numClasses: number;
}

export interface LoadRawOptions extends LocateOptions, EnsureOptions {
  /** Check the md5 of files already on disk too (downloads are always checked). Default false. */
  verify?: boolean;
  /** CIFAR-100 only: 'fine' (100 classes, default) or 'coarse' (20 superclasses). */
  labels?: 'fine' | 'coarse';
}

/**
 * Loads one split of a registered dataset ('mnist', 'fashion_mnist', 'cifar10', 'cifar100'), or
 * of a spec passed directly (a custom mirror, or a test serving generated files with their md5s).
 */
export async function loadRaw(name: string | DatasetSpec, split: Split, opts: LoadRawOptions = {}): Promise<RawDataset> {
  const spec = typeof name === 'string' ? getDatasetSpec(name) : name;
  if (split !== 'train' && split !== 'test') {
    throw new ArgumentError(`split must be 'train' or 'test', got ${JSON.stringify(split)}`);
  }
  // Arguments are checked before any file is touched or fetched.
  if (opts.labels === 'coarse' && !(spec.format === 'cifar' && spec.labelBytes === 2)) {
    throw new ArgumentError(`labels: 'coarse' exists only for cifar100, not ${spec.name}`);
  }
  const dir = datasetDir(spec, opts);
  const files: FileSpec[] = spec.format === 'idx' ? [spec.splits[split].images, spec.splits[split].labels] : [...spec.splits[split]];
  await ensureFiles(spec, dir, files, opts);
  if (opts.verify) await verifyFiles(spec, dir, files);
  return spec.format === 'idx' ? loadIdxSplit(spec, dir, split) : loadCifarSplit(spec, dir, split, opts.labels ?? 'fine');
}

function pathOf(dir: string, f: FileSpec): string {
  const path = findFile(dir, f.name);
  // ensureFiles just made it exist; this only fires if something removed it in between.
  if (path === undefined) throw new DatasetError(`${dir}/${f.name}: file not found`, `${dir}/${f.name}`);
  return path;
}

function loadIdxSplit(spec: IdxDatasetSpec, dir: string, split: Split): RawDataset {
  const imagesFile = pathOf(dir, spec.splits[split].images);
  const labelsFile = pathOf(dir, spec.splits[split].labels);
  const images = readIdx(imagesFile, 'images'); // [n, H, W]
  const labels = readIdx(labelsFile, 'labels'); // [n]
  const [c, h, w] = spec.inputShape;
  const [n, ih, iw] = images.shape;
  if (ih !== h || iw !== w) {
    throw new DatasetError(`${imagesFile}: images are ${ih}x${iw}, ${spec.name} expects ${h}x${w}`, imagesFile);
  }
  if (labels.shape[0] !== n) {
    throw new DatasetError(`${labelsFile}: ${labels.shape[0]} labels for ${n} images in ${imagesFile}`, labelsFile);
  }
  checkLabels(labels.data, spec.numClasses, labelsFile);
  return { images: images.data, labels: labels.data, n, shape: [c, h, w], numClasses: spec.numClasses };
}

function loadCifarSplit(spec: CifarDatasetSpec, dir: string, split: Split, kind: 'fine' | 'coarse'): RawDataset {
  const variant = spec.labelBytes === 2 ? 'cifar100' : 'cifar10';
  const batch = concatCifar(spec.splits[split].map((f) => readCifar(pathOf(dir, f), variant)));
  const [c, h, w] = spec.inputShape;
  if (kind === 'coarse') {
    // parseCifar always fills coarseLabels for cifar100.
    return { images: batch.images, labels: batch.coarseLabels!, n: batch.n, shape: [c, h, w], numClasses: spec.numCoarseClasses ?? 20 };
  }
  return { images: batch.images, labels: batch.labels, n: batch.n, shape: [c, h, w], numClasses: spec.numClasses };
}

function checkLabels(labels: Uint8Array, numClasses: number, file: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= numClasses) {
      throw new DatasetError(`${file}: label ${labels[i]} at index ${i} out of range 0..${numClasses - 1}`, file);
    }
  }
}
