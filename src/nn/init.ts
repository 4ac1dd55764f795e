/** Initializers (in place, through libtorch's seeded generator, so manualSeed fixes them). */
import { ArgumentError } from '../core/errors.js';
import { noGrad } from '../tensor/autograd.js';
import type { Tensor } from '../tensor/tensor.js';

export type Nonlinearity = 'relu' | 'linear' | 'tanh' | 'sigmoid' | 'leaky_relu';
export type FanMode = 'fan_in' | 'fan_out';

export function fans(w: Tensor): { fanIn: number; fanOut: number } {
  const s = w.shape;
  if (s.length < 2) throw new ArgumentError(`init: fan in/out need a weight of 2 or more dims, got shape [${s}]`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: s[1] * receptive, fanOut: s[0] * receptive };
}

export function gain(nl: Nonlinearity, a = 0.01): number {
  switch (nl) {
    case 'relu': return Math.SQRT2;
    case 'tanh': return 5 / 3;
    case 'leaky_relu': return Math.sqrt(2 / (1 + a * a));
    default: return 1;
  }
}

export function uniform_(t: Tensor, lo: number, hi: number): Tensor { return noGrad(() => t.uniform_(lo, hi)); }
export function normal_(t: Tensor, mean: number, std: number): Tensor { return noGrad(() => t.normal_(mean, std)); }
export function zeros_(t: Tensor): Tensor { return noGrad(() => t.zero_()); }
export function ones_(t: Tensor): Tensor { return noGrad(() => t.fill_(1)); }

export function kaimingNormal_(w: Tensor, mode: FanMode = 'fan_in', nl: Nonlinearity = 'relu'): Tensor {
  const f = fans(w);
  return normal_(w, 0, gain(nl) / Math.sqrt(mode === 'fan_in' ? f.fanIn : f.fanOut));
}
export function kaimingUniform_(w: Tensor, mode: FanMode = 'fan_in', nl: Nonlinearity = 'relu', a = 0): Tensor {
  const f = fans(w);
  const bound = Math.sqrt(3) * gain(nl, a) / Math.sqrt(mode === 'fan_in' ? f.fanIn : f.fanOut);
  return uniform_(w, -bound, bound);
}
export function xavierUniform_(w: Tensor, g = 1): Tensor {
  const f = fans(w);
  const bound = g * Math.sqrt(6 / (f.fanIn + f.fanOut));
  return uniform_(w, -bound, bound);
}
export function xavierNormal_(w: Tensor, g = 1): Tensor {
  const f = fans(w);
  return normal_(w, 0, g * Math.sqrt(2 / (f.fanIn + f.fanOut)));
}

/** PyTorch's default for Linear and Conv: kaiming_uniform(a = sqrt 5) on the weight, U(+-1/sqrt(fan_in)) on the bias. */
export function pytorchDefault_(w: Tensor, b?: Tensor | null): void {
  kaimingUniform_(w, 'fan_in', 'leaky_relu', Math.sqrt(5));
  if (b) {
    const bound = 1 / Math.sqrt(fans(w).fanIn);
    uniform_(b, -bound, bound);
  }
}

export type InitName = 'default' | 'kaiming_normal' | 'kaiming_normal_fan_out' | 'kaiming_uniform' | 'xavier_uniform' | 'xavier_normal';
export const INIT_NAMES: InitName[] = ['default', 'kaiming_normal', 'kaiming_normal_fan_out', 'kaiming_uniform', 'xavier_uniform', 'xavier_normal'];

/** Re-initialize a weight (and zero its bias unless 'default') by scheme name. */
export function initWeight(name: InitName, w: Tensor, b?: Tensor | null): void {
  switch (name) {
    case 'default': pytorchDefault_(w, b); return;
    case 'kaiming_normal': kaimingNormal_(w, 'fan_in'); break;
    case 'kaiming_normal_fan_out': kaimingNormal_(w, 'fan_out'); break;
    case 'kaiming_uniform': kaimingUniform_(w, 'fan_in'); break;
    case 'xavier_uniform': xavierUniform_(w); break;
    case 'xavier_normal': xavierNormal_(w); break;
    default: throw new ArgumentError(`unknown init '${name as string}' (known: ${INIT_NAMES.join(', ')})`);
  }
  if (b) zeros_(b);
}
