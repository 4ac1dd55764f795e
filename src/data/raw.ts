/**
 * A dataset split as plain typed arrays: locate the files, fetch what is missing, parse, check
 * that images and labels agree. No tensors here; a later layer wraps these arrays.
 */
import { statSync } from 'node:fs';
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
  const parse = () => (spec.format === 'idx' ? loadIdxSplit(spec, dir, split) : loadCifarSplit(spec, dir, split, opts.labels ?? 'fine'));
  if (!cache) return parse();
  // Keyed by the spec and the files; a file replaced or rewritten since (inode, size, mtime) is parsed again.
  const paths = files.map((f) => pathOf(dir, f));
  const key = JSON.stringify([spec, split, opts.labels ?? 'fine', paths]);
  const stamp = paths.map((p) => { const s = statSync(p); return `${s.ino}:${s.size}:${s.mtimeMs}`; }).join(',');
  const hit = cache.entries.get(key);
  cache.entries.delete(key);
  if (hit && hit.stamp === stamp) {
    cache.entries.set(key, hit);
    return hit.raw;
  }
  const raw = parse();
  const bytes = raw.images.byteLength + raw.labels.byteLength;
  if (bytes <= cache.maxBytes) {
    cache.entries.set(key, { stamp, raw, bytes });
    let total = [...cache.entries.values()].reduce((t, e) => t + e.bytes, 0);
    for (const [k, e] of cache.entries) {
      if (total <= cache.maxBytes) break;
      cache.entries.delete(k);
      total -= e.bytes;
    }
  }
  return raw;
}

let cache: { maxBytes: number; entries: Map<string, { stamp: string; raw: RawDataset; bytes: number }> } | null = null;

/**
 * Keeps parsed splits in memory between loads, up to `maxBytes` (least recently used dropped first;
 * 0 turns it off): for a long-lived process that runs many short runs on the same data (a queue
 * worker's run thread). Off by default. Cached arrays are shared, so their readers must not write
 * to them (loadDataset copies them into tensors or into a subset).
 */
export function cacheRawDatasets(maxBytes: number): void {
  cache = maxBytes > 0 ? { maxBytes, entries: new Map() } : null;
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
