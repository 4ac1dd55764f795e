/**
 * Vision transformer (Dosovitskiy et al. 2021) for small images: patch embedding, a class token,
 * learned positional embeddings, pre-norm encoder blocks, a final LayerNorm and a linear head on
 * the class token. Heads and MLP widths are given per block, so a physically pruned ViT (heads and
 * neurons removed, block by block) is the same class with other numbers.
 *
 * vit_tiny (28x28 images): patch 7 (16 patches + the class token = 17 tokens), width 64, 4 blocks of
 * 4 heads of 16, MLP 128 (ratio 2), GELU. 139,018 parameters and 2,427,008 multiply-accumulates per
 * image on MNIST (see test/models/vit.test.ts for the hand count).
 */
import { ArgumentError } from '../core/errors.js';
import { cat, empty } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { normal_ } from '../nn/init.js';
import { Linear, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { LayerNorm, PatchEmbedding, PositionalEmbedding, TransformerEncoderLayer, type Activation } from '../nn/transformer.js';
import type { ModelSpec } from './types.js';

export interface VitConfig {
  imageSize: [number, number];
  inChannels: number;
  patchSize: number;
  dim: number;
  /** Heads per block (its length is the depth). */
  heads: number[];
  headDim: number;
  /** MLP hidden width per block. */
  mlp: number[];
  numClasses: number;
  activation?: Activation;
}

export class VisionTransformer extends Module {
  constructor(readonly config: VitConfig) {
    super();
    const c = config;
    if (c.heads.length === 0 || c.heads.length !== c.mlp.length) throw new ArgumentError(`vit: heads [${c.heads}] and mlp [${c.mlp}] must give one value per block`);
    const patch = this.registerModule('patch_embed', new PatchEmbedding(c.imageSize, c.patchSize, c.inChannels, c.dim));
    normal_(this.registerParameter('cls_token', empty([1, 1, c.dim])), 0, 0.02);
    this.registerModule('pos_embed', new PositionalEmbedding(patch.numPatches + 1, c.dim));
    this.registerModule('blocks', new Sequential(...c.heads.map((h, i) =>
      new TransformerEncoderLayer(c.dim, h, { headDim: c.headDim, dimFeedforward: c.mlp[i], activation: c.activation ?? 'gelu' }))));
    this.registerModule('norm', new LayerNorm(c.dim));
    this.registerModule('head', new Linear(c.dim, c.numClasses));
  }
  get blocks(): TransformerEncoderLayer[] { return (this._children.get('blocks') as Sequential).children() as TransformerEncoderLayer[]; }
  get clsToken(): Tensor { return this._params.get('cls_token')!; }

  forward(x: Tensor): Tensor {
    const t = this._children.get('patch_embed')!.call(x); // [B, N, D]
    const b = t.shape[0];
    let h = cat([this.clsToken.expand(b, 1, this.config.dim), t], 1);
    h = this._children.get('pos_embed')!.call(h);
    h = this._children.get('blocks')!.call(h);
    h = this._children.get('norm')!.call(h);
    return this._children.get('head')!.call(h.select(1, 0));
  }
}

/** The config of vit_tiny for an input shape [C, H, W]. */
export function vitTinyConfig(inputShape: number[], numClasses: number): VitConfig {
  const [c, h, w] = inputShape;
  const patchSize = 7;
  if (h % patchSize || w % patchSize) throw new ArgumentError(`vit_tiny: patchSize ${patchSize} does not divide the image size ${h}x${w} (vit_tiny is for 28x28 images)`);
  return { imageSize: [h, w], inChannels: c, patchSize, dim: 64, heads: [4, 4, 4, 4], headDim: 16, mlp: [128, 128, 128, 128], numClasses };
}

export const vitTiny: ModelSpec = {
  name: 'vit_tiny',
  description: 'ViT for 28x28 images: patch 7, width 64, 4 pre-norm blocks of 4 heads, MLP 128, class token',
  build: (c) => new VisionTransformer(vitTinyConfig(c.inputShape, c.numClasses)),
};
