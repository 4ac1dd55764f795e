#!/usr/bin/python3
"""Write test/fixtures/nn-layers.json, nn-optim.json and nn-init.json: PyTorch's answers for the nn
layers, losses, optimizers, lr schedules and initializers, on small deterministic inputs.

Run by hand with Debian's PyTorch (python3-torch 1.13, the libtorch the addon links):
    /usr/bin/python3 scripts/make-nn-fixtures.py
test/nn/*.test.ts and test/optim/*.test.ts replay every case through topiary's modules.

Layers: each case stores the input, the parameters and buffers it was built with, PyTorch's output,
and the gradients of sum(output * gradWeight) with respect to the input and every parameter; in
training mode also the buffers after the step (BatchNorm's running statistics).
Optimizers: fixed initial parameters and a fixed gradient per step; the parameters after each step.
Schedules: the lr in force during each epoch (read before scheduler.step(), as a loop does).
Init: values of Linear / Conv2d / initializers right after torch.manual_seed(s).
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
    return float(str(np.float32(v)))  # shortest decimal that reads back as the same float32


def enc(t):
    t = t.detach()
    flat = t.reshape(-1).tolist() if t.dim() else [t.item()]
    return {'dtype': DT[t.dtype], 'shape': list(t.shape), 'data': [num(v, t.dtype) for v in flat]}


def rn(*shape, scale=1.0):
    """Normal values rounded to 2 decimals: exact in JSON and in float32 arithmetic of the inputs."""
    return ((torch.randn(shape, dtype=F64) * scale * 100).round() / 100).to(F32)


def distinct(*shape):
    """Distinct values (multiples of 0.25, shuffled): no ties for max pooling."""
    n = math.prod(shape)
    return ((torch.randperm(n).to(F64) - n / 2) / 4).reshape(shape).to(F32)


# ---- layers ---------------------------------------------------------------------------------------
def layer_case(name, kind, args, module, x, training=True, tol=None):
    """Run module on x; record params/buffers before, output, grads of sum(out * gw), buffers after."""
    module.train(training)
    params = {k: enc(v) for k, v in module.named_parameters()}
    buffers = {k: enc(v) for k, v in module.named_buffers()}
    x = x.clone().requires_grad_(True)
    y = module(x)
    gw = rn(*y.shape)
    (y * gw).sum().backward()
    grads = {'x': enc(x.grad)}
    for k, p in module.named_parameters():
        grads[k] = enc(p.grad)
    case = {'name': name, 'kind': kind, 'args': args, 'training': training, 'x': enc(x), 'params': params,
            'buffers': buffers, 'out': enc(y), 'gradWeight': enc(gw), 'grads': grads,
            'buffersAfter': {k: enc(v) for k, v in module.named_buffers()}}
    if tol:
        case['tol'] = tol
    return case


def with_params(module, **values):
    """Overwrite parameters/buffers with rounded random values (PyTorch's init is tested elsewhere)."""
    with torch.no_grad():
        for k, v in values.items():
            getattr(module, k).copy_(v)
    return module


def layers():
    torch.manual_seed(1)
    cases = []
    lin = with_params(nn.Linear(5, 3), weight=rn(3, 5), bias=rn(3))
    cases.append(layer_case('linear', 'linear', {'in': 5, 'out': 3, 'bias': True}, lin, rn(4, 5)))
    lin_nb = with_params(nn.Linear(4, 2, bias=False), weight=rn(2, 4))
    cases.append(layer_case('linear, no bias, 3-d input', 'linear', {'in': 4, 'out': 2, 'bias': False}, lin_nb, rn(2, 3, 4)))

    conv_specs = [
        ('conv 3x3', dict(inC=2, outC=3, k=3, stride=1, padding=0, groups=1, bias=True), (2, 2, 6, 6)),
        ('conv 3x3 stride 2 padding 1', dict(inC=2, outC=4, k=3, stride=2, padding=1, groups=1, bias=True), (2, 2, 7, 7)),
        ('conv groups 2, no bias', dict(inC=4, outC=6, k=3, stride=1, padding=1, groups=2, bias=False), (1, 4, 5, 5)),
        ('conv 1x1 stride 2', dict(inC=3, outC=2, k=1, stride=2, padding=0, groups=1, bias=False), (2, 3, 5, 5)),
        ('conv 5x5 non-square input', dict(inC=1, outC=2, k=5, stride=1, padding=2, groups=1, bias=True), (1, 1, 6, 8)),
    ]
    for name, a, xs in conv_specs:
        c = nn.Conv2d(a['inC'], a['outC'], a['k'], stride=a['stride'], padding=a['padding'], groups=a['groups'], bias=a['bias'])
        vals = {'weight': rn(*c.weight.shape)}
        if a['bias']:
            vals['bias'] = rn(a['outC'])
        cases.append(layer_case(name, 'conv2d', a, with_params(c, **vals), rn(*xs), tol=[1e-5, 1e-5]))

    def bn(cls, n):
        m = cls(n)
        return with_params(m, weight=rn(n, scale=0.5) + 1, bias=rn(n, scale=0.5),
                           running_mean=rn(n, scale=0.3), running_var=(rn(n, scale=0.3).abs() + 0.5))
    cases.append(layer_case('batchnorm1d train [N, C]', 'batchnorm1d', {'n': 4}, bn(nn.BatchNorm1d, 4), rn(6, 4, scale=2) + 1, True, [1e-4, 1e-5]))
    cases.append(layer_case('batchnorm1d eval [N, C]', 'batchnorm1d', {'n': 4}, bn(nn.BatchNorm1d, 4), rn(6, 4, scale=2) + 1, False))
    cases.append(layer_case('batchnorm1d train [N, C, L]', 'batchnorm1d', {'n': 3}, bn(nn.BatchNorm1d, 3), rn(4, 3, 5), True, [1e-4, 1e-5]))
    cases.append(layer_case('batchnorm2d train', 'batchnorm2d', {'n': 3}, bn(nn.BatchNorm2d, 3), rn(2, 3, 4, 4, scale=1.5) - 0.5, True, [1e-4, 1e-5]))
    cases.append(layer_case('batchnorm2d eval', 'batchnorm2d', {'n': 3}, bn(nn.BatchNorm2d, 3), rn(2, 3, 4, 4, scale=1.5) - 0.5, False))

    cases.append(layer_case('maxpool 2', 'maxpool2d', {'k': 2}, nn.MaxPool2d(2), distinct(2, 2, 6, 6)))
    cases.append(layer_case('maxpool 3 stride 2 padding 1', 'maxpool2d', {'k': 3, 'stride': 2, 'padding': 1}, nn.MaxPool2d(3, 2, 1), distinct(1, 2, 7, 7)))
    cases.append(layer_case('avgpool 2', 'avgpool2d', {'k': 2}, nn.AvgPool2d(2), rn(2, 2, 6, 6)))
    cases.append(layer_case('avgpool 3 stride 2 padding 1', 'avgpool2d', {'k': 3, 'stride': 2, 'padding': 1}, nn.AvgPool2d(3, 2, 1), rn(1, 2, 7, 7)))
    cases.append(layer_case('adaptive avgpool 1', 'adaptiveavgpool2d', {'out': [1, 1]}, nn.AdaptiveAvgPool2d(1), rn(2, 3, 5, 5)))
    cases.append(layer_case('adaptive avgpool 2x3 from 5x7', 'adaptiveavgpool2d', {'out': [2, 3]}, nn.AdaptiveAvgPool2d((2, 3)), rn(1, 2, 5, 7)))
    cases.append(layer_case('dropout eval', 'dropout', {'p': 0.5}, nn.Dropout(0.5), rn(3, 4), False))
    cases.append(layer_case('flatten', 'flatten', {}, nn.Flatten(), rn(2, 2, 3, 3)))
    cases.append(layer_case('relu', 'relu', {}, nn.ReLU(), rn(3, 5)))
    return cases


# ---- losses ---------------------------------------------------------------------------------------
def losses():
    torch.manual_seed(2)
    cases = []
    logits, target = rn(6, 4, scale=2), torch.tensor([0, 3, 1, 1, 2, 3])
    w = torch.tensor([0.5, 2.0, 1.0, 1.5])

    def ce_case(name, opts, fn, inp=logits, tgt=target):
        x = inp.clone().requires_grad_(True)
        y = fn(x)
        gw = rn(*y.shape) if y.dim() else torch.tensor(1.0)
        (y * gw).sum().backward()
        cases.append({'name': name, 'opts': opts, 'x': enc(x), 'target': enc(tgt), 'out': enc(y), 'gradWeight': enc(gw), 'gradX': enc(x.grad)})

    ce_case('crossEntropy mean', {'loss': 'crossEntropy'}, lambda x: F.cross_entropy(x, target))
    ce_case('crossEntropy label smoothing 0.1', {'loss': 'crossEntropy', 'labelSmoothing': 0.1}, lambda x: F.cross_entropy(x, target, label_smoothing=0.1))
    ce_case('crossEntropy class weights', {'loss': 'crossEntropy', 'weight': enc(w)}, lambda x: F.cross_entropy(x, target, weight=w))
    ce_case('crossEntropy weights + smoothing 0.2', {'loss': 'crossEntropy', 'weight': enc(w), 'labelSmoothing': 0.2},
            lambda x: F.cross_entropy(x, target, weight=w, label_smoothing=0.2))
    ce_case('crossEntropy sum', {'loss': 'crossEntropy', 'reduction': 'sum'}, lambda x: F.cross_entropy(x, target, reduction='sum'))
    ce_case('crossEntropy none + smoothing', {'loss': 'crossEntropy', 'reduction': 'none', 'labelSmoothing': 0.1},
            lambda x: F.cross_entropy(x, target, reduction='none', label_smoothing=0.1))
    ce_case('nllLoss mean', {'loss': 'nllLoss'}, lambda x: F.nll_loss(x, target), inp=F.log_softmax(logits, 1).detach())
    ce_case('nllLoss class weights', {'loss': 'nllLoss', 'weight': enc(w)}, lambda x: F.nll_loss(x, target, weight=w), inp=F.log_softmax(logits, 1).detach())
    tgt_ign = torch.tensor([0, -100, 1, 1, -100, 3])
    ce_case('nllLoss ignoreIndex', {'loss': 'nllLoss'}, lambda x: F.nll_loss(x, tgt_ign), inp=F.log_softmax(logits, 1).detach(), tgt=tgt_ign)
    a, b = rn(3, 4), rn(3, 4)
    ce_case('mseLoss mean', {'loss': 'mseLoss'}, lambda x: F.mse_loss(x, b), inp=a, tgt=b)
    ce_case('mseLoss sum', {'loss': 'mseLoss', 'reduction': 'sum'}, lambda x: F.mse_loss(x, b, reduction='sum'), inp=a, tgt=b)
    return cases


# ---- optimizers -----------------------------------------------------------------------------------
def optimizers():
    torch.manual_seed(3)
    steps = 4
    p0, p1 = rn(3, 4), rn(5)
    grads = [[rn(3, 4, scale=0.5), rn(5, scale=0.5)] for _ in range(steps)]
    configs = [
        ('sgd plain', 'sgd', dict(lr=0.1)),
        ('sgd momentum 0.9', 'sgd', dict(lr=0.1, momentum=0.9)),
        ('sgd momentum + dampening + weight decay', 'sgd', dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
        ('sgd nesterov + weight decay', 'sgd', dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)),
        ('adam', 'adam', dict(lr=0.01)),
        ('adam weight decay + betas', 'adam', dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
        ('adamw', 'adamw', dict(lr=0.01, weight_decay=0.1)),
    ]
    cls = {'sgd': torch.optim.SGD, 'adam': torch.optim.Adam, 'adamw': torch.optim.AdamW}
    cases = []
    for name, kind, kw in configs:
        ps = [p0.clone().requires_grad_(True), p1.clone().requires_grad_(True)]
        opt = cls[kind](ps, **kw)
        after = []
        for s in range(steps):
            for p, g in zip(ps, grads[s]):
                p.grad = g.clone()
            opt.step()
            after.append([enc(p) for p in ps])
        opts = {('weightDecay' if k == 'weight_decay' else k): (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}
        cases.append({'name': name, 'kind': kind, 'opts': opts, 'after': after})
    return {'params': [enc(p0), enc(p1)], 'grads': [[enc(g) for g in gs] for gs in grads], 'cases': cases}


def schedules():
    sch = torch.optim.lr_scheduler
    epochs = 12

    def lrs(make, base=0.1):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
        s = make(opt)
        out = []
        for _ in range(epochs):
            out.append(opt.param_groups[0]['lr'])
            opt.step()
            s.step()
        return out

    return [
        {'name': 'step', 'config': {'name': 'step', 'epochs': epochs, 'stepSize': 3, 'gamma': 0.5}, 'lr': lrs(lambda o: sch.StepLR(o, 3, 0.5))},
        {'name': 'multistep', 'config': {'name': 'multistep', 'epochs': epochs, 'milestones': [4, 9], 'gamma': 0.1},
         'lr': lrs(lambda o: sch.MultiStepLR(o, [4, 9], 0.1))},
        {'name': 'cosine', 'config': {'name': 'cosine', 'epochs': epochs}, 'lr': lrs(lambda o: sch.CosineAnnealingLR(o, epochs))},
        {'name': 'constant', 'config': {'name': 'constant', 'epochs': epochs}, 'lr': lrs(lambda o: sch.LambdaLR(o, lambda e: 1.0))},
        {'name': 'warm-up 3 then cosine', 'config': {'name': 'cosine', 'epochs': epochs, 'warmupEpochs': 3},
         'lr': lrs(lambda o: sch.SequentialLR(o, [sch.LinearLR(o, start_factor=0.1, total_iters=3), sch.CosineAnnealingLR(o, epochs - 3)], milestones=[3]))},
        {'name': 'warm-up 2 then step', 'config': {'name': 'step', 'epochs': epochs, 'warmupEpochs': 2, 'stepSize': 4, 'gamma': 0.5},
         'lr': lrs(lambda o: sch.SequentialLR(o, [sch.LinearLR(o, start_factor=0.1, total_iters=2), sch.StepLR(o, 4, 0.5)], milestones=[2]))},
    ]


# ---- init -----------------------------------------------------------------------------------------
def init():
    cases = []
    for seed in (0, 123):
        torch.manual_seed(seed)
        lin = nn.Linear(5, 3)
        cases.append({'name': f'Linear(5, 3) seed {seed}', 'kind': 'linear', 'seed': seed, 'args': [5, 3],
                      'weight': enc(lin.weight), 'bias': enc(lin.bias)})
        torch.manual_seed(seed)
        conv = nn.Conv2d(2, 4, 3)
        cases.append({'name': f'Conv2d(2, 4, 3) seed {seed}', 'kind': 'conv2d', 'seed': seed, 'args': [2, 4, 3],
                      'weight': enc(conv.weight), 'bias': enc(conv.bias)})
    fns = {
        'kaiming_normal fan_in': lambda w: nn.init.kaiming_normal_(w, mode='fan_in', nonlinearity='relu'),
        'kaiming_normal fan_out': lambda w: nn.init.kaiming_normal_(w, mode='fan_out', nonlinearity='relu'),
        'kaiming_uniform fan_in': lambda w: nn.init.kaiming_uniform_(w, mode='fan_in', nonlinearity='relu'),
        'xavier_uniform': lambda w: nn.init.xavier_uniform_(w),
        'xavier_normal': lambda w: nn.init.xavier_normal_(w),
    }
    for name, fn in fns.items():
        torch.manual_seed(7)
        w = torch.empty(6, 3, 3, 3)
        fn(w)
        cases.append({'name': name, 'kind': 'init', 'init': name, 'seed': 7, 'shape': [6, 3, 3, 3], 'weight': enc(w)})
    return cases


def write(name, value):
    path = os.path.join(OUT, name)
    with open(path, 'w') as f:
        json.dump({'generator': 'scripts/make-nn-fixtures.py', 'torch': torch.__version__, **value}, f, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {path} ({os.path.getsize(path)} bytes)')


if __name__ == '__main__':
    write('nn-layers.json', {'layers': layers(), 'losses': losses()})
    write('nn-optim.json', {'optim': optimizers(), 'schedules': schedules()})
    write('nn-init.json', {'init': init()})
