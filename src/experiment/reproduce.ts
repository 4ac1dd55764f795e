/**
 * `topiary reproduce <name>`: long reproductions of the papers' tables, run outside CI, each writing
 * docs/results/<name>.md with the exact command, seeds and date. Each method registers one value.
 */
import { RegistryError } from '../core/errors.js';

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
}

export interface Reproduction {
  name: string;
  description: string;
  run(o: ReproduceOptions): Promise<void>;
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
