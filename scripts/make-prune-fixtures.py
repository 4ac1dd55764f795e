#!/usr/bin/python3
"""Write test/fixtures/prune-saliency.json: SNIP and GraSP scores computed by PyTorch on small nets.

Run by hand with Debian's PyTorch (python3-torch 1.13, the libtorch the addon links):
    /usr/bin/python3 scripts/make-prune-fixtures.py
Each case stores a network (layer list, so the test builds the same Sequential), its state dict,
a batch (x, y) and PyTorch's scores:
  - snip: |dL/dw * w| / sum over all conv and linear weights (Lee et al. 2019), train mode;
  - grasp: -w * Hg as in the authors' code (alecwangcq/GraSP, pruner/GraSP.py): logits / T, the
    batch split in two halves, g = sum of the halves' gradients, Hg = sum over halves of
    d(g . dL/dw)/dw by double backprop with g held constant; train mode;
  - the keep masks at 50% sparsity (global, exact top-k, ties by position) for both.
test/prune/saliency.test.ts replays every case through the engine.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_num_threads(1)


def build(layers):
    mods = []
    for l in layers:
        k = l[0]
        if k == 'conv':
            mods.append(nn.Conv2d(l[1], l[2], l[3], bias=l[4]))
        elif k == 'linear':
            mods.append(nn.Linear(l[1], l[2]))
        elif k == 'bn2d':
            mods.append(nn.BatchNorm2d(l[1]))
        elif k == 'relu':
            mods.append(nn.ReLU())
        elif k == 'flatten':
            mods.append(nn.Flatten())
        else:
            raise ValueError(k)
    return nn.Sequential(*mods)


def weights_of(net):
    return [(n, p) for n, p in net.named_parameters() if p.dim() > 1]


def snip(net, x, y):
    net.train()
    ws = weights_of(net)
    loss = F.cross_entropy(net(x), y)
    gs = torch.autograd.grad(loss, [p for _, p in ws])
    raw = [(g * p).abs() for g, (_, p) in zip(gs, ws)]
    total = sum(r.sum() for r in raw)
    return {n: (r / total).detach() for (n, _), r in zip(ws, raw)}


def grasp(net, x, y, T):
    net.train()
    ws = weights_of(net)
    params = [p for _, p in ws]
    n = x.shape[0]
    halves = [(x[:n // 2], y[:n // 2]), (x[n // 2:], y[n // 2:])]
    grad_w = None
    for xh, yh in halves:
        loss = F.cross_entropy(net(xh) / T, yh)
        g = torch.autograd.grad(loss, params)
        grad_w = list(g) if grad_w is None else [a + b for a, b in zip(grad_w, g)]
    for p in params:
        p.grad = None
    for xh, yh in halves:
        loss = F.cross_entropy(net(xh) / T, yh)
        gf = torch.autograd.grad(loss, params, create_graph=True)
        z = sum((gw.data * g).sum() for gw, g in zip(grad_w, gf))
        z.backward()
    out = {n: (-p.data * p.grad).detach() for n, p in ws}
    for p in net.parameters():
        p.grad = None
    return out


def keep_masks(importance, sparsity):
    """Exact global top-k of importance, ties by flat position (lower first)."""
    names = list(importance)
    flat = torch.cat([importance[n].flatten() for n in names])
    k = math.floor((1 - sparsity) * flat.numel() + 0.5)  # half up, as JS Math.round (Python's round is half-even)
    order = torch.sort(flat, descending=True, stable=True).indices[:k]
    m = torch.zeros(flat.numel(), dtype=torch.bool)
    m[order] = True
    out, off = {}, 0
    for nm in names:
        c = importance[nm].numel()
        out[nm] = m[off:off + c].reshape(importance[nm].shape)
        off += c
    return out


def rec(t):
    t = t.detach()
    if t.dtype == torch.bool:
        return {'dtype': 'bool', 'shape': list(t.shape), 'data': [int(v) for v in t.flatten().tolist()]}
    if t.dtype == torch.int64:
        return {'dtype': 'int64', 'shape': list(t.shape), 'data': t.flatten().tolist()}
    return {'dtype': 'float32', 'shape': list(t.shape), 'data': [float(v) for v in t.float().flatten().tolist()]}


def case(name, layers, in_shape, n, classes, T):
    net = build(layers)
    for m in net.modules():  # non-trivial BatchNorm affine parameters
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(n, *in_shape)
    y = torch.randint(0, classes, (n,))
    s = snip(net, x, y)
    net.load_state_dict(state)
    g = grasp(net, x, y, T)
    return {
        'name': name, 'layers': layers, 'inputShape': list(in_shape), 'temperature': T,
        'state': {k: rec(v) for k, v in state.items()},
        'x': rec(x), 'y': rec(y),
        'snip': {k: rec(v) for k, v in s.items()},
        'grasp': {k: rec(v) for k, v in g.items()},
        'snipKeep50': {k: rec(v) for k, v in keep_masks(s, 0.5).items()},
        'graspKeep50': {k: rec(v) for k, v in keep_masks({k: -v for k, v in g.items()}, 0.5).items()},
    }


cases = [
    case('conv-mlp', [['conv', 1, 3, 3, True], ['relu'], ['flatten'], ['linear', 48, 6], ['relu'], ['linear', 6, 3]], (1, 6, 6), 12, 3, 200.0),
    case('conv-bn', [['conv', 2, 4, 3, False], ['bn2d', 4], ['relu'], ['flatten'], ['linear', 36, 4]], (2, 5, 5), 10, 4, 200.0),
    case('mlp-t1', [['flatten'], ['linear', 12, 8], ['relu'], ['linear', 8, 3]], (1, 3, 4), 8, 3, 1.0),
]
path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'prune-saliency.json')
with open(path, 'w') as f:
    json.dump({'generator': 'scripts/make-prune-fixtures.py', 'torch': torch.__version__, 'cases': cases}, f, separators=(',', ':'))
print('wrote', os.path.normpath(path), os.path.getsize(path), 'bytes')
