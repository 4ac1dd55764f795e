/**
 * Masks keyed by parameter name, with the invariants of torch.nn.utils.prune: a mask is a bool
 * tensor of the weight's shape; weights are masked in place before the forward pass and again after
 * each optimizer step (so momentum and weight decay cannot revive them), and gradients are masked
 * after backward. Masks only ever shrink through `intersect`.
 */
import { ArgumentError, ConfigError, ShapeError } from '../core/errors.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { onesLike } from '../tensor/creation.js';
import { keep } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Callback, StepContext } from '../train/loop.js';

export type PrunableFilter = (name: string, p: Tensor) => boolean;

/** Default: every weight with more than one dimension (conv and linear, first and last layers included). */
export const defaultPrunable: PrunableFilter = (name, p) => p.ndim > 1 && name.endsWith('weight');

export function prunableParameters(model: Module, filter: PrunableFilter = defaultPrunable): [string, Tensor][] {
  const ps = model.namedParameters().filter(([n, p]) => filter(n, p));
  if (ps.length === 0) throw new ConfigError('the model has nothing prunable (no parameter passes the prunable filter)');
  return ps;
}

export class MaskSet {
  /** name -> bool mask of the parameter's shape (kept tensors owned by this set). */
  readonly masks = new Map<string, Tensor>();
  readonly params = new Map<string, Tensor>();
  /**
   * Float copies of the masks in each parameter's dtype, for the multiplies: mul_ by a bool tensor
   * converts it on every call (about 5x slower, which made per-step masking cost 15% of a LeNet
   * epoch). Keyed by the mask tensor, so a replaced mask is never used stale.
   */
  private readonly mults = new Map<string, { mask: Tensor; mult: Tensor }>();

  constructor(model: Module, filter: PrunableFilter = defaultPrunable) {
    for (const [n, p] of prunableParameters(model, filter)) {
      this.params.set(n, p);
      this.masks.set(n, keep(onesLike(p, { dtype: 'bool', requiresGrad: false })));
    }
  }

  get names(): string[] { return [...this.masks.keys()]; }

  get(name: string): Tensor {
    const m = this.masks.get(name);
    if (!m) throw new ArgumentError(`no mask for '${name}' (masked: ${this.names.join(', ')})`);
    return m;
  }

  /** Replace a mask (takes ownership of `m`, a bool tensor of the parameter's shape). */
  set(name: string, m: Tensor): void {
    const old = this.get(name);
    const p = this.params.get(name)!;
    if (m.shape.join(',') !== p.shape.join(',')) throw new ShapeError(`mask for '${name}' has shape [${m.shape}], the parameter [${p.shape}]`);
    const b = m.dtype === 'bool' ? m : m.to('bool');
    if (b !== m) m.dispose();
    keep(b);
    if (old !== b) old.dispose();
    this.masks.set(name, b);
    this.dropMultiplier(name);
  }

  /** The mask as a 0/1 tensor of the parameter's dtype (cached; owned by this set). */
  private multiplier(name: string, m: Tensor): Tensor {
    const c = this.mults.get(name);
    if (c && c.mask === m && !c.mult.isDisposed) return c.mult;
    this.dropMultiplier(name);
    const mult = keep(noGrad(() => m.to(this.params.get(name)!.dtype)));
    this.mults.set(name, { mask: m, mult });
    return mult;
  }

  private dropMultiplier(name: string): void {
    this.mults.get(name)?.mult.dispose();
    this.mults.delete(name);
  }

  /** new = old AND m: sparsity only grows. */
  intersect(name: string, m: Tensor): void {
    const old = this.get(name);
    const both = old.logicalAnd(m.dtype === 'bool' ? m : m.ne(0));
    this.set(name, both);
  }

  /** Zero the pruned weights in place. */
  applyToWeights(): void {
    noGrad(() => { for (const [n, m] of this.masks) this.params.get(n)!.mul_(this.multiplier(n, m)); });
  }

  /** Zero the gradients of pruned weights in place. */
  applyToGrads(): void {
    noGrad(() => {
      for (const [n, m] of this.masks) {
        const g = this.params.get(n)!.grad;
        if (g) { g.mul_(this.multiplier(n, m)); g.dispose(); }
      }
    });
  }

  /** Counts: total and kept weights, overall and per layer. */
  counts(): { total: number; kept: number; layers: { name: string; total: number; kept: number; sparsity: number }[] } {
    let total = 0, kept = 0;
    const layers = [];
    for (const [n, m] of this.masks) {
      const t = m.numel;
      const c = m.countNonzero();
      const k = c.item();
      c.dispose();
      total += t; kept += k;
      layers.push({ name: n, total: t, kept: k, sparsity: t ? 1 - k / t : 0 });
    }
    return { total, kept, layers };
  }

  sparsity(): number {
    const c = this.counts();
    return c.total ? 1 - c.kept / c.total : 0;
  }

  /** The masks as tensors for a checkpoint (they stay owned by this set). */
  stateDict(): Record<string, Tensor> { return Object.fromEntries(this.masks); }

  loadStateDict(sd: Record<string, Tensor>): void {
    for (const n of this.names) {
      const t = sd[n];
      if (!t) throw new ShapeError(`mask state has no entry for '${n}'`);
      this.set(n, t.to('bool'));
    }
  }

  /**
   * The callback that enforces the masks during training, at all three points: weights before the
   * forward pass, gradients after backward, weights after the optimizer step.
   */
  callback(name = 'masks'): Callback {
    return {
      name,
      beforeForward: () => this.applyToWeights(),
      afterBackward: () => this.applyToGrads(),
      afterStep: () => this.applyToWeights(),
      stateDict: () => ({ tensors: this.stateDict(), json: null }),
      loadStateDict: (s) => this.loadStateDict(s.tensors),
    };
  }

  dispose(): void {
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
    for (const n of [...this.mults.keys()]) this.dropMultiplier(n);
  }
}

export type { StepContext };
