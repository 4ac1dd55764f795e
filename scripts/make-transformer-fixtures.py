#!/usr/bin/python3
"""Write test/fixtures/transformer.json: PyTorch's answers for topiary's transformer layers
(src/nn/transformer.ts) on small deterministic inputs.

Run by hand with Debian's PyTorch (python3-torch 1.13, the libtorch the addon links):
    /usr/bin/python3 scripts/make-transformer-fixtures.py
test/nn/transformer.test.ts replays every case.

Each case stores its inputs, its parameters (PyTorch's names), its outputs, a fixed weight per output
and the gradients of sum_k sum(output_k * weight_k) with respect to every floating input and every
parameter. Attention in 1.13 has no F.scaled_dot_product_attention (2.0), so the functional cases
spell it out: softmax(q k^T / sqrt(E) masked with -inf) v; nn.MultiheadAttention and
nn.TransformerEncoderLayer(norm_first=True, batch_first=True) are PyTorch's own modules.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
F32, F64, I64 = torch.float32, torch.float64, torch.int64
DT = {F32: 'float32', F64: 'float64', I64: 'int64', torch.bool: 'bool'}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures')


def num(v, dtype):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if dtype == F64:
        return v
    return float(str(np.float32(v)))


def enc(t):
    t = t.detach()
    flat = t.reshape(-1).tolist() if t.dim() else [t.item()]
    return {'dtype': DT[t.dtype], 'shape': list(t.shape), 'data': [num(v, t.dtype) for v in flat]}


def rn(*shape, scale=1.0):
    """Normal values rounded to 2 decimals: exact in JSON."""
    return ((torch.randn(shape, dtype=F64) * scale * 100).round() / 100).to(F32)


def set_params(module, scale=0.5):
    """Rounded random values for every parameter (PyTorch's init is not what is tested here)."""
    with torch.no_grad():
        for _, p in module.named_parameters():
            p.copy_(rn(*p.shape, scale=scale))
    return module


def case(name, kind, args, fn, inputs, module=None):
    """fn(**inputs) -> dict of outputs; inputs that are floating get gradients."""
    if module is not None:
        module.zero_grad(set_to_none=True)  # modules shared by several cases must not accumulate
    leaves = {k: (v.clone().requires_grad_(True) if v.is_floating_point() else v) for k, v in inputs.items()}
    outs = fn(**leaves)
    gws = {k: rn(*v.shape) for k, v in outs.items()}
    loss = sum((v * gws[k]).sum() for k, v in outs.items())
    loss.backward()
    grads = {k: enc(v.grad) for k, v in leaves.items() if v.is_floating_point()}
    params = {}
    if module is not None:
        for k, p in module.named_parameters():
            params[k] = enc(p)
            grads['param:' + k] = enc(p.grad)
    return {'name': name, 'kind': kind, 'args': args, 'inputs': {k: enc(v) for k, v in inputs.items()}, 'params': params,
            'outputs': {k: enc(v) for k, v in outs.items()}, 'gradWeights': {k: enc(v) for k, v in gws.items()}, 'grads': grads}


def sdpa(q, k, v, causal=False, key_padding=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    blocked = torch.zeros(scores.shape, dtype=torch.bool)
    if causal:
        L, S = scores.shape[-2:]
        blocked = blocked | torch.ones(L, S, dtype=torch.bool).triu(1)
    if key_padding is not None:
        blocked = blocked | key_padding.view(key_padding.shape[0], 1, 1, -1)
    w = scores.masked_fill(blocked, float('-inf')).softmax(-1)
    return {'output': w @ v, 'weights': w}


def cases():
    torch.manual_seed(3)
    out = []

    emb = set_params(nn.Embedding(7, 4), scale=1.0)
    idx = torch.tensor([[0, 3, 3, 6], [1, 0, 5, 3]], dtype=I64)
    out.append(case('embedding with repeated indices', 'embedding', {'n': 7, 'd': 4}, lambda idx: {'y': emb(idx)}, {'idx': idx}, emb))

    ln = set_params(nn.LayerNorm(5), scale=1.0)
    out.append(case('layernorm over the last dim', 'layernorm', {'shape': [5], 'eps': 1e-5}, lambda x: {'y': ln(x)}, {'x': rn(2, 3, 5)}, ln))
    ln2 = set_params(nn.LayerNorm([3, 4], eps=1e-3), scale=1.0)
    out.append(case('layernorm over two dims, eps 1e-3', 'layernorm', {'shape': [3, 4], 'eps': 1e-3}, lambda x: {'y': ln2(x)}, {'x': rn(2, 3, 4)}, ln2))

    xg = rn(17, scale=2.0)
    out.append(case('gelu exact', 'gelu', {'approximate': 'none'}, lambda x: {'y': F.gelu(x)}, {'x': xg}))
    out.append(case('gelu tanh', 'gelu', {'approximate': 'tanh'}, lambda x: {'y': F.gelu(x, approximate='tanh')}, {'x': xg}))

    q, k, v = rn(2, 2, 4, 3), rn(2, 2, 5, 3), rn(2, 2, 5, 3)
    out.append(case('sdpa, no mask', 'sdpa', {}, lambda q, k, v: sdpa(q, k, v), {'q': q, 'k': k, 'v': v}))
    kq = rn(2, 2, 4, 3)
    out.append(case('sdpa, causal', 'sdpa', {'causal': True}, lambda q, k, v: sdpa(q, k, v, causal=True), {'q': kq, 'k': rn(2, 2, 4, 3), 'v': rn(2, 2, 4, 3)}))
    pad = torch.tensor([[False, False, False, True, True], [False, False, False, False, True]])
    out.append(case('sdpa, key padding', 'sdpa', {'keyPadding': True}, lambda q, k, v, pad: sdpa(q, k, v, key_padding=pad), {'q': q, 'k': k, 'v': v, 'pad': pad}))

    mha = set_params(nn.MultiheadAttention(8, 2, batch_first=True))
    x = rn(2, 4, 8)

    def self_att(x, **kw):
        y, w = mha(x, x, x, **kw)
        return {'y': y, 'weights': w}
    out.append(case('mha self-attention', 'mha', {'d': 8, 'h': 2, 'mode': 'self'}, self_att, {'x': x}, mha))
    causal = torch.ones(4, 4, dtype=torch.bool).triu(1)
    out.append(case('mha causal', 'mha', {'d': 8, 'h': 2, 'mode': 'self', 'causal': True}, lambda x: self_att(x, attn_mask=causal), {'x': x}, mha))
    kpm = torch.tensor([[False, False, True, True], [False, False, False, True]])
    out.append(case('mha key padding', 'mha', {'d': 8, 'h': 2, 'mode': 'self'}, lambda x, pad: self_att(x, key_padding_mask=pad), {'x': x, 'pad': kpm}, mha))

    def cross(query, key, value):
        y, w = mha(query, key, value)
        return {'y': y, 'weights': w}
    out.append(case('mha cross-attention', 'mha', {'d': 8, 'h': 2, 'mode': 'cross'}, cross, {'query': rn(2, 3, 8), 'key': rn(2, 5, 8), 'value': rn(2, 5, 8)}, mha))
    mha4 = set_params(nn.MultiheadAttention(8, 4, batch_first=True))
    out.append(case('mha 4 heads of 2', 'mha', {'d': 8, 'h': 4, 'mode': 'self'}, lambda x: (lambda r: {'y': r[0], 'weights': r[1]})(mha4(x, x, x)), {'x': x}, mha4))

    for act in ['gelu', 'relu']:
        enc_layer = set_params(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, activation=act, batch_first=True, norm_first=True))
        out.append(case(f'pre-norm encoder layer, {act}', 'encoder', {'d': 8, 'h': 2, 'ff': 16, 'activation': act}, lambda x: {'y': enc_layer(x)}, {'x': rn(2, 5, 8)}, enc_layer))
    enc_c = set_params(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, activation='gelu', batch_first=True, norm_first=True))
    cm = torch.ones(5, 5, dtype=torch.bool).triu(1)
    out.append(case('pre-norm encoder layer, causal', 'encoder', {'d': 8, 'h': 2, 'ff': 16, 'activation': 'gelu', 'causal': True}, lambda x: {'y': enc_c(x, src_mask=cm)}, {'x': rn(2, 5, 8)}, enc_c))
    enc_p = set_params(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, activation='gelu', batch_first=True, norm_first=True))
    ppad = torch.tensor([[False, False, False, True, True], [False, False, False, False, False]])
    out.append(case('pre-norm encoder layer, key padding', 'encoder', {'d': 8, 'h': 2, 'ff': 16, 'activation': 'gelu', 'padding': True},
                    lambda x, pad: {'y': enc_p(x, src_key_padding_mask=pad)}, {'x': rn(2, 5, 8), 'pad': ppad}, enc_p))

    pos = nn.Module()
    pos.weight = nn.Parameter(rn(6, 4))
    out.append(case('positional embedding, 5 of 6 positions', 'posembed', {'n': 6, 'd': 4}, lambda x: {'y': x + pos.weight[:5]}, {'x': rn(2, 5, 4)}, pos))

    patch = nn.Module()
    patch.proj = set_params(nn.Conv2d(1, 6, 7, stride=7))
    out.append(case('patch embedding 14x14, patch 7', 'patch', {'image': [14, 14], 'patch': 7, 'c': 1, 'd': 6},
                    lambda x: {'y': patch.proj(x).flatten(2).transpose(1, 2)}, {'x': rn(2, 1, 14, 14)}, patch))
    patch3 = nn.Module()
    patch3.proj = set_params(nn.Conv2d(3, 4, 2, stride=2))
    out.append(case('patch embedding 4x6, 3 channels, patch 2', 'patch', {'image': [4, 6], 'patch': 2, 'c': 3, 'd': 4},
                    lambda x: {'y': patch3.proj(x).flatten(2).transpose(1, 2)}, {'x': rn(2, 3, 4, 6)}, patch3))
    return out


if __name__ == '__main__':
    path = os.path.join(OUT, 'transformer.json')
    with open(path, 'w') as f:
        json.dump({'generator': 'scripts/make-transformer-fixtures.py', 'torch': torch.__version__, 'cases': cases()}, f, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {path} ({os.path.getsize(path)} bytes)')
