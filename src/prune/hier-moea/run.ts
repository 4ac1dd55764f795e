/**
 * A whole HIER-MOEA run: the two phases (search.ts), then the outputs: the final Pareto set with
 * every mask, the one-shot global-magnitude reference at the same sizes, the knee and the picked
 * solutions fine-tuned with their masks fixed and tested once, the plots and result.json.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dominates } from '../../evo/sorting.js';
import { hypervolume } from '../../evo/hypervolume.js';
import { kneePoint } from '../../evo/knee.js';
import type { Module } from '../../nn/module.js';
import { writeJsonAtomic } from '../../train/checkpoint.js';
import { evaluate } from '../../train/evaluate.js';
import type { SearchConfig } from './config.js';
import { fineTune, type FineTuneResult } from './finetune.js';
import { GlobalMagnitude } from './global-magnitude.js';
import type { LayerMasks } from './layout.js';
import { saveMaskBits } from './mask-io.js';
import { writeShrunk, type ShrunkSummary } from '../shrink-run.js';
import { tensor } from '../../tensor/creation.js';
import { saveSafetensors } from '../../tensor/safetensors.js';
import { dispose } from '../../tensor/scope.js';
import { writeFrontPlots } from './plots.js';
import { HV_REF, runPhases, type SearchData, type SearchLoopOptions, type SearchOutcome } from './search.js';

export interface FinalSolution { index: number; phase: 1 | 2; valError: number; kept: number; sparsity: number; keptWeights: number }

export interface PickResult extends FineTuneResult {
  label: string;
  /** Structured granularity: the fine-tuned pick physically shrunk (files in its fine-tuning folder). */
  shrunk?: ShrunkSummary;
  solution: number;
  sparsity: number;
  /** Validation-subset error before and after fine-tuning (the search's objective). */
  valErrorBefore: number;
  valErrorAfter: number;
}

export interface SearchResult {
  completed: boolean;
  denseValError: number;
  denseTestAccuracy: number | null;
  hypervolume: { phase1: number; phase2: number | null; final: number };
  anchors: SearchOutcome['anchors'];
  solutions: FinalSolution[];
  knee: number;
  /** Global magnitude at each final solution's size, and the comparison at 50/70/90% sparsity. */
  reference: { kept: number; valError: number }[];
  atSparsity: { sparsity: number; frontError: number | null; globalMagnitudeError: number }[];
  picks: PickResult[];
  evaluations: number;
  searchSeconds: number;
  evaluationsPerSecond: number;
  wallSeconds: number;
}

export interface HierMoeaOptions extends SearchLoopOptions {
  /** Merged into result.json (model, dataset, checkpoint, versions...). */
  meta?: Record<string, unknown>;
  /** Plot titles ('LeNet-5 / MNIST'). */
  title?: string;
}

export const REPORT_SPARSITIES = [0.5, 0.7, 0.9];

export async function hierMoeaSearch(model: Module, data: SearchData, cfg: SearchConfig, o: HierMoeaOptions): Promise<SearchResult> {
  const t0 = performance.now();
  mkdirSync(o.out, { recursive: true });
  const ev = data.evaluator, layout = ev.layout;
  const out = await runPhases(model, data, cfg, o);
  const searchSeconds = out.history.reduce((s, h) => s + h.seconds, 0);
  const lastOf = (p: 1 | 2) => out.history.filter((h) => h.phase === p).at(-1)?.evaluations ?? 0;
  const evaluations = lastOf(1) + lastOf(2);
  const base = {
    denseValError: out.denseError, anchors: out.anchors, evaluations, searchSeconds,
    evaluationsPerSecond: searchSeconds > 0 ? evaluations / searchSeconds : 0,
  };
  if (!out.completed) {
    return { ...base, completed: false, denseTestAccuracy: null, hypervolume: { phase1: 0, phase2: null, final: 0 }, solutions: [], knee: -1, reference: [], atSparsity: [], picks: [], wallSeconds: (performance.now() - t0) / 1000 };
  }

  // The final Pareto set: the non-dominated solutions of both phases' fronts.
  const cands = [...out.phase1Front.map((s) => ({ ...s, phase: 1 as const })), ...out.phase2Front.map((s) => ({ ...s, phase: 2 as const }))];
  const finalSet = cands.filter((a, i) => !cands.some((b, j) => j !== i && (dominates([b.error, b.kept], [a.error, a.kept]) ||
    (b.error === a.error && b.kept === a.kept && j < i)))).sort((a, b) => a.kept - b.kept);
  const solutions: FinalSolution[] = finalSet.map((s, index) => ({
    index, phase: s.phase, valError: s.error, kept: s.kept, sparsity: 1 - s.kept, keptWeights: Math.round(s.kept * layout.total),
  }));
  saveMaskBits(join(o.out, 'pareto-masks.safetensors'), layout, finalSet.map((s) => layout.toBits(s.masks)));
  writeJsonAtomic(join(o.out, 'pareto.json'), {
    masks: 'pareto-masks.safetensors', layers: layout.names.map((n, l) => ({ name: n, size: layout.sizes[l] })), solutions,
  });

  // One-shot global magnitude at the same sizes, evaluated exactly as the candidates were (and by the same evaluator).
  const gm = new GlobalMagnitude(layout);
  const sizes = [...finalSet.map((s) => s.kept), ...REPORT_SPARSITIES.map((sp) => 1 - sp)];
  const gmErrors = (await (data.batchEvaluator ?? ev).evaluateBatch(sizes.length, (i) => gm.masks(sizes[i]))).map((r) => r.error);
  const reference = finalSet.map((s, i) => ({ kept: s.kept, valError: gmErrors[i] }));
  const atSparsity = REPORT_SPARSITIES.map((sp, j) => {
    const ok = finalSet.filter((s) => s.kept <= 1 - sp + 1e-12);
    return { sparsity: sp, frontError: ok.length ? Math.min(...ok.map((s) => s.error)) : null, globalMagnitudeError: gmErrors[finalSet.length + j] };
  });
  ev.restore();

  // Fine-tune the knee and the picks (each once, even when two labels name the same solution).
  const knee = kneePoint(finalSet.map((s) => [s.error, s.kept]));
  const wanted: { label: string; index: number }[] = [{ label: 'knee', index: knee }];
  for (const sp of cfg.pick) {
    let best = -1;
    finalSet.forEach((s, i) => { if (s.kept <= 1 - sp + 1e-12 && (best < 0 || s.error < finalSet[best].error)) best = i; });
    if (best >= 0) wanted.push({ label: `sparsity-${sp}`, index: best });
    else o.log?.(`pick ${sp}: no solution of the final set is that sparse; skipped`);
  }
  const picks: PickResult[] = [];
  const done = new Map<number, PickResult>();
  for (const w of wanted) {
    const prev = done.get(w.index);
    const r = prev ? { ...prev, label: w.label } : pickResult(model, data, cfg, o, w.label, w.index, finalSet[w.index].masks, finalSet[w.index].error, 1 - finalSet[w.index].kept);
    done.set(w.index, r);
    picks.push(r);
  }
  const denseTest = evaluate(model, data.testBatches()).accuracy;

  const hv1 = hypervolume(out.phase1Front.map((s) => [s.error, s.kept]), HV_REF);
  const hv2 = out.phase2Front.length ? hypervolume(out.phase2Front.map((s) => [s.error, s.kept]), HV_REF) : null;
  const result: SearchResult = {
    ...base, completed: true, denseTestAccuracy: denseTest,
    hypervolume: { phase1: hv1, phase2: hv2, final: hypervolume(finalSet.map((s) => [s.error, s.kept]), HV_REF) },
    solutions, knee, reference, atSparsity, picks, wallSeconds: (performance.now() - t0) / 1000,
  };
  writeJsonAtomic(join(o.out, 'history.json'), out.history);
  await writeFrontPlots(o.out, out, reference, picks, o.title);
  writeJsonAtomic(join(o.out, 'result.json'), { kind: 'hier-moea', config: cfg, ...o.meta, ...result });
  return result;
}

/**
 * The fine-tuned pick's own model.safetensors (masked weights, with the model name, dataset and dense
 * training config in its metadata, as `topiary prune` writes them) and masks.safetensors, so that
 * `topiary export --from <run>/finetune/<label>` exports it.
 */
function savePick(model: Module, masks: LayerMasks, layout: SearchData['evaluator']['layout'], dir: string, meta?: Record<string, unknown>): void {
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const md: Record<string, string> = { stage: 'hier-moea pick' };
  const name = str(meta?.model), dataset = str(meta?.dataset);
  if (name) md.model = name;
  if (dataset) md.dataset = dataset;
  if (meta?.denseConfig) md.config = JSON.stringify(meta.denseConfig);
  saveSafetensors(join(dir, 'model.safetensors'), model.stateDict(), md);
  const m = Object.fromEntries(layout.names.map((n, l) => [n, tensor(masks[l], { shape: layout.params[l].shape, dtype: 'bool' })]));
  try {
    saveSafetensors(join(dir, 'masks.safetensors'), m, { method: 'hier-moea' });
  } finally {
    dispose(Object.values(m));
  }
}

function pickResult(model: Module, data: SearchData, cfg: SearchConfig, o: HierMoeaOptions, label: string, index: number,
  masks: LayerMasks, errBefore: number, sparsity: number): PickResult {
  const dir = join(o.out, 'finetune', label);
  const file = join(dir, 'result.json');
  if (existsSync(file) && existsSync(join(dir, 'model.safetensors'))) {
    const r = JSON.parse(readFileSync(file, 'utf8')) as PickResult;
    if (r.solution === index && r.epochs === cfg.finetuneEpochs) return r;
  }
  mkdirSync(dir, { recursive: true });
  o.log?.(`fine-tuning ${label} (solution ${index}, sparsity ${(100 * sparsity).toFixed(2)}%, val error ${(100 * errBefore).toFixed(2)}%)`);
  let valErrorAfter = NaN;
  let shrunk: ShrunkSummary | undefined;
  const layout = data.evaluator.layout;
  const r = fineTune(model, data.evaluator, masks, {
    epochs: cfg.finetuneEpochs, lr: cfg.finetuneLr, momentum: cfg.finetuneMomentum, weightDecay: cfg.finetuneWeightDecay,
    trainBatches: data.trainBatches, batchesPerEpoch: data.batchesPerEpoch, valBatches: data.valBatches, testBatches: data.testBatches,
    dir, onEpoch: o.log, beforeRestore: () => {
      valErrorAfter = data.evaluator.forwardVal().error;
      savePick(model, masks, layout, dir, o.meta);
      if (cfg.granularity !== 'structured' || !data.inputShape) return;
      // The fine-tuned pick, physically smaller (its removed groups leave the tensors), checked against the masked model.
      const m = new Map(layout.names.map((n, l) => [n, tensor(masks[l], { shape: layout.params[l].shape, device: layout.params[l].device })]));
      try {
        shrunk = writeShrunk(model, m, data.inputShape, dir);
      } finally {
        for (const t of m.values()) t.dispose();
      }
    },
  });
  const pr: PickResult = { ...r, label, solution: index, sparsity, valErrorBefore: errBefore, valErrorAfter, ...(shrunk ? { shrunk } : {}) };
  writeJsonAtomic(file, pr);
  return pr;
}
