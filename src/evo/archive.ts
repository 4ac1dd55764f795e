/**
 * An external Pareto archive: every non-dominated point an algorithm has evaluated, kept apart from
 * its population. NSGA-II's population can lose a non-dominated point when its first front
 * outgrows the population (the crowding cut), so the population's front can get worse from one
 * generation to the next; the archive's cannot. Points with equal objectives are kept once (the
 * first). All objectives are minimized.
 */
import { SerializationError } from '../core/errors.js';
import { decodeGenome, decodeNumber, encodeGenome, encodeNumber, type EncodedGenome, type EncodedNumber } from './genome-codec.js';
import { dominates } from './sorting.js';
import type { Genome } from './types.js';

export interface ArchiveEntry<G extends Genome> { genome: G; objectives: number[] }

export interface ArchiveState { format: 'topiary.archive'; version: 1; entries: { genome: EncodedGenome; objectives: EncodedNumber[] }[] }

export class ParetoArchive<G extends Genome> {
  private items: ArchiveEntry<G>[] = [];

  /** Adds a copy of the point unless an archived point dominates or equals it; drops the points it dominates. */
  add(genome: G, objectives: readonly number[]): boolean {
    const obj = [...objectives];
    if (this.items.some((e) => dominates(e.objectives, obj) || sameObjectives(e.objectives, obj))) return false;
    this.items = this.items.filter((e) => !dominates(obj, e.objectives));
    this.items.push({ genome: copy(genome), objectives: obj });
    return true;
  }

  /** The archived points, sorted by each objective in turn from the last (for two: by size, then error). */
  entries(): ArchiveEntry<G>[] {
    return [...this.items].sort((a, b) => {
      for (let k = a.objectives.length - 1; k >= 0; k--) if (a.objectives[k] !== b.objectives[k]) return a.objectives[k] - b.objectives[k];
      return 0;
    });
  }

  get size(): number { return this.items.length; }

  state(): ArchiveState {
    return { format: 'topiary.archive', version: 1, entries: this.items.map((e) => ({ genome: encodeGenome(e.genome), objectives: e.objectives.map(encodeNumber) })) };
  }

  static restore<G extends Genome>(s: ArchiveState): ParetoArchive<G> {
    if (s?.format !== 'topiary.archive' || s.version !== 1 || !Array.isArray(s.entries)) throw new SerializationError('ParetoArchive.restore: not an archive state');
    const a = new ParetoArchive<G>();
    a.items = s.entries.map((e) => ({ genome: decodeGenome(e.genome) as G, objectives: e.objectives.map(decodeNumber) }));
    return a;
  }
}

function sameObjectives(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function copy<G extends Genome>(g: G): G {
  return (g instanceof Float64Array ? Float64Array.from(g) : g.clone()) as G;
}
