/**
 * File access for inputs that may be hostile or broken: paths read from a run folder must stay in
 * it (no `..`, no absolute path, no symlink leading out), and files are read only when they are
 * regular files no larger than a limit that fits their kind. A FIFO, a device such as /dev/zero or
 * an oversized file is refused with one line naming it, before a byte is read, so nothing hangs
 * and nothing grows without bound.
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { SerializationError } from './errors.js';

/** The error a caller wants (ConfigError for a recipe, DatasetError for data...); SerializationError by default. */
export type MakeError = (message: string, cause?: unknown) => Error;
const serialization: MakeError = (m, cause) => new SerializationError(m, cause === undefined ? undefined : { cause });

/** Size limits by kind of file. */
export const LIMITS = {
  /** A YAML or JSON recipe. */
  recipe: 1 << 20,
  /** Small JSON written by topiary in a run folder (run.json, latest.json, state.json, result.json). */
  json: 256 << 20,
  /** A safetensors file (model, optimizer, masks). */
  safetensors: 8 * 2 ** 30,
  /** A dataset file (IDX, CIFAR batch, archive). */
  dataset: 2 ** 31 - 1,
} as const;

const mib = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(n % (1 << 20) ? 1 : 0)} MiB` : `${n} bytes`);

function kindOf(mode: { isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean; isDirectory(): boolean }): string {
  if (mode.isDirectory()) return 'a directory';
  if (mode.isFIFO()) return 'a FIFO';
  if (mode.isCharacterDevice()) return 'a character device';
  if (mode.isBlockDevice()) return 'a block device';
  if (mode.isSocket()) return 'a socket';
  return 'not a regular file';
}

export interface ReadOptions {
  /** Largest accepted size in bytes. */
  maxBytes: number;
  /** What the file is, for messages ('recipe', 'checkpoint'...); the path is always named. */
  what?: string;
  error?: MakeError;
}

/**
 * Reads a regular file of at most `maxBytes`. Opened non-blocking, so a FIFO without a writer
 * does not hang the open; then fstat decides before any read.
 */
export function readRegularFile(path: string, o: ReadOptions): Buffer {
  const err = o.error ?? serialization;
  const label = o.what ? `${o.what} ${path}` : path;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw err(`${label}: cannot read (${code ?? (e as Error).message})`, e);
  }
  try {
    let st;
    try {
      st = fstatSync(fd);
    } catch (e) {
      throw err(`${label}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
    }
    if (!st.isFile()) throw err(`${label}: ${kindOf(st)}, not a regular file; refusing to read it`);
    if (st.size > o.maxBytes) throw err(`${label}: ${mib(st.size)}, more than the ${mib(o.maxBytes)} accepted for this kind of file`);
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    try {
      while (off < st.size) {
        const n = readSync(fd, buf, off, st.size - off, off);
        if (n === 0) break;
        off += n;
      }
    } catch (e) {
      throw err(`${label}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
    }
    // A file that shrank while being read returns what was there; one that grew is read to its fstat size.
    return off === st.size ? buf : buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** A regular file as UTF-8 text, at most `maxBytes`. */
export function readTextFile(path: string, o: ReadOptions): string {
  return readRegularFile(path, o).toString('utf8');
}

/** A JSON file (regular, at most `maxBytes`, LIMITS.json by default); bad JSON is an error naming the file. */
export function readJsonFile(path: string, o: Partial<ReadOptions> = {}): unknown {
  const err = o.error ?? serialization;
  const text = readTextFile(path, { maxBytes: o.maxBytes ?? LIMITS.json, what: o.what, error: err });
  try {
    return JSON.parse(text);
  } catch (e) {
    throw err(`${o.what ? `${o.what} ` : ''}${path}: not valid JSON (${(e as Error).message})`, e);
  }
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

const within = (root: string, p: string) => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);

/**
 * The path `rel` names inside `root`, refused (naming `source`, the file the path came from) when
 * it is absolute, climbs out with `..`, or resolves, following symlinks, to somewhere outside
 * root's real path. Parts that do not exist yet are judged by their lexical path.
 */
export function resolveInside(root: string, rel: string, source: string, error: MakeError = serialization): string {
  if (typeof rel !== 'string' || rel === '' || rel.includes('\0')) throw error(`${source}: path ${JSON.stringify(rel)} is not a relative path inside ${root}`);
  if (isAbsolute(rel)) throw error(`${source}: path ${JSON.stringify(rel)} is absolute; it must stay inside ${root}`);
  const lexical = resolve(root, rel);
  if (!within(resolve(root), lexical)) throw error(`${source}: path ${JSON.stringify(rel)} leads outside ${root}`);
  assertInside(root, lexical, source, error);
  return lexical;
}

/** Refuses `path` when, symlinks followed, it lies outside root's real path. */
export function assertInside(root: string, path: string, source: string, error: MakeError = serialization): void {
  const realRoot = realOrSelf(root);
  // Resolve the longest existing prefix of the path, so a symlinked folder on the way is seen.
  let probe = resolve(path);
  const rest: string[] = [];
  for (;;) {
    try {
      const real = realpathSync(probe);
      const full = rest.length ? resolve(real, ...rest.reverse()) : real;
      if (!within(realRoot, full)) {
        throw error(`${source}: ${relative(resolve(root), resolve(path)) || '.'} resolves to ${full}, outside ${realRoot} (a symlink leading out of the folder)`);
      }
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
      const parent = resolve(probe, '..');
      if (parent === probe) return;
      rest.push(probe.slice(parent.length + (parent.endsWith(sep) ? 0 : 1)));
      probe = parent;
    }
  }
}
