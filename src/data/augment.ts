/**
 * Batch augmentations, as small composable values.
 *
 * Each augmentation has two halves: `sample` draws the per-sample parameters in JS from a seeded
 * Rng (a handful of numbers per sample, cheap), and `apply` applies them to the whole batch with a
 * few tensor ops. So a batch's augmentation depends only on the Rng's state, never on libtorch's
 * global generator, and a test can draw the same parameters and compute the expected pixels.
 *
 * Inputs are [B, C, H, W] batches of unnormalized pixels (0..255); the loader normalizes after
 * augmenting, so zero fill means a black pixel, as in torchvision (where padding happens on the
 * PIL image before ToTensor and Normalize). Every op here is linear in the pixels, so the order
 * "augment, then scale and shift" gives what torchvision's order does.
 */
import { isFloating } from '../core/dtype.js';
import { ArgumentError, DtypeError, ShapeError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { F, tensor, tidy, type Tensor } from '../tensor/index.js';

/** Per-sample shape [C, H, W]. */
export type SampleShape = readonly [number, number, number];

export interface Augmentation<P = unknown> {
  readonly name: string;
  /** Draws the parameters for a batch of `batch` samples of shape `shape`. */
  sample(rng: Rng, batch: number, shape: SampleShape): P;
  /** Applies them to x [B, C, H, W]; returns a new tensor of the same shape (x is left alone). */
  apply(x: Tensor, params: P): Tensor;
}

/** Samples and applies in one step. */
export function augment<P>(aug: Augmentation<P>, x: Tensor, rng: Rng): Tensor {
  const [b, c, h, w] = check4d(aug.name, x);
  return aug.apply(x, aug.sample(rng, b, [c, h, w]));
}

function check4d(op: string, x: Tensor): [number, number, number, number] {
  const s = x.shape;
  if (s.length !== 4) throw new ShapeError(`${op}: input must be 4-d [B, C, H, W], got [${s}]`);
  return [s[0], s[1], s[2], s[3]];
}

function checkBatch(op: string, x: Tensor, n: number): [number, number, number, number] {
  const s = check4d(op, x);
  if (s[0] !== n) throw new ShapeError(`${op}: parameters were drawn for ${n} samples, the batch has ${s[0]} (shape [${s}])`);
  return s;
}

// ---- random crop ---------------------------------------------------------------------------------

export interface RandomCropOptions {
  /** Zero padding on every side before cropping back to H x W (4 for CIFAR). */
  padding: number;
}

/** Offsets of each crop's top-left corner in the padded image, each in 0..2 * padding. */
export interface CropParams {
  top: Int32Array;
  left: Int32Array;
}

/**
 * torchvision's RandomCrop(size = input size, padding): out[y, x] = padded[y + top, x + left].
 * Exact (a gather, no interpolation); works on any dtype.
 */
export function randomCrop(opts: RandomCropOptions): Augmentation<CropParams> {
  const p = opts.padding;
  if (!(Number.isInteger(p) && p >= 0)) throw new ArgumentError(`randomCrop: padding must be a non-negative integer, got ${p}`);
  return {
    name: 'randomCrop',
    sample(rng, batch) {
      const top = new Int32Array(batch), left = new Int32Array(batch);
      for (let i = 0; i < batch; i++) {
        top[i] = rng.int(2 * p + 1);
        left[i] = rng.int(2 * p + 1);
      }
      return { top, left };
    },
    apply(x, { top, left }) {
      const [b, c, h, w] = checkBatch('randomCrop', x, top.length);
      const wp = w + 2 * p;
      const base = cropBase(h, w, p);
      const shift = new BigInt64Array(b);
      for (let i = 0; i < b; i++) {
        if (!(top[i] >= 0 && top[i] <= 2 * p && left[i] >= 0 && left[i] <= 2 * p)) {
          throw new ArgumentError(`randomCrop: offset (${top[i]}, ${left[i]}) of sample ${i} outside 0..${2 * p}`);
        }
        shift[i] = BigInt(top[i] * wp + left[i]);
      }
      const device = x.device;
      return tidy(() => {
        const padded = p > 0 ? F.pad(x, [p, p, p, p]) : x; // [B, C, H + 2p, W + 2p]
        const idx = tensor(base, { shape: [1, h * w], device }).add(tensor(shift, { shape: [b, 1], device })); // [B, H * W]
        return padded.flatten(2).gather(2, idx.unsqueeze(1).expand([b, c, h * w])).view([b, c, h, w]);
      });
    },
  };
}

const cropBases = new Map<string, BigInt64Array>();
/** Flat index of each output (y, x) in the padded image, y * (W + 2p) + x; cached per size (JS memory only). */
function cropBase(h: number, w: number, p: number): BigInt64Array {
  const key = `${h}x${w}+${p}`;
  let base = cropBases.get(key);
  if (base === undefined) {
    base = new BigInt64Array(h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) base[y * w + x] = BigInt(y * (w + 2 * p) + x);
    cropBases.set(key, base);
  }
  return base;
}

// ---- horizontal flip ------------------------------------------------------------------------------

export interface HorizontalFlipOptions {
  /** Probability that a sample is flipped (default 0.5). */
  p?: number;
}

/** Mirrors each sample left-right with probability p: where(mask, x.flip([3]), x). */
export function horizontalFlip(opts: HorizontalFlipOptions = {}): Augmentation<Uint8Array> {
  const p = opts.p ?? 0.5;
  if (!(p >= 0 && p <= 1)) throw new ArgumentError(`horizontalFlip: p must be in [0, 1], got ${p}`);
  return {
    name: 'horizontalFlip',
    sample(rng, batch) {
      const flip = new Uint8Array(batch);
      for (let i = 0; i < batch; i++) flip[i] = rng.random() < p ? 1 : 0;
      return flip;
    },
    apply(x, flip) {
      const [b] = checkBatch('horizontalFlip', x, flip.length);
      const count = flip.reduce((s, f) => s + f, 0);
      if (count === 0) return x.clone();
      if (count === b) return x.flip([3]);
      return tidy(() => x.flip([3]).where(tensor(flip, { shape: [b, 1, 1, 1], dtype: 'bool', device: x.device }), x));
    },
  };
}

// ---- random affine (rotation and translation) --------------------------------------------------------

export interface RandomAffineOptions {
  /**
   * Rotation angle range in degrees: d means [-d, d]. Positive angles turn counter-clockwise, as
   * torch.rot90 and torchvision's rotate do (its affine counts clockwise; over a symmetric range
   * the two give the same distribution).
   */
  degrees: number | readonly [number, number];
  /** Largest shift as a fraction of width and height: t means (t, t). Shifts are whole pixels, as torchvision rounds them. */
  translate?: number | readonly [number, number];
  /** Interpolation (default bilinear); outside the image is zero. */
  mode?: 'bilinear' | 'nearest';
}

/** Per sample: angle in degrees (counter-clockwise), shift in pixels (right, down). */
export interface AffineParams {
  angle: Float64Array;
  tx: Float64Array;
  ty: Float64Array;
}

/**
 * torchvision's RandomAffine(degrees, translate) on a batch: one affineGrid and one gridSample.
 * Rotation is about the image center; the output pixel p samples the input at R(-angle)(p - t).
 */
export function randomAffine(opts: RandomAffineOptions): Augmentation<AffineParams> {
  const [d0, d1] = typeof opts.degrees === 'number' ? [-opts.degrees, opts.degrees] : opts.degrees;
  if (!(Number.isFinite(d0) && Number.isFinite(d1) && d0 <= d1)) throw new ArgumentError(`randomAffine: degrees must be a number >= 0 or a range [lo, hi], got ${JSON.stringify(opts.degrees)}`);
  const [fx, fy] = opts.translate === undefined ? [0, 0] : typeof opts.translate === 'number' ? [opts.translate, opts.translate] : opts.translate;
  if (!(fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1)) throw new ArgumentError(`randomAffine: translate must be fractions in [0, 1], got ${JSON.stringify(opts.translate)}`);
  const mode = opts.mode ?? 'bilinear';
  return {
    name: 'randomAffine',
    sample(rng, batch, [, h, w]) {
      const angle = new Float64Array(batch), tx = new Float64Array(batch), ty = new Float64Array(batch);
      for (let i = 0; i < batch; i++) {
        angle[i] = rng.uniform(d0, d1);
        tx[i] = fx > 0 ? Math.round(rng.uniform(-fx * w, fx * w)) : 0;
        ty[i] = fy > 0 ? Math.round(rng.uniform(-fy * h, fy * h)) : 0;
      }
      return { angle, tx, ty };
    },
    apply(x, params) {
      const [b, c, h, w] = checkBatch('randomAffine', x, params.angle.length);
      if (!isFloating(x.dtype)) throw new DtypeError(`randomAffine: input must be floating point (it interpolates), got ${x.dtype}`);
      const theta = affineTheta(params, h, w);
      return tidy(() => {
        const grid = F.affineGrid(tensor(theta, { shape: [b, 2, 3], dtype: x.dtype, device: x.device }), [b, c, h, w]);
        return F.gridSample(x, grid, { mode, paddingMode: 'zeros' });
      });
    },
  };
}

/**
 * theta [B, 2, 3] for affineGrid (alignCorners false): it maps output to input in normalized
 * coordinates, where pixel offsets from the center scale by (W/2, H/2). In pixels, with y down,
 * a counter-clockwise turn by a is A = [[c, s], [-s, c]]; the input point is A^T (p - t).
 */
export function affineTheta({ angle, tx, ty }: AffineParams, h: number, w: number): Float32Array {
  const theta = new Float32Array(angle.length * 6);
  for (let i = 0; i < angle.length; i++) {
    const a = (angle[i] * Math.PI) / 180;
    const c = Math.cos(a), s = Math.sin(a);
    theta.set([c, (-s * h) / w, (-(c * tx[i] - s * ty[i]) * 2) / w, (s * w) / h, c, (-(s * tx[i] + c * ty[i]) * 2) / h], i * 6);
  }
  return theta;
}

// ---- composition --------------------------------------------------------------------------------------

/** Applies augmentations in order; parameters are drawn in the same order. */
export function compose(...augs: Augmentation<any>[]): Augmentation<unknown[]> {
  return {
    name: `compose(${augs.map((a) => a.name).join(', ')})`,
    sample: (rng, batch, shape) => augs.map((a) => a.sample(rng, batch, shape)),
    apply(x, params) {
      if (params.length !== augs.length) throw new ArgumentError(`compose: ${params.length} parameter sets for ${augs.length} augmentations`);
      if (augs.length === 0) return x.clone();
      return tidy(() => augs.reduce((cur, a, i) => a.apply(cur, params[i]), x));
    },
  };
}
