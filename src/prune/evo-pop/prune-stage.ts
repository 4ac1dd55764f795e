/**
 * After training: for each criterion and removal fraction, rank, remove physically, evaluate the
 * smaller plain model on the test split and, when given, the validation split (optionally after
 * fine-tuning) and optionally save it. The trained population model is not modified. Anything
 * chosen from these rows (the best dynamic, a fraction) must be chosen on `valAccuracy`; the test
 * accuracy is what gets reported.
 */
import { ArgumentError, SerializationError } from '../../core/errors.js';
import type { Module } from '../../nn/module.js';
import { evaluate, type BatchLike } from '../../train/evaluate.js';
import type { Criterion } from './config.js';
import { headImportance, meanActivations, scorePopulations, selectKeep, type Scores } from './criteria.js';
import { isTransformerPopulation, physicalPruneTransformer, saveTransformer, type VitArchitecture } from './heads.js';
import { physicalPrune, savePruned, type Architecture } from './physical.js';
import { physicalPruneGraph, saveGraphPruned, type GraphArchitecture } from './graph-physical.js';
import { isChannelPopulationModel } from './graph-populations.js';
import type { GraphModule } from '../../graph/run.js';

export interface PruneStageOptions {
  fractions: number[];
  criteria: readonly Criterion[];
  /** Seeds the random control. */
  seed: number;
  /** Fresh test batches on each call (evaluate disposes them). */
  testBatches: () => Iterable<BatchLike>;
  /** Fresh batches of the held-out validation split on each call; when given, rows carry valAccuracy. */
  valBatches?: () => Iterable<BatchLike>;
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
  /** Test split. */
  accuracy: number;
  loss: number;
  /** Validation split (when valBatches were given): what selection may look at. */
  valAccuracy?: number;
  valLoss?: number;
  finetunedAccuracy?: number;
  finetunedValAccuracy?: number;
  architecture: Architecture | VitArchitecture | GraphArchitecture;
}

export function pruneStage(model: Module, o: PruneStageOptions): PruneRow[] {
  const rows: PruneRow[] = [];
  let activations: Scores | undefined;
  if (o.criteria.includes('activation')) {
    if (!o.calibrationBatches) throw new ArgumentError('pruneStage: the activation control needs calibrationBatches');
    activations = meanActivations(model, o.calibrationBatches());
  }
  let importance: Scores | undefined;
  if (o.criteria.includes('importance')) {
    if (!o.calibrationBatches) throw new ArgumentError('pruneStage: the importance control needs calibrationBatches');
    importance = headImportance(model, o.calibrationBatches());
  }
  for (const criterion of o.criteria) {
    const scores = scorePopulations(model, criterion, { seed: o.seed, activations, importance });
    const total = [...scores.values()].reduce((s, a) => s + a.length, 0);
    for (const fraction of o.fractions) {
      const keepIdx = selectKeep(scores, fraction);
      const { model: plain, architecture } = isChannelPopulationModel(model) ? physicalPruneGraph(model, keepIdx)
        : isTransformerPopulation(model) ? physicalPruneTransformer(model, keepIdx) : physicalPrune(model, keepIdx);
      try {
        const ev = evaluate(plain, o.testBatches());
        const row: PruneRow = {
          criterion, fraction, total, removed: total - architecture.kept.reduce((a, b) => a + b, 0), kept: architecture.kept,
          params: plain.numParameters(), accuracy: ev.accuracy, loss: ev.loss, architecture,
        };
        if (o.valBatches) {
          const v = evaluate(plain, o.valBatches());
          row.valAccuracy = v.accuracy;
          row.valLoss = v.loss;
        }
        if (o.finetune) {
          o.finetune(plain);
          row.finetunedAccuracy = evaluate(plain, o.testBatches()).accuracy;
          if (o.valBatches) row.finetunedValAccuracy = evaluate(plain, o.valBatches()).accuracy;
        }
        const dir = o.saveDir?.(criterion, fraction);
        if (dir) {
          const meta = { criterion, fraction: String(fraction) };
          if (architecture.format === 'topiary-graph-populations/1') saveGraphPruned(dir, plain as GraphModule, architecture);
          else if (architecture.format === 'topiary-vit/1') saveTransformer(dir, plain, architecture, meta);
          else savePruned(dir, plain, architecture, meta);
        }
        rows.push(row);
        o.onRow?.(row);
      } finally {
        plain.dispose();
      }
    }
  }
  return rows;
}

/** The fields of a stored row (evo.json's rows: PruneRow without the architecture). */
export type StoredRow = Omit<PruneRow, 'architecture'>;

/**
 * Stored rows with the validation fields of freshly computed ones: for runs saved before rows
 * carried validation accuracy, the prune stage is rerun on the saved model, and its test results
 * must reproduce the stored ones (same rows, populations kept, parameters, test accuracy exactly,
 * test loss, all exactly; fine-tuned test accuracy too), else the stored run is not what this
 * model and code compute and a SerializationError says where they differ.
 */
export function withValidation(stored: readonly StoredRow[], fresh: readonly StoredRow[], source = 'stored rows'): StoredRow[] {
  const key = (r: { criterion: string; fraction: number }) => `${r.criterion}@${r.fraction}`;
  const byKey = new Map(fresh.map((r) => [key(r), r]));
  if (byKey.size !== stored.length || stored.some((r) => !byKey.has(key(r)))) {
    throw new SerializationError(`${source}: the rerun gave rows ${[...byKey.keys()].join(', ')}, the stored run has ${stored.map(key).join(', ')}`);
  }
  return stored.map((s) => {
    const f = byKey.get(key(s))!;
    const differ: string[] = [];
    if (f.kept.join(',') !== s.kept.join(',')) differ.push(`kept [${f.kept}] vs [${s.kept}]`);
    if (f.params !== s.params || f.removed !== s.removed || f.total !== s.total) differ.push(`params/removed/total ${f.params}/${f.removed}/${f.total} vs ${s.params}/${s.removed}/${s.total}`);
    if (f.accuracy !== s.accuracy) differ.push(`test accuracy ${f.accuracy} vs ${s.accuracy}`);
    if (f.loss !== s.loss) differ.push(`test loss ${f.loss} vs ${s.loss}`);
    if (f.finetunedAccuracy !== s.finetunedAccuracy) differ.push(`fine-tuned test accuracy ${f.finetunedAccuracy} vs ${s.finetunedAccuracy}`);
    if (differ.length) throw new SerializationError(`${source}: removing ${key(s)} again does not reproduce the stored row (${differ.join('; ')})`);
    const out: StoredRow = { ...s, valAccuracy: f.valAccuracy, valLoss: f.valLoss };
    if (f.finetunedValAccuracy !== undefined) out.finetunedValAccuracy = f.finetunedValAccuracy;
    return out;
  });
}
