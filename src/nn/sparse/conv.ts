/**
 * A sparse Conv2d path for inference: the input unfolded (im2col; a 1x1 conv with stride 1 and no
 * padding reads the input as is) and multiplied by the CSR weight [out, in*kh*kw] in blocks of 16
 * output positions (native/src/ops_sparse.cc, sparseConv2d), bias applied in the same pass. Chosen
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
 * `node --import tsx bench/sparse-linear.ts --part conv` (docs/benchmarks.md, "Sparse inference").
 */
export const SPARSE_CONV_RULE: { maxDensity: number; minElements: number } = { maxDensity: 0.05, minElements: 4096 };

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
