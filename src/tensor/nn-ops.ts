/** Neural-network ops (the functional layer). Arguments are checked here so errors name the values. */
import { call } from '../core/binding.js';
import { ArgumentError, DtypeError, ShapeError } from '../core/errors.js';
import { isFloating } from '../core/dtype.js';
import { Tensor } from './tensor.js';
import { recorder } from './record.js';

/** Report an op to the active recorder (tracing), if any; returns the output. */
function rec(op: string, inputs: (Tensor | null)[], attrs: Record<string, unknown>, y: Tensor): Tensor {
  if (recorder !== null) recorder.op(op, inputs, attrs, y);
  return y;
}

type Pair = number | [number, number];
const pair = (x: Pair): [number, number] => (Array.isArray(x) ? x : [x, x]);

export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const xs = x.shape, ws = weight.shape;
  if (ws.length !== 2) throw new ShapeError(`linear: weight must be 2-d [out, in], got [${ws}]`);
  if (xs[xs.length - 1] !== ws[1]) throw new ShapeError(`linear: input's last dim ${xs[xs.length - 1]} (shape [${xs}]) does not match weight's in-features ${ws[1]} (shape [${ws}])`);
  return rec('linear', [x, weight, bias ?? null], {}, new Tensor(call('linear', x.h, weight.h, bias ? bias.h : null)));
}

export function addmm(input: Tensor, a: Tensor, b: Tensor, beta = 1, alpha = 1): Tensor {
  return rec('addmm', [input, a, b], { beta, alpha }, new Tensor(call('addmm', input.h, a.h, b.h, beta, alpha)));
}

export interface Conv2dOptions { stride?: Pair; padding?: Pair; dilation?: Pair; groups?: number }
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: Conv2dOptions = {}): Tensor {
  const xs = x.shape, ws = weight.shape, g = o.groups ?? 1;
  if (xs.length !== 4) throw new ShapeError(`conv2d: input must be 4-d [N, C, H, W], got [${xs}]`);
  if (ws.length !== 4) throw new ShapeError(`conv2d: weight must be 4-d [out, in/groups, kH, kW], got [${ws}]`);
  if (xs[1] !== ws[1] * g) throw new ShapeError(`conv2d: input has ${xs[1]} channels (shape [${xs}]) but weight expects ${ws[1] * g} (shape [${ws}], groups ${g})`);
  const stride = pair(o.stride ?? 1), padding = pair(o.padding ?? 0), dilation = pair(o.dilation ?? 1);
  return rec('conv2d', [x, weight, bias ?? null], { stride, padding, dilation, groups: g },
    new Tensor(call('conv2d', x.h, weight.h, bias ? bias.h : null, stride, padding, dilation, g)));
}

export function maxPool2d(x: Tensor, kernel: Pair, o: { stride?: Pair; padding?: Pair; dilation?: Pair; ceilMode?: boolean } = {}): Tensor {
  if (x.ndim !== 4 && x.ndim !== 3) throw new ShapeError(`maxPool2d: input must be 3-d or 4-d, got [${x.shape}]`);
  const a = { kernel: pair(kernel), stride: pair(o.stride ?? kernel), padding: pair(o.padding ?? 0), dilation: pair(o.dilation ?? 1), ceilMode: o.ceilMode ?? false };
  return rec('maxPool2d', [x], a, new Tensor(call('maxPool2d', x.h, a.kernel, a.stride, a.padding, a.dilation, a.ceilMode)));
}

export function avgPool2d(x: Tensor, kernel: Pair, o: { stride?: Pair; padding?: Pair; ceilMode?: boolean; countIncludePad?: boolean } = {}): Tensor {
  if (x.ndim !== 4 && x.ndim !== 3) throw new ShapeError(`avgPool2d: input must be 3-d or 4-d, got [${x.shape}]`);
  const a = { kernel: pair(kernel), stride: pair(o.stride ?? kernel), padding: pair(o.padding ?? 0), ceilMode: o.ceilMode ?? false, countIncludePad: o.countIncludePad ?? true };
  return rec('avgPool2d', [x], a, new Tensor(call('avgPool2d', x.h, a.kernel, a.stride, a.padding, a.ceilMode, a.countIncludePad)));
}

export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  return rec('adaptiveAvgPool2d', [x], { outputSize: pair(outputSize) }, new Tensor(call('adaptiveAvgPool2d', x.h, pair(outputSize))));
}

export interface BatchNormOptions {
  weight?: Tensor | null; bias?: Tensor | null; runningMean?: Tensor | null; runningVar?: Tensor | null;
  training?: boolean; momentum?: number; eps?: number;
}
/** Batch normalization; in training mode it updates runningMean and runningVar in place, as PyTorch does. */
export function batchNorm(x: Tensor, o: BatchNormOptions = {}): Tensor {
  const training = o.training ?? false;
  if (!training && (!o.runningMean || !o.runningVar)) throw new ArgumentError('batchNorm: eval mode needs runningMean and runningVar');
  return rec('batchNorm', [x, o.weight ?? null, o.bias ?? null, o.runningMean ?? null, o.runningVar ?? null], { training, eps: o.eps ?? 1e-5, momentum: o.momentum ?? 0.1 },
    new Tensor(call('batchNorm', x.h, o.weight?.h ?? null, o.bias?.h ?? null, o.runningMean?.h ?? null, o.runningVar?.h ?? null,
      training, o.momentum ?? 0.1, o.eps ?? 1e-5)));
}

export function layerNorm(x: Tensor, shape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return rec('layerNorm', [x, weight ?? null, bias ?? null], { normalizedShape: shape, eps }, new Tensor(call('layerNorm', x.h, shape, weight?.h ?? null, bias?.h ?? null, eps)));
}

export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  if (!(p >= 0 && p <= 1)) throw new ArgumentError(`dropout: p must be in [0, 1], got ${p}`);
  return rec('dropout', [x], { p, training }, new Tensor(call('dropout', x.h, p, training)));
}

export const relu = (x: Tensor): Tensor => x.relu();
export const sigmoid = (x: Tensor): Tensor => x.sigmoid();
export const tanh = (x: Tensor): Tensor => x.tanh();
export function leakyRelu(x: Tensor, slope = 0.01): Tensor { return rec('leakyRelu', [x], { slope }, new Tensor(call('leakyRelu', x.h, slope))); }
export function gelu(x: Tensor): Tensor { return rec('gelu', [x], {}, new Tensor(call('gelu', x.h))); }
export function softmax(x: Tensor, dim = -1): Tensor { return rec('softmax', [x], { dim }, new Tensor(call('softmax', x.h, dim))); }
export function logSoftmax(x: Tensor, dim = -1): Tensor { return rec('logSoftmax', [x], { dim }, new Tensor(call('logSoftmax', x.h, dim))); }

export type Reduction = 'mean' | 'sum' | 'none';
export interface CrossEntropyOptions { weight?: Tensor | null; reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number }

function checkClassTargets(op: string, logits: Tensor, target: Tensor): void {
  if (target.dtype !== 'int64') throw new DtypeError(`${op}: class targets must be int64, got ${target.dtype} (use .long())`);
  if (logits.shape[0] !== target.shape[0]) throw new ShapeError(`${op}: batch sizes differ: input [${logits.shape}] vs target [${target.shape}]`);
}

/** Cross-entropy over class indices (int64), with optional class weights and label smoothing. */
export function crossEntropy(logits: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  checkClassTargets('crossEntropy', logits, target);
  const ls = o.labelSmoothing ?? 0;
  if (!(ls >= 0 && ls <= 1)) throw new ArgumentError(`crossEntropy: labelSmoothing must be in [0, 1], got ${ls}`);
  return rec('crossEntropy', [logits, target, o.weight ?? null], {}, new Tensor(call('crossEntropy', logits.h, target.h, o.weight?.h ?? null, o.reduction ?? 'mean', o.ignoreIndex ?? -100, ls)));
}

export function nllLoss(logProbs: Tensor, target: Tensor, o: { weight?: Tensor | null; reduction?: Reduction; ignoreIndex?: number } = {}): Tensor {
  checkClassTargets('nllLoss', logProbs, target);
  return rec('nllLoss', [logProbs, target, o.weight ?? null], {}, new Tensor(call('nllLoss', logProbs.h, target.h, o.weight?.h ?? null, o.reduction ?? 'mean', o.ignoreIndex ?? -100)));
}

export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return rec('mseLoss', [input, target], {}, new Tensor(call('mseLoss', input.h, target.h, reduction)));
}

export function oneHot(indices: Tensor, numClasses = -1): Tensor {
  if (indices.dtype !== 'int64') throw new DtypeError(`oneHot: indices must be int64, got ${indices.dtype}`);
  return rec('oneHot', [indices], {}, new Tensor(call('oneHot', indices.h, numClasses)));
}

/** Sampling grid for 2-D affine transforms: theta [N, 2, 3], size [N, C, H, W]. */
export function affineGrid(theta: Tensor, size: number[], alignCorners = false): Tensor {
  const ts = theta.shape;
  if (ts.length !== 3 || ts[1] !== 2 || ts[2] !== 3) throw new ShapeError(`affineGrid: theta must be [N, 2, 3], got [${ts}]`);
  if (size.length !== 4 || size[0] !== ts[0]) throw new ShapeError(`affineGrid: size must be [N, C, H, W] with N = ${ts[0]}, got [${size}]`);
  if (!isFloating(theta.dtype)) throw new DtypeError(`affineGrid: theta must be floating point, got ${theta.dtype}`);
  return rec('affineGrid', [theta], {}, new Tensor(call('affineGrid', theta.h, size, alignCorners)));
}

const MODES = { bilinear: 0, nearest: 1 } as const;
const PADS = { zeros: 0, border: 1, reflection: 2 } as const;
export function gridSample(x: Tensor, grid: Tensor, o: { mode?: keyof typeof MODES; paddingMode?: keyof typeof PADS; alignCorners?: boolean } = {}): Tensor {
  const mode = MODES[o.mode ?? 'bilinear'], pad = PADS[o.paddingMode ?? 'zeros'];
  if (mode === undefined) throw new ArgumentError(`gridSample: unknown mode '${o.mode}' (bilinear, nearest)`);
  if (pad === undefined) throw new ArgumentError(`gridSample: unknown paddingMode '${o.paddingMode}' (zeros, border, reflection)`);
  return rec('gridSample', [x, grid], {}, new Tensor(call('gridSample', x.h, grid.h, mode, pad, o.alignCorners ?? false)));
}

export function pad(x: Tensor, pads: number[], value = 0): Tensor { return rec('pad', [x], { pads, value }, new Tensor(call('pad', x.h, pads, value))); }
