/**
 * Transformer layers against PyTorch 1.13 (test/fixtures/transformer.json, from
 * scripts/make-transformer-fixtures.py): each case builds topiary's module, loads PyTorch's
 * parameters by their PyTorch names, runs the same inputs, and compares every output and the
 * gradients of sum_k sum(out_k * w_k) for the inputs and every parameter. Attention is also
 * checked in float64 against finite differences, and bad shapes are rejected naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArgumentError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import {
  Embedding, GELU, LayerNorm, Module, MultiheadAttention, PatchEmbedding, PositionalEmbedding, TransformerEncoderLayer,
  gelu, scaledDotProductAttention, type Activation,
} from '../../src/nn/index.js';
import { grad, tensor, tidy, type Tensor } from '../../src/tensor/index.js';
import { gradcheck, randn64 } from '../tensor/gradcheck-util.js';
import { assertTensorClose, fixture, fromRec, noLeaks, type Rec } from './util.js';

interface Case {
  name: string; kind: string; args: Record<string, any>; inputs: Record<string, Rec>; params: Record<string, Rec>;
  outputs: Record<string, Rec>; gradWeights: Record<string, Rec>; grads: Record<string, Rec>;
}
const fx = fixture<{ cases: Case[] }>('transformer.json');

function build(c: Case): { module: Module | null; run: (m: Module | null, i: Record<string, Tensor>) => Record<string, Tensor> } {
  const a = c.args;
  switch (c.kind) {
    case 'embedding': return { module: new Embedding(a.n, a.d), run: (m, i) => ({ y: m!.call(i.idx) }) };
    case 'layernorm': return { module: new LayerNorm(a.shape, a.eps), run: (m, i) => ({ y: m!.call(i.x) }) };
    case 'gelu': return { module: new GELU(a.approximate), run: (m, i) => ({ y: m!.call(i.x) }) };
    case 'sdpa': return {
      module: null,
      run: (_m, i) => { const r = scaledDotProductAttention(i.q, i.k, i.v, { causal: a.causal, keyPaddingMask: i.pad ?? null }); return { output: r.output, weights: r.weights }; },
    };
    case 'mha': return {
      module: new MultiheadAttention(a.d, a.h, { causal: a.causal }),
      run: (m, i) => {
        const mha = m as MultiheadAttention;
        const r = a.mode === 'cross' ? mha.attend(i.query, i.key, i.value) : mha.attend(i.x, i.x, i.x, { causal: a.causal, keyPaddingMask: i.pad ?? null });
        return { y: r.output, weights: r.weights! };
      },
    };
    case 'encoder': return {
      module: new TransformerEncoderLayer(a.d, a.h, { dimFeedforward: a.ff, activation: a.activation as Activation, causal: a.causal }),
      run: (m, i) => ({ y: i.pad ? (m as TransformerEncoderLayer).forwardMasked(i.x, i.pad) : m!.call(i.x) }),
    };
    case 'posembed': return { module: new PositionalEmbedding(a.n, a.d), run: (m, i) => ({ y: m!.call(i.x) }) };
    case 'patch': return { module: new PatchEmbedding(a.image, a.patch, a.c, a.d), run: (m, i) => ({ y: m!.call(i.x) }) };
    default: throw new Error(`fixture kind ${c.kind} has no builder`);
  }
}

test('the fixture covers every layer asked for', () => {
  const kinds = new Set(fx.cases.map((c) => c.kind));
  for (const k of ['embedding', 'layernorm', 'gelu', 'sdpa', 'mha', 'encoder', 'posembed', 'patch']) assert.ok(kinds.has(k), k);
  assert.ok(fx.cases.some((c) => c.kind === 'gelu' && c.args.approximate === 'tanh'));
  assert.ok(fx.cases.some((c) => c.kind === 'sdpa' && c.args.causal) && fx.cases.some((c) => c.kind === 'sdpa' && c.args.keyPadding));
  assert.ok(fx.cases.some((c) => c.kind === 'mha' && 'pad' in c.inputs) && fx.cases.some((c) => c.kind === 'encoder' && c.args.causal));
});

for (const c of fx.cases) {
  test(`${c.kind}: ${c.name}`, async () => {
    const { module, run } = build(c);
    try {
      await noLeaks(c.name, () => tidy(() => {
        if (module) {
          const sd = Object.fromEntries(Object.entries(c.params).map(([k, r]) => [k, fromRec(r)]));
          module.loadStateDict(sd);
        }
        const inputs = Object.fromEntries(Object.entries(c.inputs).map(([k, r]) => [k, fromRec(r, r.dtype === 'float32')]));
        const outs = run(module, inputs);
        assert.deepEqual(Object.keys(outs).sort(), Object.keys(c.outputs).sort());
        let loss: Tensor | null = null;
        for (const [k, r] of Object.entries(c.outputs)) {
          assertTensorClose(outs[k], r, `${c.name}: ${k}`, [1e-5, 1e-6]);
          const term = outs[k].mul(fromRec(c.gradWeights[k])).sum();
          loss = loss ? loss.add(term) : term;
        }
        const params = module ? Object.fromEntries(module.namedParameters()) : {};
        const targets = Object.keys(c.grads).map((k) => (k.startsWith('param:') ? params[k.slice(6)] : inputs[k]));
        const gs = grad(loss!, targets, { allowUnused: true });
        Object.keys(c.grads).forEach((k, j) => assertTensorClose(gs[j], c.grads[k], `${c.name}: d/d ${k}`, [1e-4, 1e-5]));
      }));
    } finally {
      module?.dispose();
    }
  });
}

test('attention in float64: autograd matches finite differences (causal, padding, cross)', () => {
  tidy(() => {
    const rng = new Rng(5);
    const q = randn64(rng, [2, 2, 3, 4]), k = randn64(rng, [2, 2, 3, 4]), v = randn64(rng, [2, 2, 3, 2]);
    gradcheck('sdpa', (a, b, c) => scaledDotProductAttention(a, b, c).output, [q, k, v]);
    gradcheck('sdpa causal', (a, b, c) => scaledDotProductAttention(a, b, c, { causal: true }).output, [q, k, v]);
    const pad = tensor([[false, false, true], [false, false, false]], { dtype: 'bool' });
    gradcheck('sdpa key padding', (a, b, c) => scaledDotProductAttention(a, b, c, { keyPaddingMask: pad }).output, [q, k, v]);
    gradcheck('gelu tanh', (a) => gelu(a, 'tanh'), [randn64(rng, [9])]);
  });
});

test('MultiheadAttention in float64 (causal): the gradient of its input matches finite differences', () => {
  const m = new MultiheadAttention(4, 2, { causal: true });
  try {
    const rng = new Rng(9);
    for (const [n, p] of m.namedParameters()) m.setParameter(n, randn64(rng, p.shape, 0.5));
    tidy(() => { gradcheck('mha', (x) => m.call(x), [randn64(rng, [2, 3, 4])]); });
  } finally {
    m.dispose();
  }
});

test('bad shapes and options are rejected with the field named', () => {
  assert.throws(() => new MultiheadAttention(10, 4), (e: unknown) => e instanceof ArgumentError && /numHeads 4 does not divide embedDim 10/.test((e as Error).message));
  assert.throws(() => new PatchEmbedding([28, 28], 5, 1, 8), (e: unknown) => e instanceof ArgumentError && /patchSize 5 does not divide the image size 28x28/.test((e as Error).message));
  const ln = new LayerNorm(4);
  assert.throws(() => tidy(() => ln.call(tensor([[1, 2, 3]]))), /LayerNorm: input \[1,3\] does not end in the normalized shape \[4\]/);
  const e = new Embedding(3, 2);
  assert.throws(() => tidy(() => e.call(tensor([0, 1]))), /embedding: indices must be int64/);
  const mha = new MultiheadAttention(4, 2);
  assert.throws(() => tidy(() => mha.call(tensor([[[1, 2, 3]]]))), /MultiheadAttention: query must be \[B, L, 4\], got \[1,1,3\]/);
  // A head width other than embedDim / numHeads is allowed when given (pruned layers).
  const narrow = new MultiheadAttention(4, 3, { headDim: 2 });
  assert.deepEqual(narrow.stateDict().in_proj_weight.shape, [18, 4]);
  assert.deepEqual(narrow.stateDict()['out_proj.weight'].shape, [4, 6]);
  for (const m of [ln, e, mha, narrow]) m.dispose();
});
