/**
 * Transformer layers: Embedding, LayerNorm, GELU (exact and tanh), scaled dot-product attention
 * with causal and key-padding masks, MultiheadAttention in PyTorch's parameter layout
 * (`in_proj_weight`, `in_proj_bias`, `out_proj.weight`, `out_proj.bias`), a pre-norm
 * TransformerEncoderLayer (PyTorch's `norm_first=True` names: self_attn, linear1, linear2, norm1,
 * norm2), learned positional embeddings and a patch embedding for images. All are composed from
 * existing ops, so autograd gives every backward (Embedding's is index_select's scatter-add).
 *
 * Masks follow nn.MultiheadAttention: a bool `attnMask` [L, S] (or [B*H, L, S] / [B, H, L, S]) and
 * a bool `keyPaddingMask` [B, S] are true where attention is NOT allowed. A row with every key
 * blocked gives NaN, as in PyTorch.
 *
 * Head counts may differ from embedDim / numHeads: `headDim` sets the width of one head, so the
 * inner width is numHeads * headDim (what physical head removal leaves behind).
 */
import { ArgumentError, DtypeError, ShapeError } from '../core/errors.js';
import { arange, empty, ones, zeros } from '../tensor/creation.js';
import * as F from '../tensor/nn-ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { normal_, xavierUniform_, zeros_ } from './init.js';
import { Dropout, Linear, Conv2d, ReLU } from './layers.js';
import { Module } from './module.js';

function positiveInt(op: string, name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new ArgumentError(`${op}: ${name} must be a positive integer, got ${v}`);
  return v;
}

// ---- functional -------------------------------------------------------------------------------

export type GeluApproximate = 'none' | 'tanh';
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
/** GELU: exact x * Phi(x), or PyTorch's tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function gelu(x: Tensor, approximate: GeluApproximate = 'none'): Tensor {
  if (approximate === 'none') return F.gelu(x);
  if (approximate !== 'tanh') throw new ArgumentError(`gelu: approximate must be 'none' or 'tanh', got '${approximate as string}'`);
  const inner = x.pow(3).mul(0.044715).add(x).mul(SQRT_2_OVER_PI);
  return inner.tanh().add(1).mul(x).mul(0.5);
}

export function embedding(indices: Tensor, weight: Tensor): Tensor {
  if (indices.dtype !== 'int64') throw new DtypeError(`embedding: indices must be int64, got ${indices.dtype} (use .long())`);
  const shape = indices.shape;
  return weight.indexSelect(0, indices.reshape(-1)).view([...shape, weight.shape[1]]);
}

export interface AttentionOptions {
  /** Bool, true where attention is not allowed; broadcast against the scores [..., L, S]. */
  attnMask?: Tensor | null;
  /** Bool [B, S], true at padding keys; needs 4-d inputs [B, H, L, E] (or 3-d [B, L, E]). */
  keyPaddingMask?: Tensor | null;
  /** Block key j for query i when j > i (L and S must be equal). */
  causal?: boolean;
  /** Defaults to 1 / sqrt(E). */
  scale?: number;
}

/** The bool tensor of blocked (query, key) pairs, broadcastable to the scores, or null when none is. */
function blockedPairs(scores: Tensor, o: AttentionOptions): Tensor | null {
  const s = scores.shape, L = s[s.length - 2], S = s[s.length - 1];
  const parts: Tensor[] = [];
  const or = (m: Tensor) => { parts.push(m); };
  if (o.causal) {
    if (L !== S) throw new ShapeError(`attention: a causal mask needs as many queries as keys, got ${L} and ${S}`);
    or(arange(L).view(L, 1).lt(arange(S).view(1, S)));
  }
  if (o.attnMask) {
    const m = o.attnMask;
    if (m.dtype !== 'bool') throw new DtypeError(`attention: attnMask must be bool (true = blocked), got ${m.dtype}`);
    const ms = m.shape;
    if (ms[ms.length - 1] !== S || ms[ms.length - 2] !== L) throw new ShapeError(`attention: attnMask has shape [${ms}], the scores are [${s}]`);
    or(m.ndim === 3 && s.length === 4 ? m.view(s[0], s[1], L, S) : m);
  }
  if (o.keyPaddingMask) {
    const m = o.keyPaddingMask;
    if (m.dtype !== 'bool') throw new DtypeError(`attention: keyPaddingMask must be bool (true = padding), got ${m.dtype}`);
    if (m.ndim !== 2 || m.shape[0] !== s[0] || m.shape[1] !== S) throw new ShapeError(`attention: keyPaddingMask must be [B, S] = [${s[0]}, ${S}], got [${m.shape}]`);
    or(s.length === 4 ? m.view(s[0], 1, 1, S) : m.view(s[0], 1, S));
  }
  return parts.length === 0 ? null : parts.reduce((a, m) => a.logicalOr(m));
}

/**
 * softmax(q k^T * scale, masked) v for q [..., L, E], k [..., S, E], v [..., S, Ev]. Returns the
 * output [..., L, Ev] and the attention weights [..., L, S].
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}): { output: Tensor; weights: Tensor } {
  const qs = q.shape, ks = k.shape, vs = v.shape;
  if (qs.length < 2 || ks.length !== qs.length || vs.length !== qs.length) throw new ShapeError(`attention: q, k and v must have the same rank >= 2, got [${qs}], [${ks}], [${vs}]`);
  if (qs[qs.length - 1] !== ks[ks.length - 1]) throw new ShapeError(`attention: q's last dim ${qs[qs.length - 1]} differs from k's ${ks[ks.length - 1]}`);
  if (ks[ks.length - 2] !== vs[vs.length - 2]) throw new ShapeError(`attention: k has ${ks[ks.length - 2]} keys, v has ${vs[vs.length - 2]} values`);
  const scale = o.scale ?? 1 / Math.sqrt(qs[qs.length - 1]);
  let scores = q.matmul(k.transpose(-2, -1)).mul(scale);
  const blocked = blockedPairs(scores, o);
  if (blocked) scores = scores.maskedFill(blocked, -Infinity);
  const weights = F.softmax(scores, -1);
  return { output: weights.matmul(v), weights };
}

// ---- modules ------------------------------------------------------------------------------------

/** A lookup table [numEmbeddings, embeddingDim], initialized N(0, 1) as in PyTorch. */
export class Embedding extends Module {
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number) {
    super();
    positiveInt('Embedding', 'numEmbeddings', numEmbeddings);
    positiveInt('Embedding', 'embeddingDim', embeddingDim);
    normal_(this.registerParameter('weight', empty([numEmbeddings, embeddingDim])), 0, 1);
  }
  get weight(): Tensor { return this._params.get('weight')!; }
  forward(indices: Tensor): Tensor { return embedding(indices, this.weight); }
}

export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  constructor(normalizedShape: number | number[], readonly eps = 1e-5, elementwiseAffine = true) {
    super();
    this.normalizedShape = Array.isArray(normalizedShape) ? normalizedShape : [normalizedShape];
    this.normalizedShape.forEach((d) => positiveInt('LayerNorm', 'normalizedShape', d));
    if (elementwiseAffine) {
      this.registerParameter('weight', ones(this.normalizedShape));
      this.registerParameter('bias', zeros(this.normalizedShape));
    }
  }
  get weight(): Tensor | null { return this._params.get('weight') ?? null; }
  get bias(): Tensor | null { return this._params.get('bias') ?? null; }
  forward(x: Tensor): Tensor {
    const n = this.normalizedShape, xs = x.shape;
    if (xs.length < n.length || n.some((d, i) => xs[xs.length - n.length + i] !== d)) throw new ShapeError(`LayerNorm: input [${xs}] does not end in the normalized shape [${n}]`);
    return F.layerNorm(x, n, this.weight, this.bias, this.eps);
  }
}

export class GELU extends Module {
  constructor(readonly approximate: GeluApproximate = 'none') {
    super();
    if (approximate !== 'none' && approximate !== 'tanh') throw new ArgumentError(`GELU: approximate must be 'none' or 'tanh', got '${approximate as string}'`);
  }
  forward(x: Tensor): Tensor { return gelu(x, this.approximate); }
}

/** Per-head outputs [B, H, L, headDim] in, same shape out: where a head's mass scales it (EVO-POP). */
export type HeadGate = (heads: Tensor) => Tensor;

export interface MultiheadAttentionOptions {
  bias?: boolean;
  /** Width of one head (default embedDim / numHeads, which must then divide). */
  headDim?: number;
  /** Self-attention through forward() is causal. */
  causal?: boolean;
}

/**
 * Multi-head attention over batch-first inputs [B, L, D], with PyTorch's parameters: in_proj_weight
 * [3 H dh, D] (the q, k, v rows stacked), in_proj_bias [3 H dh], out_proj (Linear H dh -> D).
 * Initialized as PyTorch: xavier_uniform in_proj_weight, zero biases.
 */
export class MultiheadAttention extends Module {
  readonly headDim: number;
  readonly causal: boolean;
  /** Applied to the per-head outputs before the heads are merged and projected (null: none). */
  headGate: HeadGate | null = null;
  constructor(readonly embedDim: number, readonly numHeads: number, o: MultiheadAttentionOptions = {}) {
    super();
    positiveInt('MultiheadAttention', 'embedDim', embedDim);
    positiveInt('MultiheadAttention', 'numHeads', numHeads);
    if (o.headDim === undefined && embedDim % numHeads !== 0) throw new ArgumentError(`MultiheadAttention: numHeads ${numHeads} does not divide embedDim ${embedDim}`);
    this.headDim = positiveInt('MultiheadAttention', 'headDim', o.headDim ?? embedDim / numHeads);
    this.causal = o.causal ?? false;
    const inner = this.innerDim, bias = o.bias ?? true;
    xavierUniform_(this.registerParameter('in_proj_weight', empty([3 * inner, embedDim])));
    if (bias) this.registerParameter('in_proj_bias', zeros([3 * inner]));
    const out = this.registerModule('out_proj', new Linear(inner, embedDim, bias));
    if (out.bias) zeros_(out.bias);
  }
  get innerDim(): number { return this.numHeads * this.headDim; }
  get inProjWeight(): Tensor { return this._params.get('in_proj_weight')!; }
  get inProjBias(): Tensor | null { return this._params.get('in_proj_bias') ?? null; }
  get outProj(): Linear { return this._children.get('out_proj') as Linear; }

  /** Self-attention (causal when built so). */
  forward(x: Tensor): Tensor { return this.attend(x, x, x, { causal: this.causal, needWeights: false }).output; }

  /** [B, L, D] -> [B, H, L, dh] */
  private split(t: Tensor): Tensor {
    const [b, l] = t.shape;
    return t.view(b, l, this.numHeads, this.headDim).transpose(1, 2);
  }

  /**
   * query [B, L, D], key and value [B, S, D]. Returns the output [B, L, D] and, unless needWeights
   * is false, the attention weights averaged over heads [B, L, S] (as PyTorch's need_weights).
   */
  attend(query: Tensor, key: Tensor, value: Tensor, o: Omit<AttentionOptions, 'scale'> & { needWeights?: boolean } = {}): { output: Tensor; weights: Tensor | null } {
    const D = this.embedDim, inner = this.innerDim;
    for (const [n, t] of [['query', query], ['key', key], ['value', value]] as const) {
      if (t.ndim !== 3 || t.shape[2] !== D) throw new ShapeError(`MultiheadAttention: ${n} must be [B, L, ${D}], got [${t.shape}]`);
    }
    const w = this.inProjWeight, b = this.inProjBias;
    let q: Tensor, k: Tensor, v: Tensor;
    if (query === key && key === value) {
      const [B, L] = query.shape;
      const qkv = F.linear(query, w, b).view(B, L, 3, this.numHeads, this.headDim).permute(2, 0, 3, 1, 4); // [3, B, H, L, dh]
      [q, k, v] = [0, 1, 2].map((i) => qkv.select(0, i));
    } else {
      const part = (t: Tensor, i: number) => this.split(F.linear(t, w.narrow(0, i * inner, inner), b ? b.narrow(0, i * inner, inner) : null));
      [q, k, v] = [part(query, 0), part(key, 1), part(value, 2)];
    }
    const att = scaledDotProductAttention(q, k, v, o);
    let heads = att.output; // [B, H, L, dh]
    if (this.headGate) heads = this.headGate(heads);
    const [B, , L] = heads.shape;
    const merged = heads.transpose(1, 2).reshape(B, L, inner);
    return { output: this.outProj.call(merged), weights: o.needWeights === false ? null : att.weights.mean(1) };
  }
}

export type Activation = 'gelu' | 'gelu_tanh' | 'relu';
export interface EncoderLayerOptions {
  dimFeedforward?: number;
  dropout?: number;
  activation?: Activation;
  layerNormEps?: number;
  causal?: boolean;
  headDim?: number;
}

const activationModule = (a: Activation): Module => {
  if (a === 'gelu') return new GELU();
  if (a === 'gelu_tanh') return new GELU('tanh');
  if (a === 'relu') return new ReLU();
  throw new ArgumentError(`TransformerEncoderLayer: activation must be gelu, gelu_tanh or relu, got '${a as string}'`);
};

/**
 * Pre-norm encoder layer (PyTorch's TransformerEncoderLayer with norm_first=True, batch_first=True):
 *   x = x + dropout(self_attn(norm1(x)));  x = x + dropout(linear2(dropout(act(linear1(norm2(x)))))).
 * EVO-POP replaces `self_attn` by a head-population wrapper and `linear1` + the activation by a
 * neuron population (wrapAttention / wrapHidden); the parameter names keep PyTorch's otherwise.
 */
export class TransformerEncoderLayer extends Module {
  readonly activation: Module;
  readonly drop: Dropout;
  private hiddenWrapped = false;
  constructor(readonly dModel: number, readonly nHead: number, o: EncoderLayerOptions = {}) {
    super();
    const ff = o.dimFeedforward ?? 4 * dModel, eps = o.layerNormEps ?? 1e-5;
    this.registerModule('self_attn', new MultiheadAttention(dModel, nHead, { causal: o.causal, headDim: o.headDim }));
    this.registerModule('linear1', new Linear(dModel, ff));
    this.registerModule('linear2', new Linear(ff, dModel));
    this.registerModule('norm1', new LayerNorm(dModel, eps));
    this.registerModule('norm2', new LayerNorm(dModel, eps));
    this.activation = activationModule(o.activation ?? 'gelu');
    this.drop = new Dropout(o.dropout ?? 0);
  }
  /** The attention module: a MultiheadAttention, or what wrapAttention put in its place. */
  get selfAttn(): Module { return this._children.get('self_attn')!; }
  /** The first feed-forward Linear, or what wrapHidden put in its place (then it includes the activation). */
  get linear1(): Module { return this._children.get('linear1')!; }
  get linear2(): Linear { return this._children.get('linear2') as Linear; }
  get norm1(): LayerNorm { return this._children.get('norm1') as LayerNorm; }
  get norm2(): LayerNorm { return this._children.get('norm2') as LayerNorm; }
  get isHiddenWrapped(): boolean { return this.hiddenWrapped; }

  /** Replace self_attn by wrap(self_attn): a module mapping [B, L, D] to [B, L, D]. */
  wrapAttention(wrap: (attn: Module) => Module): void { this.registerModule('self_attn', wrap(this.selfAttn)); }
  /** Replace linear1 by wrap(linear1, activation): a module computing the hidden activations. */
  wrapHidden(wrap: (linear1: Linear, activation: Module) => Module): void {
    if (this.hiddenWrapped) throw new ArgumentError('TransformerEncoderLayer: the hidden layer is wrapped already');
    this.registerModule('linear1', wrap(this.linear1 as Linear, this.activation));
    this.hiddenWrapped = true;
  }

  /** Self-attention with a key padding mask ([B, L], true at padding); needs the plain attention module. */
  forwardMasked(x: Tensor, keyPaddingMask: Tensor): Tensor {
    const a = this.selfAttn;
    if (!(a instanceof MultiheadAttention)) throw new ArgumentError('TransformerEncoderLayer: forwardMasked needs a plain MultiheadAttention');
    const h = this.norm1.call(x);
    return this.feedForward(x.add(this.drop.call(a.attend(h, h, h, { causal: a.causal, keyPaddingMask, needWeights: false }).output)));
  }

  forward(x: Tensor): Tensor {
    return this.feedForward(x.add(this.drop.call(this.selfAttn.call(this.norm1.call(x)))));
  }

  private feedForward(x: Tensor): Tensor {
    let h = this.linear1.call(this.norm2.call(x));
    if (!this.hiddenWrapped) h = this.activation.call(h);
    return x.add(this.drop.call(this.linear2.call(this.drop.call(h))));
  }
}

/** Learned positional embeddings: adds weight[0:L] to [B, L, D]; initialized N(0, 0.02^2). */
export class PositionalEmbedding extends Module {
  constructor(readonly numPositions: number, readonly dim: number) {
    super();
    positiveInt('PositionalEmbedding', 'numPositions', numPositions);
    positiveInt('PositionalEmbedding', 'dim', dim);
    normal_(this.registerParameter('weight', empty([numPositions, dim])), 0, 0.02);
  }
  get weight(): Tensor { return this._params.get('weight')!; }
  forward(x: Tensor): Tensor {
    const s = x.shape;
    if (s.length !== 3 || s[2] !== this.dim) throw new ShapeError(`PositionalEmbedding: input must be [B, L, ${this.dim}], got [${s}]`);
    if (s[1] > this.numPositions) throw new ShapeError(`PositionalEmbedding: ${s[1]} positions, the table has ${this.numPositions}`);
    return x.add(s[1] === this.numPositions ? this.weight : this.weight.narrow(0, 0, s[1]));
  }
}

/**
 * Patch embedding: a Conv2d with kernel = stride = patchSize (child `proj`), flattened to tokens:
 * [B, C, H, W] -> [B, (H/p)(W/p), D], patches in row-major order.
 */
export class PatchEmbedding extends Module {
  readonly numPatches: number;
  readonly grid: [number, number];
  constructor(readonly imageSize: [number, number], readonly patchSize: number, readonly inChannels: number, readonly dim: number) {
    super();
    positiveInt('PatchEmbedding', 'patchSize', patchSize);
    const [h, w] = imageSize;
    if (h % patchSize || w % patchSize) throw new ArgumentError(`PatchEmbedding: patchSize ${patchSize} does not divide the image size ${h}x${w}`);
    this.grid = [h / patchSize, w / patchSize];
    this.numPatches = this.grid[0] * this.grid[1];
    this.registerModule('proj', new Conv2d(inChannels, dim, patchSize, { stride: patchSize }));
  }
  get proj(): Conv2d { return this._children.get('proj') as Conv2d; }
  forward(x: Tensor): Tensor {
    const s = x.shape, [h, w] = this.imageSize;
    if (s.length !== 4 || s[1] !== this.inChannels || s[2] !== h || s[3] !== w) throw new ShapeError(`PatchEmbedding: input must be [B, ${this.inChannels}, ${h}, ${w}], got [${s}]`);
    return this.proj.call(x).flatten(2).transpose(1, 2);
  }
}
