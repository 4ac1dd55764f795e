/**
 * Batches from a dataset (or a view of one): seeded shuffling per epoch, normalization and
 * augmentation in tensor ops, a handful of native calls per batch.
 *
 * No prefetching, by decision: libtorch calls run synchronously on the JS thread, so a batch built
 * "ahead" would be built on the same thread at the same cost, only earlier; overlapping it with
 * training would need a worker thread with its own tensors and a copy across threads, costing more
 * than it saves for uint8 datasets held in memory. Instead a batch is made cheap (an indexSelect
 * on the uint8 images, one conversion, one multiply-add: well under a millisecond for an MNIST
 * batch of 128) and the loader measures itself: `stats.ms` is the time spent building batches,
 * so a training loop can show the loader's share of an epoch and see when it matters.
 */
import { ArgumentError, ShapeError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { tensor, tidy, type Tensor } from '../tensor/index.js';
import { augment, compose, type Augmentation } from './augment.js';
import { asView, type DataSource, type TensorDataset } from './dataset.js';

export interface DataLoaderOptions {
  batchSize: number;
  /** Reshuffle every epoch (default false: the source's order). */
  shuffle?: boolean;
  /** Seeds shuffling and augmentation: epoch e's order and parameters depend only on (seed, e). Default 0. */
  seed?: number;
  /** Leave out the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /**
   * (x / 255 - mean) / std per channel: true (default) uses the dataset's mean and std, false
   * leaves x as float pixels in 0..255, or give your own.
   */
  normalize?: boolean | { mean: readonly number[]; std: readonly number[] };
  /** Applied to each batch, in order, before normalization (training loaders only, usually). */
  augment?: Augmentation<any> | readonly Augmentation<any>[];
  /** Device of the batches (default: the dataset's); the uint8 batch moves before conversion. */
  device?: string;
}

/** One batch. Its tensors belong to the caller: dispose them (or the batch, or use a tidy). */
export interface Batch {
  /** float32 [B, C, H, W] */
  x: Tensor;
  /** int64 [B] */
  y: Tensor;
  /** The samples' indices in the dataset. */
  indices: Int32Array;
  [Symbol.dispose](): void;
}

export interface LoaderStats {
  batches: number;
  samples: number;
  /** Milliseconds spent building batches (ordering, indexing, conversion, augmentation). */
  ms: number;
}

/** Independent random streams per epoch. */
const Stream = { Shuffle: 0, Augment: 1 } as const;

export class DataLoader {
  readonly dataset: TensorDataset;
  /** The samples this loader serves (indices into `dataset`), unshuffled. */
  readonly indices: Int32Array;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly device: string | undefined;
  private readonly aug: Augmentation<any> | undefined;
  /** x * scale - shift per channel, or null for no normalization. */
  private readonly norm: { scale: Float32Array; shift: Float32Array } | null;
  private readonly srcDevice: string;
  private readonly counters: LoaderStats = { batches: 0, samples: 0, ms: 0 };

  constructor(source: DataSource, opts: DataLoaderOptions) {
    const view = asView(source);
    const ds = view.dataset;
    const bs = opts.batchSize;
    if (!(Number.isInteger(bs) && bs > 0)) throw new ArgumentError(`DataLoader: batchSize must be a positive integer, got ${bs}`);
    const seed = opts.seed ?? 0;
    if (!(Number.isInteger(seed) && seed >= 0)) throw new ArgumentError(`DataLoader: seed must be a non-negative integer, got ${seed}`);
    for (let i = 0; i < view.indices.length; i++) {
      const k = view.indices[i];
      if (!(k >= 0 && k < ds.length)) throw new ArgumentError(`DataLoader: index ${k} at position ${i} is outside the dataset (0..${ds.length - 1})`);
    }
    this.dataset = ds;
    this.indices = view.indices;
    this.batchSize = bs;
    this.shuffle = opts.shuffle ?? false;
    this.seed = seed;
    this.dropLast = opts.dropLast ?? false;
    this.device = opts.device;
    const a = opts.augment;
    this.aug = a === undefined ? undefined : Array.isArray(a) ? (a.length === 0 ? undefined : a.length === 1 ? a[0] : compose(...a)) : (a as Augmentation<any>);
    this.norm = normConstants(opts.normalize ?? true, ds);
    this.srcDevice = ds.images.device;
  }

  /** Samples per epoch (after dropLast). */
  get size(): number {
    const n = this.indices.length;
    return this.dropLast ? n - (n % this.batchSize) : n;
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.indices.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Time and counts so far (a copy). */
  get stats(): LoaderStats {
    return { ...this.counters };
  }

  resetStats(): void {
    this.counters.batches = this.counters.samples = this.counters.ms = 0;
  }

  /** The dataset indices in epoch e's order (all of them, dropLast not applied). */
  order(epoch: number): Int32Array {
    checkEpoch(epoch);
    if (!this.shuffle) return this.indices.slice();
    const perm = new Rng(mixSeed(this.seed, epoch, Stream.Shuffle)).permutation(this.indices.length);
    for (let i = 0; i < perm.length; i++) perm[i] = this.indices[perm[i]];
    return perm;
  }

  /** The batches of epoch e (0-based). Each batch's tensors belong to the caller. */
  *epoch(epoch: number): Generator<Batch, void, undefined> {
    checkEpoch(epoch);
    const t0 = performance.now();
    const order = this.order(epoch);
    const rng = this.aug ? new Rng(mixSeed(this.seed, epoch, Stream.Augment)) : undefined;
    this.counters.ms += performance.now() - t0;
    const bs = this.batchSize;
    for (let k = 0, nb = this.length; k < nb; k++) {
      yield this.batch(order.subarray(k * bs, Math.min((k + 1) * bs, order.length)), rng);
    }
  }

  /**
   * One batch of the given dataset indices, normalized; augmented only when an Rng is given (and
   * the loader has an augmentation). epoch() uses this; so can evaluation code.
   */
  batch(indices: ArrayLike<number>, rng?: Rng): Batch {
    const t0 = performance.now();
    const ds = this.dataset;
    const b = indices.length;
    if (b === 0) throw new ArgumentError('DataLoader.batch: no indices');
    const idx64 = new BigInt64Array(b);
    for (let i = 0; i < b; i++) {
      const k = indices[i];
      if (!(Number.isInteger(k) && k >= 0 && k < ds.length)) throw new ArgumentError(`DataLoader.batch: index ${k} is outside the dataset (0..${ds.length - 1})`);
      idx64[i] = BigInt(k);
    }
    const { x, y } = tidy(() => {
      const idx = tensor(idx64, { shape: [b], device: this.srcDevice });
      let x = ds.images.indexSelect(0, idx); // uint8 [B, C, H, W]
      let y = ds.labels.indexSelect(0, idx); // int64 [B]
      if (this.device !== undefined && this.device !== this.srcDevice) {
        x = x.to(this.device);
        y = y.to(this.device);
      }
      x = x.to('float32'); // [B, C, H, W], pixels 0..255
      if (this.aug && rng) x = augment(this.aug, x, rng);
      if (this.norm) x = normalizeInPlace(x, this.norm);
      return { x, y };
    });
    this.counters.batches++;
    this.counters.samples += b;
    this.counters.ms += performance.now() - t0;
    return {
      x,
      y,
      indices: Int32Array.from(indices),
      [Symbol.dispose]() {
        x.dispose();
        y.dispose();
      },
    };
  }
}

/** x * scale - shift = (x / 255 - mean) / std, in place on a fresh float batch. */
function normalizeInPlace(x: Tensor, { scale, shift }: { scale: Float32Array; shift: Float32Array }): Tensor {
  if (scale.length === 1) return x.mul_(scale[0]).sub_(shift[0]);
  const c = scale.length;
  const dev = x.device;
  return x.mul_(tensor(scale, { shape: [1, c, 1, 1], device: dev })).sub_(tensor(shift, { shape: [1, c, 1, 1], device: dev }));
}

function normConstants(opt: NonNullable<DataLoaderOptions['normalize']>, ds: TensorDataset): { scale: Float32Array; shift: Float32Array } | null {
  if (opt === false) return null;
  const { mean, std } = opt === true ? ds : opt;
  const c = ds.shape[0];
  if (mean.length !== c || std.length !== c) {
    throw new ShapeError(`DataLoader: normalize needs one mean and std per channel (${c}), got ${mean.length} and ${std.length}`);
  }
  if (std.some((s) => !(s > 0))) throw new ArgumentError(`DataLoader: std must be positive, got [${std}]`);
  return {
    scale: Float32Array.from(std, (s) => 1 / (255 * s)),
    shift: Float32Array.from(mean, (m, i) => m / std[i]),
  };
}

function checkEpoch(epoch: number): void {
  if (!(Number.isInteger(epoch) && epoch >= 0)) throw new ArgumentError(`DataLoader: epoch must be a non-negative integer, got ${epoch}`);
}

/** A 32-bit seed for (seed, epoch, stream): murmur3's finalizer over each word, chained. */
export function mixSeed(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    h = fmix32((h ^ fmix32((w >>> 0) ^ Math.floor(w / 4294967296))) + 0x7f4a7c15);
  }
  return h >>> 0;
}

function fmix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
