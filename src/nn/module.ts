/**
 * Module: named parameters, buffers and children by dot paths (`features.0.weight`), train/eval,
 * state dicts, forward hooks. Parameters and buffers are kept tensors: owned by the module, never
 * freed by a scope.
 */
import { ConfigError, DtypeError, ShapeError, SerializationError } from '../core/errors.js';
import { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';

/** At most ten names, then how many more: a file with 300,000 tensors must not make a 2.6 MB error line. */
function names(list: string[], max = 10): string {
  return list.length <= max ? list.join(', ') : `${list.slice(0, max).join(', ')} and ${list.length - max} more`;
}

export type ForwardHook = (module: Module, input: Tensor, output: Tensor) => Tensor | void;

export abstract class Module {
  training = true;
  protected readonly _params = new Map<string, Tensor>();
  protected readonly _buffers = new Map<string, Tensor>();
  protected readonly _children = new Map<string, Module>();
  private readonly _hooks: ForwardHook[] = [];

  abstract forward(x: Tensor): Tensor;

  /** forward(x), then the forward hooks (a hook may replace the output). */
  call(x: Tensor): Tensor {
    let y = this.forward(x);
    for (const h of this._hooks) {
      const r = h(this, x, y);
      if (r instanceof Tensor) y = r;
    }
    return y;
  }

  /** Returns a function that removes the hook. */
  registerForwardHook(h: ForwardHook): () => void {
    this._hooks.push(h);
    return () => {
      const i = this._hooks.indexOf(h);
      if (i >= 0) this._hooks.splice(i, 1);
    };
  }

  protected registerParameter(name: string, t: Tensor): Tensor {
    keep(t);
    if (!t.requiresGrad) t.requiresGrad_(true);
    this._params.set(name, t);
    return t;
  }
  protected registerBuffer(name: string, t: Tensor): Tensor {
    keep(t);
    this._buffers.set(name, t);
    return t;
  }
  protected registerModule<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /** Replace a parameter's tensor (same name), e.g. when a model is physically shrunk. */
  setParameter(name: string, t: Tensor): void {
    const [owner, leaf] = this.resolve(name);
    const old = owner._params.get(leaf);
    if (!old) throw new ConfigError(`setParameter: no parameter named '${name}'`);
    owner.registerParameter(leaf, t);
    if (old !== t) old.dispose();
  }
  setBuffer(name: string, t: Tensor): void {
    const [owner, leaf] = this.resolve(name);
    const old = owner._buffers.get(leaf);
    if (!old) throw new ConfigError(`setBuffer: no buffer named '${name}'`);
    owner.registerBuffer(leaf, t);
    if (old !== t) old.dispose();
  }
  private resolve(name: string): [Module, string] {
    const parts = name.split('.');
    let m: Module = this;
    for (const p of parts.slice(0, -1)) {
      const c = m._children.get(p);
      if (!c) throw new ConfigError(`no submodule '${p}' on the path '${name}'`);
      m = c;
    }
    return [m, parts[parts.length - 1]];
  }

  namedChildren(): [string, Module][] { return [...this._children.entries()]; }
  children(): Module[] { return [...this._children.values()]; }
  /** This module and every descendant, depth first, with dot-path names ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this._children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }
  modules(): Module[] { return this.namedModules().map(([, m]) => m); }
  getModule(path: string): Module {
    if (path === '') return this;
    const [owner, leaf] = this.resolve(path);
    const m = owner._children.get(leaf);
    if (!m) throw new ConfigError(`no submodule named '${path}'`);
    return m;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this._params) out.push([prefix ? `${prefix}.${n}` : n, p]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(prefix ? `${prefix}.${n}` : n));
    return out;
  }
  parameters(): Tensor[] { return this.namedParameters().map(([, p]) => p); }
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this._buffers) out.push([prefix ? `${prefix}.${n}` : n, b]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(prefix ? `${prefix}.${n}` : n));
    return out;
  }
  /** Parameter count (elements). */
  numParameters(): number { return this.parameters().reduce((s, p) => s + p.numel, 0); }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this { return this.train(false); }

  /** Parameters and buffers by name: the module's own tensors, not copies (clone to snapshot). */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Copy values in. Strict by default: missing, unexpected or misshapen entries are errors naming them. */
  loadStateDict(sd: Record<string, Tensor>, strict = true): { missing: string[]; unexpected: string[] } {
    const own = this.stateDict();
    const missing = Object.keys(own).filter((k) => !(k in sd));
    const unexpected = Object.keys(sd).filter((k) => !(k in own));
    if (strict && (missing.length || unexpected.length)) {
      throw new SerializationError(`loadStateDict: ${missing.length ? `missing ${names(missing)}` : ''}` +
        `${missing.length && unexpected.length ? '; ' : ''}${unexpected.length ? `unexpected ${names(unexpected)}` : ''}`);
    }
    for (const [k, t] of Object.entries(own)) {
      const src = sd[k];
      if (!src) continue;
      if (src.shape.join(',') !== t.shape.join(',')) {
        throw new ShapeError(`loadStateDict: '${k}' has shape [${src.shape}] in the state dict but [${t.shape}] in the model`);
      }
      // copy_ would convert silently: a bool mask or bytes relabelled as I32 would load as weights.
      if (src.dtype !== t.dtype) {
        throw new DtypeError(`loadStateDict: '${k}' is ${src.dtype} in the state dict but ${t.dtype} in the model`);
      }
    }
    noGrad(() => {
      for (const [k, t] of Object.entries(own)) if (sd[k]) t.copy_(sd[k]);
    });
    return { missing, unexpected };
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  to(device: string): this {
    noGrad(() => {
      for (const m of this.modules()) {
        for (const [n, p] of m._params) {
          if (p.device === device) continue;
          const q = p.to(device).detach();
          m._params.set(n, keep(q).requiresGrad_(true));
          p.dispose();
        }
        for (const [n, b] of m._buffers) {
          if (b.device === device) continue;
          m._buffers.set(n, keep(b.to(device)));
          b.dispose();
        }
      }
    });
    return this;
  }

  /** Free every parameter and buffer. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
  }

  /** Short name for printing: the class name. */
  get typeName(): string { return this.constructor.name; }
}
