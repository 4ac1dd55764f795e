/** Autograd over libtorch's engine: grad mode, and gradients of outputs with respect to inputs. */
import { call, type Handle } from '../core/binding.js';
import { ArgumentError } from '../core/errors.js';
import { Tensor } from './tensor.js';

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev = call('setGradEnabled', enabled) as boolean;
  try {
    const r = fn();
    if (r instanceof Promise) throw new ArgumentError('noGrad/enableGrad: fn must be synchronous');
    return r;
  } finally {
    call('setGradEnabled', prev);
  }
}

/** Run fn with gradient recording off (evaluation, masking, optimizer updates). */
export function noGrad<T>(fn: () => T): T { return withGradMode(false, fn); }
/** Run fn with gradient recording on, even inside noGrad. */
export function enableGrad<T>(fn: () => T): T { return withGradMode(true, fn); }
export function isGradEnabled(): boolean { return call('isGradEnabled') as boolean; }

export interface GradOptions {
  gradOutputs?: Tensor[];
  /** Keep the graph for another backward (defaults to createGraph). */
  retainGraph?: boolean;
  /** Record the gradient computation itself, for second derivatives (Hessian-vector products). */
  createGraph?: boolean;
  /** Return null for inputs the outputs do not depend on, instead of throwing. */
  allowUnused?: boolean;
}

/** Gradients of `outputs` with respect to `inputs`, as torch.autograd.grad. */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  if (opts.gradOutputs && opts.gradOutputs.length !== outs.length) {
    throw new ArgumentError(`grad: ${opts.gradOutputs.length} gradOutputs given for ${outs.length} outputs`);
  }
  const res = call('autogradGrad', outs.map((t) => t.h), ins.map((t) => t.h), opts.gradOutputs ? opts.gradOutputs.map((t) => t.h) : null,
    opts.retainGraph ?? null, opts.createGraph ?? false, opts.allowUnused ?? false) as (Handle | null)[];
  return res.map((h) => (h === null ? null : new Tensor(h)));
}
