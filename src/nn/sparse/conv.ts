/**
 * A sparse Conv2d path for inference (native/src/ops_sparse.cc, sparseConv2d), bias applied in the
 * same pass. Stride 1, no dilation: direct, each nonzero weight adds its shifted input plane to its
 * output plane (no unfolding). Otherwise the input is unfolded (im2col) and multiplied by the CSR
 * weight [out, in*kh*kw] in blocks of 16 output positions. Chosen
 * by `Conv2d.forward` in eval mode with gradients off, only where SPARSE_CONV_RULE (measured) says
 * it is faster than libtorch's dense convolution.
 */
import { call, type Handle } from '../../core/binding.js';
import { ShapeError } from '../../core/errors.js';
import { recorder } from '../../tensor/record.js';
import { Tensor } from '../../tensor/tensor.js';
import { sparseInferenceEnabled } from './linear.js';

export interface ConvGeometry { stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number }

/**
 * The measured rule for convolutions: the sparse path runs when the weight has at least
 * `minElements` elements and at most `maxDensity` of them are nonzero. Set from
 * `node --import tsx bench/sparse-linear.ts --part conv` (docs/benchmarks.md, "Sparse inference"):
 * LeNet-5's conv1 [20, 1, 5, 5] and conv2 [50, 20, 5, 5], a 1x1 [64, 64] and a 3x3 [64, 64] conv at
 * densities 2, 5, 10 and 20%, batches 1 and 128. At 2% every one was faster (1.29x to 10x); at 5% the
 * 3x3 [64, 64] at batch 128 was slower (0.46x) and the 1x1 even (0.99x). conv1, the smallest (500
 * elements), was faster at every density measured (2.1x to 10x: oneDNN's conv of a single input
 * channel is slow), so the size floor is 500 elements.
 */
export const SPARSE_CONV_RULE: { maxDensity: number; minElements: number } = { maxDensity: 0.02, minElements: 500 };

/** Conv2d's automatic path: the sparse result, or null to run the dense convolution. */
export function autoSparseConv2d(x: Tensor, weight: Tensor, bias: Tensor | null, o: ConvGeometry): Tensor | null {
  if (!sparseInferenceEnabled() || recorder !== null || weight.numel < SPARSE_CONV_RULE.minElements) return null;
  const h = call('sparseConv2d', x.h, weight.h, bias ? bias.h : null, o.stride, o.padding, o.dilation, o.groups, SPARSE_CONV_RULE.maxDensity, false, true) as Handle | null;
  return h === null ? null : new Tensor(h);
}

/** The convolution through the sparse kernel whatever the density (groups 1; no autograd: inference only). */
export function sparseConv2d(x: Tensor, weight: Tensor, bias: Tensor | null, o: Partial<ConvGeometry> = {}): Tensor {
  const g: ConvGeometry = { stride: o.stride ?? [1, 1], padding: o.padding ?? [0, 0], dilation: o.dilation ?? [1, 1], groups: o.groups ?? 1 };
  if (x.ndim !== 4 || weight.ndim !== 4) throw new ShapeError(`sparseConv2d: input [B, C, H, W] and weight [O, C, kh, kw] expected, got [${x.shape}] and [${weight.shape}]`);
  return new Tensor(call('sparseConv2d', x.h, weight.h, bias ? bias.h : null, g.stride, g.padding, g.dilation, g.groups, 1, false, false) as Handle);
}
