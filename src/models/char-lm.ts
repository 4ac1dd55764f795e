/**
 * char_lm: a small causal transformer language model over characters. Token embedding, learned
 * positions, pre-norm causal encoder blocks (each position attends to itself and earlier ones), a
 * final LayerNorm and a linear read-out of the next character's logits at every position.
 * Input int64 [B, T] (T <= context), output [B, T, vocab]. Not in the image-model registry: its
 * input is a sequence of token ids, not an image (see src/experiment/char-lm.ts for training).
 */
import { ArgumentError, DtypeError } from '../core/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Linear, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Embedding, LayerNorm, PositionalEmbedding, TransformerEncoderLayer } from '../nn/transformer.js';

export interface CharLmConfig { vocab: number; context: number; dim: number; depth: number; heads: number; mlp: number }

/** The defaults: width 64, 2 blocks of 4 heads, MLP 256, context 64. */
export const CHAR_LM_DEFAULTS = { context: 64, dim: 64, depth: 2, heads: 4, mlp: 256 } as const;

export class CharLM extends Module {
  constructor(readonly config: CharLmConfig) {
    super();
    const c = config;
    if (c.dim % c.heads !== 0) throw new ArgumentError(`char_lm: heads ${c.heads} does not divide the width ${c.dim}`);
    this.registerModule('tok_embed', new Embedding(c.vocab, c.dim));
    this.registerModule('pos_embed', new PositionalEmbedding(c.context, c.dim));
    this.registerModule('blocks', new Sequential(...Array.from({ length: c.depth }, () =>
      new TransformerEncoderLayer(c.dim, c.heads, { dimFeedforward: c.mlp, causal: true }))));
    this.registerModule('norm', new LayerNorm(c.dim));
    this.registerModule('head', new Linear(c.dim, c.vocab));
  }
  forward(ids: Tensor): Tensor {
    if (ids.dtype !== 'int64') throw new DtypeError(`char_lm: input must be int64 token ids [B, T], got ${ids.dtype}`);
    if (ids.ndim !== 2 || ids.shape[1] > this.config.context) throw new ArgumentError(`char_lm: input must be [B, T] with T <= ${this.config.context}, got [${ids.shape}]`);
    let h = this._children.get('tok_embed')!.call(ids);
    h = this._children.get('pos_embed')!.call(h);
    h = this._children.get('blocks')!.call(h);
    return this._children.get('head')!.call(this._children.get('norm')!.call(h));
  }
}
