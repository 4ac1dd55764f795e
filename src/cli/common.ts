/** Shared CLI plumbing: numbers from flags, recipes merged under flags, one-line errors. */
import { InvalidArgumentError } from 'commander';
import { ConfigError, TopiaryError } from '../core/errors.js';
import { readRecipe } from '../experiment/config.js';

/** Decimal numbers only: 0x10, 0b1, 1_000 and friends, which Number() reads, are refused. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const INTEGER = /^[+-]?\d+$/;
/** A flag value in a message: quoted, and cut at 40 characters. */
export const show = (v: string) => `'${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;

/** Parse a flag value as a number, naming the flag when it is not one. */
export function num(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    // Commander turns InvalidArgumentError into "option '--<flag> <x>' argument ... is invalid" and a
    // non-zero exit; any other error thrown from an argument parser escapes as an uncaught crash.
    if (!DECIMAL.test(v.trim()) || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a ${Number.isFinite(n) && v.trim() !== '' ? 'decimal ' : ''}number, got ${show(v)}`);
    return n;
  };
}

/** Parse a flag value as a decimal integer (no 0x10, 1e3 or 2.5), within safe integers. */
export function int(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!INTEGER.test(v.trim()) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`expected ${Number.isFinite(n) && v.trim() !== '' && !DECIMAL.test(v.trim()) ? 'a decimal integer' : 'an integer'}, got ${show(v)}`);
    }
    return n;
  };
}

export function numList(flag: string) {
  return (v: string): number[] => v.split(',').map((s) => num(flag)(s));
}

export function intList(flag: string) {
  return (v: string): number[] => v.split(',').map((s) => int(flag)(s));
}

const AUGMENT_KEYS = ['rotation', 'translation', 'cropPadding', 'flip'];
const CLI_ONLY = ['recipe', 'out', 'json', 'dataDir', 'verbose', 'progress', 'stopAfterEpochs', 'from', 'seeds', 'budget', 'tensorboard'];

/** Recipe fields first, then the flags the user gave (commander leaves absent flags undefined). */
export function mergeConfig(opts: Record<string, unknown>, extraCliOnly: string[] = []): Record<string, unknown> {
  const base = opts.recipe ? readRecipe(String(opts.recipe)) : {};
  const merged: Record<string, unknown> = { ...base };
  const aug: Record<string, unknown> = { ...((base.augment as Record<string, unknown>) ?? {}) };
  for (const [k, v] of Object.entries(opts)) {
    if (v === undefined || CLI_ONLY.includes(k) || extraCliOnly.includes(k)) continue;
    if (AUGMENT_KEYS.includes(k)) aug[k] = v;
    else merged[k] = v;
  }
  if (Object.keys(aug).length) merged.augment = aug;
  return merged;
}

/** Run a command body: TopiaryErrors print one clear line (stack with --verbose) and exit non-zero. */
export async function runCommand(verbose: boolean, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    const err = e as Error;
    // A failed system call (EACCES, ENOSPC, EROFS...) is the environment, not a bug: one line too.
    const sys = e instanceof Error && typeof (e as NodeJS.ErrnoException).syscall === 'string' && /^E[A-Z]+$/.test(String((e as NodeJS.ErrnoException).code));
    const known = e instanceof TopiaryError || sys;
    process.stderr.write(`topiary: ${known ? '' : 'internal error: '}${err.message}\n`);
    if (verbose || !known) process.stderr.write(`${err.stack ?? ''}\n`);
    else process.stderr.write('(run with --verbose for the stack)\n');
    process.exitCode = e instanceof ConfigError ? 2 : 1;
  }
}
