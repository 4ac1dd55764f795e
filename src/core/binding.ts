/**
 * The only importer of the compiled addon. Every native call goes through `call`, which turns
 * the guard's plain JS errors into typed TopiaryErrors that name the op.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ArgumentError, DisposedTensorError, DtypeError, EngineError, NativeLoadError, ShapeError, TopiaryError,
} from './errors.js';

/** An opaque native handle (a napi External holding one torch::Tensor). */
export type Handle = { readonly __handle: unique symbol };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type NativeFn = (...args: any[]) => any;

function load(): Record<string, NativeFn> {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = [join(here, '../..'), join(here, '../../..')].find((r) => existsSync(join(r, 'package.json')))!;
  const file = join(root, 'build/Release/topiary_native.node');
  if (!existsSync(file)) {
    throw new NativeLoadError(`the libtorch addon is not built (${file} is missing): run \`npm run build:native\` ` +
      '(it needs libtorch: `sudo apt-get install libtorch-dev libopenblas0-pthread`, or LIBTORCH=<folder>)');
  }
  try {
    return createRequire(import.meta.url)(file) as Record<string, NativeFn>;
  } catch (e) {
    throw new NativeLoadError(`the libtorch addon failed to load (${file}): ${(e as Error).message}. ` +
      'Rebuild it with `npm run build:native`.', { cause: e });
  }
}

export const native: Record<string, NativeFn> = load();

// Ordered rules from libtorch's messages to the typed errors: the first match wins. Dtype comes
// first (its messages may mention sizes), then arguments out of range (their messages say "size"
// too: "index 5 is out of bounds for dimension 1 with size 3"), then shapes.
const DTYPE = /dtype|scalar type|ScalarType|not implemented for '|can't be cast|result type|floating point|must be either float|Only Tensors of floating/i;
const ARGUMENT = new RegExp([
  'out of range', 'out of bounds', 'exceeds dimension size', 'must be non-negative', 'must be positive', 'must be smaller than',
  'must be greater', 'greater or equal', 'to be greater than', 'must be in the range', 'to be in \\[', 'must be even', 'step must be',
  'invalid multinomial', 'invalid argument', 'unknown reduction', 'must be (an integer|a number|a string|an array)', 'is missing',
  'must be a tensor', 'expected a number', 'device type', 'device string', 'not linked with support', "from the '\\w+' backend",
].join('|'), 'i');
const SHAPE = /shape|size|dimension|dims|cannot be multiplied|must match|broadcast|numel|expand|invalid for input|Expected \d+D|expected \d+D|channels|elements/i;

/** Map a native error message to the typed error a caller can catch. */
export function mapError(op: string, e: unknown): TopiaryError {
  if (e instanceof TopiaryError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const text = msg.startsWith(op + ':') ? msg : `${op}: ${msg}`;
  if (/was disposed/.test(msg)) return new DisposedTensorError(`${op}: a tensor was used after dispose()`);
  if (DTYPE.test(msg)) return new DtypeError(text, { cause: e });
  if (ARGUMENT.test(msg)) return new ArgumentError(text, { cause: e });
  if (SHAPE.test(msg)) return new ShapeError(text, { cause: e });
  if (e instanceof TypeError) return new ArgumentError(text, { cause: e });
  return new EngineError(text, { cause: e });
}

/** Call a native op by name; errors come back typed. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function call(op: string, ...args: any[]): any {
  const fn = native[op];
  if (fn === undefined) throw new EngineError(`no native op named '${op}'`);
  try {
    return fn(...args);
  } catch (e) {
    throw mapError(op, e);
  }
}
