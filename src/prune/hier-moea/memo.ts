/**
 * Each distinct network is scored once per search: a generation's candidates whose masks were
 * scored before (a child equal to its parent, genomes that decode to the same network at the 0.99
 * cap or by rounding, a phase-2 child whose crossover and mutation changed nothing) take the earlier
 * result, and copies within a generation are scored once. Evaluation is deterministic, so a cached
 * result is the one a new evaluation would give: only full results are kept (a racing candidate
 * stopped early depends on the archive of its generation, so it is scored again), and the search's
 * results are the same with and without the memo, resumed or not.
 */
import { createHash } from 'node:crypto';
import type { BatchEvaluator, CandidateResult } from './evaluator.js';
import type { LayerMasks } from './layout.js';

/** A key of a mask set (sha1 of its bytes: 20 bytes per network kept, not its masks). */
export function masksKey(masks: LayerMasks): string {
  const h = createHash('sha1');
  for (const m of masks) { h.update(new Uint32Array([m.length])); h.update(m); }
  return h.digest('base64');
}

export class MemoEvaluator implements BatchEvaluator {
  private readonly seen = new Map<string, CandidateResult>();
  /** Candidates served from the memo (or as a copy within their generation) in the last batch, and in all. */
  lastHits = 0;
  hits = 0;

  constructor(private readonly inner: BatchEvaluator, private readonly maxEntries = 200_000) {}

  async evaluateBatch(count: number, masksOf: (i: number) => LayerMasks, maxWrongOf?: (i: number) => number | undefined): Promise<CandidateResult[]> {
    const keys: string[] = [];
    const todo: number[] = [];
    const first = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const k = masksKey(masksOf(i));
      keys.push(k);
      if (!this.seen.has(k) && !first.has(k)) { first.set(k, todo.length); todo.push(i); }
    }
    const res = await this.inner.evaluateBatch(todo.length, (j) => masksOf(todo[j]), maxWrongOf ? (j) => maxWrongOf(todo[j]) : undefined);
    const out: CandidateResult[] = [];
    let hits = 0;
    for (let i = 0; i < count; i++) {
      const cached = this.seen.get(keys[i]);
      if (cached) { out.push({ ...cached }); hits++; continue; }
      const j = first.get(keys[i])!;
      if (todo[j] !== i) hits++;
      out.push({ ...res[j] });
    }
    for (const [k, j] of first) if (res[j].seen === undefined && this.seen.size < this.maxEntries) this.seen.set(k, res[j]);
    this.lastHits = hits;
    this.hits += hits;
    return out;
  }
}
