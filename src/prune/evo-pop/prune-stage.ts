/**
 * After training: for each criterion and removal fraction, rank, remove physically, evaluate the
 * smaller plain model (optionally after fine-tuning) and optionally save it. The trained
 * population model is not modified.
 */
import { ArgumentError } from '../../core/errors.js';
import type { Module } from '../../nn/module.js';
import { evaluate, type BatchLike } from '../../train/evaluate.js';
import type { Criterion } from './config.js';
import { meanActivations, scorePopulations, selectKeep, type Scores } from './criteria.js';
import { physicalPrune, savePruned, type Architecture } from './physical.js';

export interface PruneStageOptions {
  fractions: number[];
  criteria: readonly Criterion[];
  /** Seeds the random control. */
  seed: number;
  /** Fresh test batches on each call (evaluate disposes them). */
  testBatches: () => Iterable<BatchLike>;
  /** Training-split batches for the activation control (needed when criteria include 'activation'). */
  calibrationBatches?: () => Iterable<BatchLike>;
  /** Fine-tune a pruned model in place (omit for none). */
  finetune?: (model: Module) => void;
  /** Folder to save a pruned model in (after fine-tuning, when asked), or null not to save it. */
  saveDir?: (criterion: Criterion, fraction: number) => string | null;
  onRow?: (row: PruneRow) => void;
}

export interface PruneRow {
  criterion: Criterion;
  fraction: number;
  /** Populations removed, of `total`. */
  removed: number;
  total: number;
  /** Populations kept per scaled layer. */
  kept: number[];
  params: number;
  accuracy: number;
  loss: number;
  finetunedAccuracy?: number;
  architecture: Architecture;
}

export function pruneStage(model: Module, o: PruneStageOptions): PruneRow[] {
  const rows: PruneRow[] = [];
  let activations: Scores | undefined;
  if (o.criteria.includes('activation')) {
    if (!o.calibrationBatches) throw new ArgumentError('pruneStage: the activation control needs calibrationBatches');
    activations = meanActivations(model, o.calibrationBatches());
  }
  for (const criterion of o.criteria) {
    const scores = scorePopulations(model, criterion, { seed: o.seed, activations });
    const total = [...scores.values()].reduce((s, a) => s + a.length, 0);
    for (const fraction of o.fractions) {
      const keepIdx = selectKeep(scores, fraction);
      const { model: plain, architecture } = physicalPrune(model, keepIdx);
      try {
        const ev = evaluate(plain, o.testBatches());
        const row: PruneRow = {
          criterion, fraction, total, removed: total - architecture.kept.reduce((a, b) => a + b, 0), kept: architecture.kept,
          params: plain.numParameters(), accuracy: ev.accuracy, loss: ev.loss, architecture,
        };
        if (o.finetune) {
          o.finetune(plain);
          row.finetunedAccuracy = evaluate(plain, o.testBatches()).accuracy;
        }
        const dir = o.saveDir?.(criterion, fraction);
        if (dir) savePruned(dir, plain, architecture, { criterion, fraction: String(fraction) });
        rows.push(row);
        o.onRow?.(row);
      } finally {
        plain.dispose();
      }
    }
  }
  return rows;
}
