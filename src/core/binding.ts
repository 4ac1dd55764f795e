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

const INSTALL_LIBTORCH = 'install libtorch with `sudo apt-get install libtorch-dev libopenblas0-pthread` (Debian/Ubuntu), ' +
  'or build the addon against an official libtorch with `LIBTORCH=<folder> npm run build:native`';

/**
 * One sentence for an addon that did not load. The dynamic linker's "libX.so: cannot open shared
 * object file" for a libtorch (or its BLAS) library becomes "libtorch is missing: install ...".
 */
export function loadFailureMessage(file: string, e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const lib = /(lib(?:torch\w*|c10\w*|openblas|blas|fmt|gomp|sleef)[\w.+-]*\.so[\w.]*): cannot open shared object file/.exec(msg);
  if (lib) return `the libtorch addon (${file}) needs ${lib[1]}, which is not installed: ${INSTALL_LIBTORCH}`;
  const other = /([\w.+-]+\.so[\w.]*): cannot open shared object file/.exec(msg);
  if (other) return `the libtorch addon (${file}) needs the shared library ${other[1]}, which is not installed; rebuild it for this machine with \`npm run build:native\``;
  if (/undefined symbol|version `[^']+' not found|wrong ELF class|invalid ELF header/.test(msg)) {
    return `the libtorch addon (${file}) does not match this machine's libtorch or C library (${msg.split('\n')[0].slice(-160)}); ` +
      'rebuild it with `npm run build:native`';
  }
  return `the libtorch addon failed to load (${file}): ${msg.split('\n')[0]}. Rebuild it with \`npm run build:native\``;
}

/**
 * The addon through node-gyp-build: a local build/Release (`npm run build:native`, a checkout's
 * build, a $LIBTORCH or CUDA build) first, then the prebuilt prebuilds/<platform>-<arch>/ that the
 * package ships (built against Debian's libtorch). Failures are one NativeLoadError sentence.
 */
export function loadAddon(root: string): Record<string, NativeFn> {
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  let file: string;
  try {
    file = nodeGypBuild.resolve(root);
  } catch {
    throw new NativeLoadError(`the libtorch addon is not built (neither ${join(root, 'build/Release')} nor ` +
      `${join(root, 'prebuilds', `${process.platform}-${process.arch}`)} holds one): build it with \`npm run build:native\`, which needs ` +
      'libtorch (`sudo apt-get install libtorch-dev libopenblas0-pthread`, or LIBTORCH=<folder> for an official build)');
  }
  try {
    return require(file) as Record<string, NativeFn>;
  } catch (e) {
    throw new NativeLoadError(loadFailureMessage(file, e), { cause: e });
  }
}

function load(): Record<string, NativeFn> {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/core or dist/core: the package root is two folders up.
  return loadAddon([join(here, '../..'), join(here, '../../..')].find((r) => existsSync(join(r, 'package.json')))!);
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
