/**
 * `topiary reproduce <name>`: long reproductions of the papers' tables, run outside CI, each writing
 * docs/results/<name>.md with the exact command, seeds and date. Each method registers one value.
 */
import { RegistryError } from '../core/errors.js';
import type { HierMoeaRunOptions } from './reproduce-hier-moea.js';

/** smoke: minutes, a pipeline check; reduced: what a small CPU affords (where a reproduction has one); full: the papers' budget. */
export type Budget = 'smoke' | 'reduced' | 'full';

export interface ReproduceOptions {
  seeds: number;
  budget: Budget;
  dataDir?: string;
  /** Folder for the runs (runs/reproduce/<name> by default). */
  out: string;
  /** The markdown file to write. */
  doc: string;
  /** The command line, recorded in the document. */
  command: string;
  progress: boolean;
  /** Worker threads for candidate evaluation (hier-moea only; results do not depend on it). */
  workers?: number;
  /** hier-moea: candidates scored by a queue's workers (src/queue) instead of here; results do not depend on it. */
  remote?: HierMoeaRunOptions['remote'];
}

export interface Reproduction {
  name: string;
  description: string;
  run(o: ReproduceOptions): Promise<void>;
  /** The same runs as units of work for other machines (`--queue`, src/queue); absent: local only. */
  distributed?: DistributedReproduction;
}

/**
 * One run of a reproduction (a method, model, sparsity and seed) as a unit of work: plain JSON that
 * another machine turns back into the run. A finished run is a folder whose result.json says completed.
 */
export interface RunSpec {
  /** The run's folder relative to ReproduceOptions.out (its result.json lands there). */
  dir: string;
  /** A readable name, e.g. 'pmp/smoke dense seed 0'. */
  name: string;
  /** Everything the run needs besides the data; the worker checks it with the reproduction's schemas. */
  spec: Record<string, unknown>;
  /** Other runs' `dir` whose files this run reads (a dense model to prune): they must finish first. */
  needs: string[];
}

export interface DistributedReproduction {
  /** The runs in the local order, after the checks and bookkeeping (meta files) a local run does first. */
  plan(o: ReproduceOptions): RunSpec[];
  /** One run into root/dir, its needs already under root; throws ConfigError on a bad spec. */
  runOne(spec: Record<string, unknown>, root: string, dir: string, o: { dataDir?: string; progress: boolean }): Promise<void>;
  /** The document, from the finished runs under o.out (the local run's last step); `seconds`: the sweep's wall time, where the document reports one. */
  writeDoc(o: ReproduceOptions, info?: { seconds: number }): void | Promise<void>;
  /**
   * The file whose presence in a run's folder says the run finished (default result.json, which
   * must say completed); unpacked last, so a folder that has it is whole.
   */
  doneFile?: string;
}

const REGISTRY = new Map<string, Reproduction>();

export function registerReproduction(r: Reproduction): void {
  REGISTRY.set(r.name, r);
}

export function getReproduction(name: string): Reproduction {
  const r = REGISTRY.get(name);
  if (!r) throw new RegistryError(`unknown reproduction '${name}' (known: ${[...REGISTRY.keys()].join(', ') || 'none'})`);
  return r;
}

export function reproductionNames(): string[] {
  return [...REGISTRY.keys()];
}
