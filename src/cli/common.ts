/** Shared CLI plumbing: numbers from flags, recipes merged under flags, one-line errors. */
import { InvalidArgumentError } from 'commander';
import { ConfigError, TopiaryError } from '../core/errors.js';
import { readRecipe } from '../experiment/config.js';

/** Parse a flag value as a number, naming the flag when it is not one. */
export function num(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    // Commander turns InvalidArgumentError into "option '--<flag> <x>' argument ... is invalid" and a
    // non-zero exit; any other error thrown from an argument parser escapes as an uncaught crash.
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${v}'`);
    return n;
  };
}

export function numList(flag: string) {
  return (v: string): number[] => v.split(',').map((s) => num(flag)(s));
}

const AUGMENT_KEYS = ['rotation', 'translation', 'cropPadding', 'flip'];
const CLI_ONLY = ['recipe', 'out', 'json', 'dataDir', 'verbose', 'progress', 'stopAfterEpochs', 'from', 'seeds', 'budget'];

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
    const known = e instanceof TopiaryError;
    process.stderr.write(`topiary: ${known ? '' : 'internal error: '}${err.message}\n`);
    if (verbose || !known) process.stderr.write(`${err.stack ?? ''}\n`);
    else process.stderr.write('(run with --verbose for the stack)\n');
    process.exitCode = e instanceof ConfigError ? 2 : 1;
  }
}
