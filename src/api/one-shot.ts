/**
 * One-shot pruning as functions, in the manner of torch.nn.utils.prune's `global_unstructured`:
 * score the prunable weights once with a criterion, keep exactly round((1 - s) N) of them (globally
 * or per layer), and return the masks with a record. The CLI's one-shot methods run the very same
 * step (prune/step.ts pruneWith), so for the same model and seed the masks are the same, element by
 * element.
 */
import { ArgumentError, ShapeError } from '../core/errors.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { cat } from '../tensor/creation.js';
import { dispose, keep, tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { BatchLike } from '../train/evaluate.js';
import { getCriterion, type Criterion, type ScoreContext } from '../prune/criteria.js';
import type { MaskSet } from '../prune/masks.js';
import { pruneTo, type StepRecord } from '../prune/step.js';
import { PruneTarget, type Granularity, type LayerCount, type Scope, type TargetOptions } from '../prune/target.js';

/** Options of every one-shot function. */
export interface OneShotOptions extends TargetOptions {
  /** Fraction of the prunable weights removed, in [0, 1). */
  sparsity: number;
  /** 'global' (one threshold across layers, the default) or 'layer' (each layer to the sparsity). */
  scope?: Scope;
  /** Zero the pruned weights now (default true); false leaves the weights as they were and only returns the masks. */
  apply?: boolean;
  /** Prune further the masks of an earlier call (sparsity only grows); default: fresh all-ones masks. */
  target?: PruneTarget;
}

/** What a one-shot call did. */
export interface PruneRecord extends StepRecord {
  criterion: string;
  scope: Scope;
  granularity: Granularity;
  /** Kept weights per prunable layer. */
  layers: LayerCount[];
}

/** The masks (owned by `target`: call `target.dispose()` when done) and the record. */
export interface PruneResult {
  /** The prunable weights and their masks; `target.callback()` enforces them in `train()`. */
  target: PruneTarget;
  /** The same masks as `target.masks` (a MaskSet keyed by parameter name). */
  masks: MaskSet;
  record: PruneRecord;
}

/** Throws an ArgumentError naming `sparsity` unless it is a number in [0, 1). */
export function checkSparsity(s: unknown, arg = 'sparsity'): number {
  if (typeof s !== 'number' || !(s >= 0 && s < 1)) throw new ArgumentError(`${arg}: must be a number in [0, 1), got ${String(s)}`);
  return s;
}

function checkModel(model: unknown, fn: string): asserts model is Module {
  if (!model || typeof (model as Module).namedParameters !== 'function') throw new ArgumentError(`${fn}: model: expected a Module, got ${typeof model}`);
}

/** One batch from one or several (concatenated along the batch dimension); `owned` says whether the caller must free it. */
function oneBatch(b: BatchLike | readonly BatchLike[], fn: string): { batch: BatchLike; owned: boolean } {
  const list = Array.isArray(b) ? (b as readonly BatchLike[]) : [b as BatchLike];
  if (list.length === 0 || list.some((x) => !x || !x.x || !x.y)) throw new ArgumentError(`${fn}: batches: expected a batch { x, y } or a non-empty array of them`);
  if (list.length === 1) return { batch: list[0], owned: false };
  return { batch: tidy(() => ({ x: keep(cat(list.map((x) => x.x))), y: keep(cat(list.map((x) => x.y))) })), owned: true };
}

/**
 * Prune `model` once with a criterion (a registered name or a Criterion value) and return the masks.
 * Data-driven criteria (SNIP, GraSP) need `batches`.
 * @example
 * const { target, record } = prune(model, 'magnitude', { sparsity: 0.9 });
 * train({ model, optimizer, epochs: 1, trainBatches, callbacks: [target.callback()] }); // masks enforced
 * target.dispose();
 */
export function prune(model: Module, criterion: string | Criterion<any>, o: OneShotOptions & { batches?: BatchLike | readonly BatchLike[]; hparams?: Record<string, unknown> }): PruneResult {
  checkModel(model, 'prune');
  const sparsity = checkSparsity(o?.sparsity);
  const c = typeof criterion === 'string' ? getCriterion(criterion) : criterion;
  if (!c || typeof c.score !== 'function') throw new ArgumentError('prune: criterion: expected a registered name or a Criterion value');
  const parsed = c.hparams.safeParse(o.hparams ?? {});
  if (!parsed.success) throw new ArgumentError(`criterion '${c.name}': ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  if (c.needsData && !o.batches) throw new ArgumentError(`${c.name}: batches: this criterion scores on data, and none was given`);
  const scope = o.scope ?? 'global';
  if (scope !== 'global' && scope !== 'layer') throw new ArgumentError(`scope: must be 'global' or 'layer', got '${String(scope)}'`);
  if (o.target && o.target.model !== model) throw new ArgumentError('target: made for another model');
  const target = o.target ?? new PruneTarget(model, { prunable: o.prunable, granularity: o.granularity, inputShape: o.inputShape, groupNorm: o.groupNorm, unit: o.unit });
  let data: { batch: BatchLike; owned: boolean } | null = null;
  const saved = o.apply === false ? tidy(() => noGrad(() => new Map([...target.masks.params].map(([n, p]) => [n, keep(p.detach().clone())])))) : null;
  let scores: Map<string, Tensor> | undefined;
  try {
    data = o.batches ? oneBatch(o.batches, c.name) : null;
    const d = data;
    // The scoring batch is handed out once: the CLI's criteria ask for n examples, here the caller chose them.
    const ctx: ScoreContext = { model, target, batch: d ? () => ({ x: d.batch.x.clone(), y: d.batch.y.clone() }) : undefined };
    scores = c.score(ctx, parsed.data);
    for (const n of target.weights) {
      const s = scores.get(n), w = target.param(n);
      if (!s) throw new ShapeError(`criterion '${c.name}': no score for weight '${n}'`);
      if (s.shape.join(',') !== w.shape.join(',')) throw new ShapeError(`criterion '${c.name}': score for '${n}' has shape [${s.shape}], the weight [${w.shape}]`);
    }
    // Structured: the criterion's group reduction, as the CLI's pruneWith uses it.
    const step = pruneTo(target, scores, { sparsity, scope, groupReduce: c.groupReduce });
    const record: PruneRecord = { ...step, criterion: c.name, scope, granularity: target.granularity, layers: target.counts().layers };
    return { target, masks: target.masks, record };
  } catch (e) {
    if (!o.target) target.dispose();
    throw e;
  } finally {
    if (scores) dispose([...scores.values()]);
    if (data?.owned) { data.batch.x.dispose(); data.batch.y.dispose(); }
    if (saved) {
      noGrad(() => { for (const [n, t] of saved) target.masks.params.get(n)?.copy_(t); });
      dispose([...saved.values()]);
    }
  }
}

/**
 * One-shot magnitude pruning (|w|), global by default.
 * @example
 * const { target, record } = magnitude(model, { sparsity: 0.9, scope: 'global' });
 * console.log(record.achieved); // 0.9 (to one weight)
 */
export function magnitude(model: Module, o: OneShotOptions): PruneResult {
  return prune(model, 'magnitude', o);
}

/**
 * A uniformly random mask (libtorch's generator: seed it with `manualSeed`).
 * @example
 * manualSeed(0);
 * const { target } = random(model, { sparsity: 0.5, scope: 'layer' });
 */
export function random(model: Module, o: OneShotOptions): PruneResult {
  return prune(model, 'random', o);
}

/**
 * SNIP (Lee et al. 2019): |dL/dw * w| on a batch, at initialization. The CLI scores on
 * `scoringBatch(loader, 100, { seed })`; pass the same batch for the same masks.
 * @example
 * const b = scoringBatch(loader, 100, { seed: 0 });
 * const { target } = snip(model, b, { sparsity: 0.95 });
 */
export function snip(model: Module, batches: BatchLike | readonly BatchLike[], o: OneShotOptions): PruneResult {
  return prune(model, 'snip', { ...o, batches });
}

/**
 * GraSP (Wang et al. 2020): -w * Hg by double backprop, the highest removed. The CLI scores on a
 * class-balanced `scoringBatch(loader, 100, { seed, classBalanced: true })`.
 * @example
 * const { target } = grasp(model, scoringBatch(loader, 100, { seed: 0, classBalanced: true }), { sparsity: 0.9, temperature: 200 });
 */
export function grasp(model: Module, batches: BatchLike | readonly BatchLike[], o: OneShotOptions & { temperature?: number }): PruneResult {
  const { temperature, ...rest } = o;
  return prune(model, 'grasp', { ...rest, batches, hparams: temperature === undefined ? {} : { temperature } });
}

/**
 * Head importance (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"): the mean over
 * the examples of |dL(x)/dxi| for a gate xi on each attention head's output (and, with unit
 * 'heads,neurons' or 'neurons', each block MLP neuron's), accumulated over chunks of `chunk`
 * examples, each layer's scores L2-normalized; the lowest-scoring units are removed whole.
 * Structured over transformer units: `unit` defaults to 'heads'.
 * @example
 * const { target, record } = headImportance(vit, scoringBatch(loader, 256, { seed: 0 }), { sparsity: 0.5, inputShape: [1, 28, 28] });
 */
export function headImportance(model: Module, batches: BatchLike | readonly BatchLike[], o: Omit<OneShotOptions, 'granularity'> & { chunk?: number; normalize?: boolean }): PruneResult {
  const { chunk, normalize, ...rest } = o;
  const b = Array.isArray(batches) ? batches : [batches as BatchLike];
  const samples = b.reduce((s, x) => s + (x?.x?.shape?.[0] ?? 0), 0);
  const hparams: Record<string, unknown> = { samples: Math.max(1, samples) };
  if (chunk !== undefined) hparams.chunk = chunk;
  if (normalize !== undefined) hparams.normalize = normalize;
  return prune(model, 'head_importance', { ...rest, granularity: 'structured', unit: rest.unit ?? 'heads', batches, hparams });
}
