/**
 * The methods of bench/deployed.ts: for each, the CLI command lines that reproduce its MNIST result
 * (the recipe of its reproduction at a stated budget), and where the run folder keeps the model.
 *
 * Recipes come from the reproductions themselves (pmpExperiments of src/experiment/reproduce-pmp.ts,
 * hierMoeaCases of reproduce-hier-moea.ts, the EVO-POP recipe of docs/results/evo-pop.md), written
 * as a recipe file per method and passed to `topiary prune --recipe`, so each run is a plain CLI run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../../src/tensor/index.js';

export interface Step {
  /** Run folder of this step (below the runs root). */
  dir: string;
  /** topiary's arguments (after `topiary`); `{root}` stands for the runs root. */
  args: string[];
  /** A recipe file the step reads: written into {root}/recipes/<name>.yaml before it runs. */
  recipe?: { name: string; body: Record<string, unknown> };
  /** The file whose presence marks the step finished (relative to dir). */
  done: string;
}

export interface Method {
  id: string;
  /** The table's label, e.g. "PMP 98%". */
  label: string;
  model: 'lenet_300_100' | 'lenet5' | 'mlp';
  /** The budget in words (the document says). */
  budget: string;
  /** The budget in a few words (the README's table says), e.g. "20 of 200 epochs". */
  short: string;
  /** Steps this method needs that other methods share (their ids), run first. */
  after: string[];
  steps: Step[];
  /** How the result is deployed: a sparse (masked) model, or a physically smaller one. */
  deploy: 'sparse' | 'shrunk' | 'physical';
  /** The reproduction's figure for the same setting (test accuracy, %), for the table. */
  reproduced?: string;
}

export interface Exp { id: string; method: string; sparsity: number; train: Record<string, unknown>; prune?: Record<string, unknown> }

/** A prune step from one experiment of a reproduction: its training and prune sections as a recipe file. */
export function pruneStep(dir: string, e: Pick<Exp, 'train' | 'prune'>, seed: number, extra: string[] = []): Step {
  const name = dir.replace(/\//g, '_');
  const body: Record<string, unknown> = { ...e.train, ...(e.prune ? { prune: e.prune } : {}) };
  const cmd = e.prune ? 'prune' : 'train';
  return {
    dir,
    args: [cmd, '--recipe', `{root}/recipes/${name}.yaml`, '--seed', String(seed), '--threads', '1', ...extra, '--out', `{root}/${dir}`],
    recipe: { name, body },
    done: 'result.json',
  };
}

/** Whether a step's run folder holds a finished result (result.json with completed not false). */
export function stepDone(root: string, s: Step): boolean {
  const f = join(root, s.dir, s.done);
  if (!existsSync(f)) return false;
  if (!f.endsWith('result.json')) return true;
  try {
    const r = JSON.parse(readFileSync(f, 'utf8')) as { completed?: boolean };
    return r.completed !== false;
  } catch {
    return false;
  }
}

/** `args` with {root} replaced. */
export const expand = (root: string, args: string[]): string[] => args.map((a) => a.replaceAll('{root}', root));

/**
 * A command line as a reader would type it: arguments quoted only where the shell needs it.
 * (Used for the document's command column.)
 */
export function shellLine(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The command lines of a method's steps, as recorded in the document. */
export const commandLines = (m: Method, root: string): string[] => m.steps.map((s) => `topiary ${shellLine(expand(root, s.args))}`);

/** Bytes as KiB with one decimal. */
export const fmtKiB = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;

/** A speed-up a / b as "2.31x" (a: the dense time, b: the deployed one); "n/a" when either is missing. */
export function ratio(dense: number, deployed: number): string {
  if (!(dense > 0 && deployed > 0)) return 'n/a';
  return `${(dense / deployed).toFixed(2)}x`;
}

/** The model.safetensors of the last checkpoint in a training's checkpoints folder (latest.json names it). */
export function latestCheckpoint(dir: string): string {
  const f = join(dir, 'latest.json');
  if (!existsSync(f)) throw new Error(`${dir}: no latest.json (no checkpoint written)`);
  const { path } = JSON.parse(readFileSync(f, 'utf8')) as { path?: unknown };
  if (typeof path !== 'string' || !/^epoch_\d+$/.test(path)) throw new Error(`${f}: 'path' is not an epoch_<n> folder name`);
  const model = join(dir, path, 'model.safetensors');
  if (!existsSync(model)) throw new Error(`${model}: missing`);
  return model;
}

/**
 * How a state dict came back from the compressed file: 'bit-identical', or equal values with the
 * number of negative zeros that came back as +0 (the sign of a zero is all that differs), or 'DIFFERENT'.
 */
export function roundTrip(a: Record<string, Tensor>, b: Record<string, Tensor>): string {
  const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
  if (ka.join() !== kb.join()) return 'DIFFERENT (tensor names)';
  let signedZeros = 0;
  for (const k of ka) {
    const x = a[k].toTypedArray(), y = b[k].toTypedArray();
    if (x.length !== y.length || a[k].dtype !== b[k].dtype) return `DIFFERENT (${k})`;
    for (let i = 0; i < x.length; i++) {
      if (Object.is(x[i], y[i])) continue;
      if (x[i] === 0 && y[i] === 0) signedZeros++;
      else return `DIFFERENT (${k}[${i}])`;
    }
  }
  return signedZeros ? `equal values; ${signedZeros.toLocaleString('en-US')} negative zeros came back as +0` : 'bit-identical';
}
