/**
 * Scoped memory, as in tfjs: every op result joins the innermost scope; `tidy(fn)` frees what
 * `fn` made and did not return or keep, also when `fn` throws. Garbage collection is only a safety net.
 */
import { call } from '../core/binding.js';
import { ArgumentError } from '../core/errors.js';

/** What a scope needs of a tensor (kept structural to avoid an import cycle with tensor.ts). */
export interface Scoped {
  kept: boolean;
  dispose(): void;
  readonly isDisposed: boolean;
  /** Report the tensor's bytes to V8 once it outlives every scope (see native Box::reported). */
  escape?(): void;
}

const scopes: Scoped[][] = [];

/** Called by every Tensor constructor. */
export function track(t: Scoped): void {
  const s = scopes[scopes.length - 1];
  if (s !== undefined) s.push(t);
}

function collect(x: unknown, out: Set<unknown>, depth = 0): void {
  if (x === null || x === undefined || depth > 4) return;
  if (typeof x !== 'object') return;
  if ((x as Scoped).kept !== undefined && typeof (x as Scoped).dispose === 'function') {
    out.add(x);
    return;
  }
  if (Array.isArray(x)) {
    for (const v of x) collect(v, out, depth + 1);
  } else if (x instanceof Map) {
    for (const v of x.values()) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(x) === Object.prototype) {
    for (const v of Object.values(x as object)) collect(v, out, depth + 1);
  }
}

/**
 * Run `fn` in a new scope. Tensors it returns (directly, or inside arrays, maps and plain objects)
 * move to the enclosing scope; all others it created are disposed.
 */
export function tidy<T>(fn: () => T): T {
  scopes.push([]);
  call('setScopeDepth', scopes.length);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    const made = scopes.pop()!;
    call('setScopeDepth', scopes.length);
    for (const t of made) if (!t.kept) t.dispose();
    throw e;
  }
  const made = scopes.pop()!;
  call('setScopeDepth', scopes.length);
  if (result instanceof Promise) {
    for (const t of made) if (!t.kept) t.dispose();
    throw new ArgumentError('tidy: fn must be synchronous (it returned a Promise); dispose tensors by hand in async code');
  }
  const returned = new Set<unknown>();
  collect(result, returned);
  for (const t of made) {
    if (t.kept || t.isDisposed) continue;
    if (returned.has(t)) {
      track(t);
      if (scopes.length === 0) t.escape?.();
    } else t.dispose();
  }
  return result;
}

/** Exempt a tensor from every scope: it lives until dispose() (or garbage collection). */
export function keep<T extends Scoped>(t: T): T {
  if (!t.kept) t.escape?.();
  t.kept = true;
  return t;
}

/** Dispose tensors, or any arrays / plain objects / maps of them. Safe twice. */
export function dispose(x: unknown): void {
  const s = new Set<unknown>();
  collect(x, s);
  for (const t of s) (t as Scoped).dispose();
}

export interface MemoryInfo {
  /** Native tensors alive (not disposed nor collected). */
  tensors: number;
  /** Bytes of their elements (views count their own elements). */
  bytes: number;
  /** How many tidy scopes are open. */
  scopes: number;
}

export function memory(): MemoryInfo {
  const m = call('memoryStats') as { tensors: number; bytes: number };
  return { tensors: m.tensors, bytes: m.bytes, scopes: scopes.length };
}
