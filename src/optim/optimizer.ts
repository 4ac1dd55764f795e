/** Optimizers: SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW; state saves and loads. */
import { call } from '../core/binding.js';
import { ArgumentError, SerializationError } from '../core/errors.js';
import { noGrad } from '../tensor/autograd.js';
import { zerosLike } from '../tensor/creation.js';
import { keep } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

export type NamedParams = [string, Tensor][];

function nonNeg(op: string, name: string, v: number): number {
  if (!(Number.isFinite(v) && v >= 0)) throw new ArgumentError(`${op}: ${name} must be a non-negative number, got ${v}`);
  return v;
}

export abstract class Optimizer {
  readonly params: NamedParams;
  /** The current learning rate (schedules set it each epoch). */
  lr: number;
  readonly baseLr: number;
  protected state = new Map<string, Record<string, Tensor>>();
  stepCount = 0;

  constructor(params: NamedParams | Tensor[], lr: number) {
    this.params = params.map((p, i) => (Array.isArray(p) ? p : [String(i), p]));
    if (!(lr > 0 && Number.isFinite(lr))) throw new ArgumentError(`optimizer: lr must be a positive number, got ${lr}`);
    this.lr = lr;
    this.baseLr = lr;
  }

  zeroGrad(): void { for (const [, p] of this.params) p.grad = null; }

  abstract step(): void;

  protected buffer(name: string, key: string, like: Tensor): Tensor {
    let s = this.state.get(name);
    if (!s) this.state.set(name, (s = {}));
    return (s[key] ??= keep(zerosLike(like, { requiresGrad: false })));
  }

  /** Tensors (`<param>.<key>`) and the JSON-able scalars needed to resume exactly. */
  stateDict(): { tensors: Record<string, Tensor>; meta: { lr: number; stepCount: number } } {
    const tensors: Record<string, Tensor> = {};
    for (const [n, s] of this.state) for (const [k, t] of Object.entries(s)) tensors[`${n}.${k}`] = t;
    return { tensors, meta: { lr: this.lr, stepCount: this.stepCount } };
  }

  loadStateDict(sd: { tensors: Record<string, Tensor>; meta: { lr: number; stepCount: number } }): void {
    const names = new Set(this.params.map(([n]) => n));
    noGrad(() => {
      for (const [key, t] of Object.entries(sd.tensors)) {
        const dot = key.lastIndexOf('.');
        const n = key.slice(0, dot), k = key.slice(dot + 1);
        if (!names.has(n)) throw new SerializationError(`optimizer state names parameter '${n}', which this optimizer does not have`);
        const p = this.params.find(([pn]) => pn === n)![1];
        this.buffer(n, k, p).copy_(t);
      }
    });
    this.lr = sd.meta.lr;
    this.stepCount = sd.meta.stepCount;
  }

  dispose(): void {
    for (const s of this.state.values()) for (const t of Object.values(s)) t.dispose();
    this.state.clear();
  }
}

export interface SgdOptions { lr: number; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number }

/** PyTorch's SGD, one fused native call per step over all parameters. */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  constructor(params: NamedParams | Tensor[], o: SgdOptions) {
    super(params, o.lr);
    this.momentum = nonNeg('SGD', 'momentum', o.momentum ?? 0);
    this.dampening = nonNeg('SGD', 'dampening', o.dampening ?? 0);
    this.weightDecay = nonNeg('SGD', 'weightDecay', o.weightDecay ?? 0);
    this.nesterov = o.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new ArgumentError('SGD: nesterov needs momentum > 0 and dampening 0');
  }
  step(): void {
    const ps: unknown[] = [], gs: unknown[] = [], bs: unknown[] = [];
    const grads: Tensor[] = [];
    for (const [n, p] of this.params) {
      const g = p.grad;
      if (!g) continue;
      grads.push(g);
      ps.push(p.h);
      gs.push(g.h);
      if (this.momentum !== 0) bs.push(this.buffer(n, 'momentum_buffer', p).h);
      else bs.push(p.h); // unused by the native step when momentum is 0
    }
    call('sgdStep', ps, gs, bs, this.lr, this.momentum, this.dampening, this.weightDecay, this.nesterov, this.stepCount === 0);
    for (const g of grads) g.dispose();
    this.stepCount++;
  }
}

export interface AdamOptions { lr: number; betas?: [number, number]; eps?: number; weightDecay?: number }

/** Adam (L2 weight decay added to the gradient) and, with decoupled = true, AdamW. */
export class Adam extends Optimizer {
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  constructor(params: NamedParams | Tensor[], o: AdamOptions, readonly decoupled = false) {
    super(params, o.lr);
    this.betas = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = nonNeg('Adam', 'weightDecay', o.weightDecay ?? (decoupled ? 0.01 : 0));
    for (const b of this.betas) if (!(b >= 0 && b < 1)) throw new ArgumentError(`Adam: betas must be in [0, 1), got [${this.betas}]`);
  }
  step(): void {
    this.stepCount++;
    const [b1, b2] = this.betas;
    const bc1 = 1 - b1 ** this.stepCount, bc2 = 1 - b2 ** this.stepCount;
    noGrad(() => {
      for (const [n, p] of this.params) {
        const g0 = p.grad;
        if (!g0) continue;
        let g = g0;
        if (this.weightDecay !== 0) {
          if (this.decoupled) p.mul_(1 - this.lr * this.weightDecay);
          else g = g0.add(p, this.weightDecay);
        }
        const m = this.buffer(n, 'exp_avg', p), v = this.buffer(n, 'exp_avg_sq', p);
        m.mul_(b1).add_(g, 1 - b1);
        v.mul_(b2).addcmul_(g, g, 1 - b2);
        const denom = v.sqrt();
        denom.div_(Math.sqrt(bc2)).add_(this.eps);
        p.addcdiv_(m, denom, -this.lr / bc1);
        denom.dispose();
        if (g !== g0) g.dispose();
        g0.dispose();
      }
    });
  }
}

export class AdamW extends Adam {
  constructor(params: NamedParams | Tensor[], o: AdamOptions) { super(params, o, true); }
}
