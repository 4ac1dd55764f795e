/**
 * Datasets as tensors: one uint8 image tensor [N, C, H, W] and one int64 label tensor [N].
 *
 * Pixels stay uint8 in memory (MNIST train is 47 MB so, 188 MB as float32); the loader converts
 * one batch at a time. Subsets and train/val splits are index views over one dataset, so nothing
 * is copied and every view of a run names samples by their index in the original split.
 */
import { ArgumentError, DtypeError, ShapeError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { keep, tensor, type Tensor } from '../tensor/index.js';
import { loadRaw, type LoadRawOptions, type RawDataset } from './raw.js';
import { getDatasetSpec, type DatasetSpec, type Split } from './sources.js';

/** What a model and the loader need to know about a dataset, besides its tensors. */
export interface DatasetInfo {
  /** Registry key ('mnist', ...) or a free name for a dataset built by hand. */
  name: string;
  numClasses: number;
  /** Per-sample shape [C, H, W]. */
  shape: readonly [number, number, number];
  /** Per-channel normalization on pixels scaled to [0, 1]; length C. */
  mean: readonly number[];
  std: readonly number[];
}

/**
 * Images and labels of one split. The dataset owns both tensors: they are exempt from scopes
 * and live until dispose().
 */
export class TensorDataset implements DatasetInfo {
  /** uint8 [N, C, H, W] */
  readonly images: Tensor;
  /** int64 [N] */
  readonly labels: Tensor;
  readonly length: number;
  readonly name: string;
  readonly numClasses: number;
  readonly shape: readonly [number, number, number];
  readonly mean: readonly number[];
  readonly std: readonly number[];

  /** Takes ownership of `images` (uint8 [N, C, H, W]) and `labels` (int64 [N]). */
  constructor(images: Tensor, labels: Tensor, info: Partial<DatasetInfo> & { numClasses: number }) {
    const is = images.shape, ls = labels.shape;
    if (images.dtype !== 'uint8') throw new DtypeError(`TensorDataset: images must be uint8, got ${images.dtype}`);
    if (labels.dtype !== 'int64') throw new DtypeError(`TensorDataset: labels must be int64, got ${labels.dtype}`);
    if (is.length !== 4) throw new ShapeError(`TensorDataset: images must be 4-d [N, C, H, W], got [${is}]`);
    if (ls.length !== 1 || ls[0] !== is[0]) throw new ShapeError(`TensorDataset: labels [${ls}] must be [${is[0]}] to match images [${is}]`);
    const c = is[1];
    const shape: [number, number, number] = [is[1], is[2], is[3]];
    if (info.shape && info.shape.join() !== shape.join()) {
      throw new ShapeError(`TensorDataset: info.shape [${info.shape}] does not match images [${is}]`);
    }
    const mean = info.mean ?? new Array<number>(c).fill(0);
    const std = info.std ?? new Array<number>(c).fill(1);
    if (mean.length !== c || std.length !== c) {
      throw new ShapeError(`TensorDataset: mean (${mean.length}) and std (${std.length}) need one value per channel (${c})`);
    }
    if (std.some((s) => !(s > 0))) throw new ArgumentError(`TensorDataset: std must be positive, got [${std}]`);
    this.images = keep(images);
    this.labels = keep(labels);
    this.length = is[0];
    this.name = info.name ?? 'tensors';
    this.numClasses = info.numClasses;
    this.shape = shape;
    this.mean = [...mean];
    this.std = [...std];
  }

  /**
   * A dataset from flat arrays: `images` holds n * C * H * W bytes, row-major; `labels` n classes.
   * Both are copied into native memory.
   */
  static fromArrays(images: Uint8Array, labels: ArrayLike<number>, info: Partial<DatasetInfo> & { numClasses: number; shape: readonly [number, number, number] }): TensorDataset {
    const n = labels.length;
    const [c, h, w] = info.shape;
    if (images.length !== n * c * h * w) {
      throw new ShapeError(`TensorDataset.fromArrays: ${images.length} bytes of images for ${n} labels of shape [${info.shape}] (expected ${n * c * h * w})`);
    }
    const lb = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const l = labels[i];
      if (!Number.isInteger(l) || l < 0 || l >= info.numClasses) throw new ArgumentError(`TensorDataset.fromArrays: label ${l} at index ${i} out of range 0..${info.numClasses - 1}`);
      lb[i] = BigInt(l);
    }
    const img = tensor(images, { shape: [n, c, h, w] });
    let lab: Tensor | undefined;
    try {
      lab = tensor(lb, { shape: [n] });
      return new TensorDataset(img, lab, info);
    } catch (e) {
      img.dispose();
      lab?.dispose();
      throw e;
    }
  }

  /** The whole dataset as a view (indices 0..N-1). */
  all(): DatasetView {
    return { dataset: this, indices: Int32Array.from({ length: this.length }, (_, i) => i) };
  }

  /** Frees both tensors; safe twice. */
  dispose(): void {
    this.images.dispose();
    this.labels.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Some samples of a dataset, named by their index in it (in this order). */
export interface DatasetView {
  readonly dataset: TensorDataset;
  readonly indices: Int32Array;
}

/** A dataset, or a view of one: what the loader and the split accept. */
export type DataSource = TensorDataset | DatasetView;

/** The view a source stands for (a dataset stands for all of its samples). */
export function asView(src: DataSource): DatasetView {
  return src instanceof TensorDataset ? src.all() : src;
}

export interface LoadDatasetOptions extends LoadRawOptions {
  split: Split;
  /** Keep only this many samples: the first n of a seeded shuffle, then in file order. */
  subset?: number;
  /** Seed of the subset's shuffle (default 0). */
  seed?: number;
}

/** Loads one split of a registered dataset (or of a spec) into native memory. */
export async function loadDataset(name: string | DatasetSpec, opts: LoadDatasetOptions): Promise<TensorDataset> {
  const spec = typeof name === 'string' ? getDatasetSpec(name) : name;
  const { split, subset, seed = 0, ...rawOpts } = opts;
  if (subset !== undefined && !(Number.isInteger(subset) && subset > 0)) {
    throw new ArgumentError(`loadDataset: subset must be a positive integer, got ${subset}`);
  }
  const raw = await loadRaw(spec, split, rawOpts);
  const picked = subset === undefined || subset >= raw.n ? raw : pickSubset(raw, subset, seed);
  return TensorDataset.fromArrays(picked.images, picked.labels, {
    name: spec.name,
    numClasses: raw.numClasses,
    shape: raw.shape,
    mean: spec.mean,
    std: spec.std,
  });
}

/** The first n samples of a seeded shuffle, kept in file order (the set depends only on (n, seed)). */
function pickSubset(raw: RawDataset, n: number, seed: number): RawDataset {
  const idx = new Rng(seed).permutation(raw.n).subarray(0, n).sort();
  const size = raw.shape[0] * raw.shape[1] * raw.shape[2];
  const images = new Uint8Array(n * size);
  const labels = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    const i = idx[k];
    images.set(raw.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = raw.labels[i];
  }
  return { ...raw, images, labels, n };
}

/**
 * Splits a dataset (or view) into disjoint train and validation views that together cover it.
 * The validation set is the first round(n * valFraction) of a permutation seeded by `seed`; both
 * views keep the source's order (ascending indices when the source is a whole dataset).
 */
export function splitTrainVal(src: DataSource, valFraction: number, seed: number): { train: DatasetView; val: DatasetView } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new ArgumentError(`splitTrainVal: valFraction must be in [0, 1), got ${valFraction}`);
  const view = asView(src);
  const n = view.indices.length;
  const nVal = Math.round(n * valFraction);
  const perm = new Rng(seed).permutation(n);
  const pick = (pos: Int32Array): Int32Array => Int32Array.from(pos.sort(), (p) => view.indices[p]);
  return {
    train: { dataset: view.dataset, indices: pick(perm.slice(nVal)) },
    val: { dataset: view.dataset, indices: pick(perm.slice(0, nVal)) },
  };
}
