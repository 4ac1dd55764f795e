/**
 * Candidate evaluation, the inner loop of the whole search: masks are written into the model's own
 * weights in place (w.copy_(dense).mul_(mask): no model, parameter or optimizer is re-allocated),
 * BatchNorm statistics are re-estimated on a fixed calibration set (masks shift every
 * activation's mean and variance, and stale statistics would rank candidates by how little they
 * moved rather than how good they are), then one forward pass over the pre-loaded validation
 * subset counts the errors.
 */
import { ArgumentError } from '../../core/errors.js';
import type { Module } from '../../nn/module.js';
import { noGrad } from '../../tensor/autograd.js';
import { tensor } from '../../tensor/creation.js';
import { keep, tidy } from '../../tensor/scope.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { LayerMasks, PrunableLayout } from './layout.js';
import { normsOf, type Norms } from './norms.js';
import { companionMasks, type GroupStructure } from './structured.js';

export interface EvalBatch { x: Tensor; y: Tensor }

export interface EvaluatorData {
  /** The validation subset, pre-loaded once (the evaluator keeps and frees them). */
  val: EvalBatch[];
  /** Inputs of the BatchNorm calibration batches (training data, no augmentation). */
  calib: Tensor[];
}

/**
 * error = wrong / n. A candidate stopped by racing (racing.ts) has `seen` < n: the images it was
 * scored on, `correct` of them right, and `error` the lower bound (wrong so far) / n.
 */
export interface CandidateResult { error: number; correct: number; n: number; seen?: number }

/**
 * Scores the candidates of one generation. `masksOf(i)` makes candidate i's masks when it is
 * scheduled, so only the candidates being evaluated hold their masks (a generation of a large
 * model would otherwise hold pop copies at once). Results come back in candidate order.
 * Implemented by MaskedEvaluator (in this thread, one after another) and EvalPool (worker threads).
 */
export interface BatchEvaluator {
  /**
   * `maxWrongOf(i)`, when given and defined, lets candidate i stop once it has made more errors than
   * that (racing); an evaluator may also ignore it and score every image.
   */
  evaluateBatch(count: number, masksOf: (i: number) => LayerMasks, maxWrongOf?: (i: number) => number | undefined): Promise<CandidateResult[]>;
}

export class MaskedEvaluator implements BatchEvaluator {
  readonly layout: PrunableLayout;
  readonly model: Module;
  readonly n: number;
  private readonly dense: Tensor[];
  private readonly norms: Norms;
  private readonly bnSaved: Tensor[][];
  private readonly data: EvaluatorData;
  /** Structured granularity: the channel groups, and the companions (biases, BatchNorm affine) zeroed with a removed group. */
  readonly structure: GroupStructure | null;
  private readonly comp: { name: string; param: Tensor; dense: Tensor }[] = [];
  /** Candidates evaluated so far, and seconds spent (benchmarks read them). */
  evaluations = 0;
  seconds = 0;

  constructor(model: Module, layout: PrunableLayout, data: EvaluatorData, o: { structure?: GroupStructure } = {}) {
    if (data.val.length === 0) throw new ArgumentError('MaskedEvaluator: empty validation subset');
    this.norms = normsOf(model);
    if (this.norms.layers.length > 0 && data.calib.length === 0) {
      throw new ArgumentError('MaskedEvaluator: the model has BatchNorm layers, so calibration batches are needed (data.calib is empty)');
    }
    this.model = model;
    this.layout = layout;
    this.data = data;
    for (const b of data.val) { keep(b.x); keep(b.y); }
    for (const x of data.calib) keep(x);
    this.n = data.val.reduce((s, b) => s + b.y.shape[0], 0);
    this.dense = tidy(() => noGrad(() => layout.params.map((p) => keep(p.detach().clone()))));
    this.bnSaved = tidy(() => this.norms.layers.map((bn) => bn.buffers.map((b) => keep(b.clone()))));
    this.structure = o.structure ?? null;
    if (this.structure) {
      const params = new Map(model.namedParameters());
      const names = [...new Set(this.structure.groups.flatMap((g) => g.entries.map((e) => e.param)))];
      for (const name of names) {
        const param = params.get(name);
        if (!param) throw new ArgumentError(`MaskedEvaluator: the channel groups name '${name}', which the model does not have`);
        this.comp.push({ name, param, dense: tidy(() => noGrad(() => keep(param.detach().clone()))) });
      }
    }
  }

  /** Structured granularity: the companions' masks of a mask set (empty otherwise). */
  companions(masks: LayerMasks): Map<string, Uint8Array> {
    if (!this.structure) return new Map();
    return companionMasks(this.layout, this.structure, masks, new Map(this.comp.map((c) => [c.name, c.param.numel])));
  }

  get hasBatchNorm(): boolean { return this.norms.layers.length > 0; }

  /** Validation error of the dense network (BatchNorm as trained: no recalibration). */
  denseError(): CandidateResult {
    this.restore();
    return this.forwardVal();
  }

  /** Writes the masks into the weights (dense * mask) and recalibrates BatchNorm; the model stays masked. */
  apply(masks: LayerMasks): void {
    this.layout.check(masks);
    tidy(() => noGrad(() => {
      this.layout.params.forEach((p, l) => {
        const m = tensor(masks[l], { shape: p.shape, device: p.device }); // uint8, p's shape
        p.copy_(this.dense[l]).mul_(m);
      });
      for (const [name, cm] of this.companions(masks)) {
        const c = this.comp.find((x) => x.name === name)!;
        c.param.copy_(c.dense).mul_(tensor(cm, { shape: c.param.shape, device: c.param.device }));
      }
    }));
    if (this.hasBatchNorm) this.recalibrate();
  }

  /** One candidate: masks in place, BatchNorm recalibrated, forward over the validation subset. */
  evaluate(masks: LayerMasks, maxWrong?: number): CandidateResult {
    const t0 = performance.now();
    this.apply(masks);
    const r = this.forwardVal(maxWrong);
    this.evaluations++;
    this.seconds += (performance.now() - t0) / 1000;
    return r;
  }

  /** The sequential BatchEvaluator: the candidates one after another, in this thread. */
  async evaluateBatch(count: number, masksOf: (i: number) => LayerMasks, maxWrongOf?: (i: number) => number | undefined): Promise<CandidateResult[]> {
    const out: CandidateResult[] = [];
    for (let i = 0; i < count; i++) out.push(this.evaluate(masksOf(i), maxWrongOf?.(i)));
    return out;
  }

  /**
   * Forward over the validation subset in eval mode, as the model stands now. With `maxWrong`, it
   * stops after the first batch that brings the errors past it (racing.ts).
   */
  forwardVal(maxWrong?: number): CandidateResult {
    const was = this.model.training;
    this.model.eval();
    let correct = 0, seen = 0;
    try {
      for (const b of this.data.val) {
        correct += tidy(() => noGrad(() => this.model.call(b.x).argmax(1).eq(b.y).sum().item()));
        seen += b.y.shape[0];
        if (maxWrong !== undefined && seen < this.n && seen - correct > maxWrong) {
          return { error: (seen - correct) / this.n, correct, n: this.n, seen };
        }
      }
    } finally {
      this.model.train(was);
    }
    return { error: 1 - correct / this.n, correct, n: this.n };
  }

  /**
   * BatchNorm statistics from scratch, as PyTorch's momentum=None (a cumulative average): running
   * stats reset, then batch k (from 1) enters with momentum 1/k. Only the BatchNorm layers are in
   * train mode, so dropout stays off.
   */
  recalibrate(): void {
    noGrad(() => {
      for (const bn of this.norms.layers) {
        const [mean, v, nb] = bn.buffers;
        mean.zero_(); v.fill_(1); nb?.zero_();
      }
    });
    const leave = this.norms.enter();
    try {
      this.data.calib.forEach((x, k) => {
        for (const bn of this.norms.layers) bn.setMomentum(1 / (k + 1));
        tidy(() => noGrad(() => { this.model.call(x); }));
      });
    } finally {
      leave();
    }
  }

  /** Dense weights and the trained BatchNorm statistics back in the model. */
  restore(): void {
    noGrad(() => {
      this.layout.params.forEach((p, l) => p.copy_(this.dense[l]));
      for (const c of this.comp) c.param.copy_(c.dense);
      this.norms.layers.forEach((bn, i) => bn.buffers.forEach((b, j) => b.copy_(this.bnSaved[i][j])));
    });
  }

  /** The dense weights (kept by the evaluator; read them, don't free them). */
  denseWeights(): readonly Tensor[] { return this.dense; }

  /** Restores the model and frees the copies and the pre-loaded data. */
  dispose(): void {
    this.restore();
    for (const t of this.dense) t.dispose();
    for (const c of this.comp) c.dense.dispose();
    for (const ts of this.bnSaved) for (const t of ts) t.dispose();
    for (const b of this.data.val) { b.x.dispose(); b.y.dispose(); }
    for (const x of this.data.calib) x.dispose();
  }
}
