#!/usr/bin/python3
"""Write test/fixtures/ops.json: small deterministic inputs and PyTorch's outputs for every engine op.

Run by hand with Debian's PyTorch (python3-torch, 1.13, the libtorch the addon links):
    /usr/bin/python3 scripts/make-fixtures.py
Each case stores its inputs, its arguments, PyTorch's outputs (values, shape, dtype) and, for
differentiable ops, the gradient of sum(output * gradWeight) with respect to the listed inputs.
test/tensor/ops.test.ts replays every case through the engine (an op table keyed like OPS below).

Argument conventions mirror the TypeScript API. JSON has one number type and the engine treats a
JS integer as a Python int, so float scalars here never hold integral values (2.5, not 2.0).
Non-finite numbers are written as the strings "nan", "inf", "-inf".
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_num_threads(1)

DT = {torch.float16: 'float16', torch.float32: 'float32', torch.float64: 'float64', torch.int64: 'int64',
      torch.int32: 'int32', torch.int16: 'int16', torch.int8: 'int8', torch.uint8: 'uint8', torch.bool: 'bool'}
F32, F64, I64, I32, U8, I8, BOOL = torch.float32, torch.float64, torch.int64, torch.int32, torch.uint8, torch.int8, torch.bool


# ---- inputs -------------------------------------------------------------------------------------
def rn(*shape, dtype=F32, scale=1.0):
    """Normal values rounded to 2 decimals (exact in JSON, few characters)."""
    return ((torch.randn(tuple(shape), dtype=F64) * scale * 100).round() / 100).to(dtype)


def pos(*shape, dtype=F32):
    """Positive values in [0.2, 2.2), rounded."""
    return ((torch.rand(tuple(shape), dtype=F64) * 2 + 0.2) * 100).round().div(100).to(dtype)


def distinct(*shape, dtype=F32):
    """Distinct values (multiples of 0.25 in random order): no ties for max, sort, pooling."""
    n = math.prod(shape)
    return ((torch.randperm(n).to(F64) - n / 2) / 4).reshape(shape).to(dtype)


def ints(lo, hi, *shape, dtype=I64):
    return torch.randint(lo, hi, shape).to(dtype)


# ---- encoding -----------------------------------------------------------------------------------
def num(v, dtype):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if math.isnan(v):
        return 'nan'
    if math.isinf(v):
        return 'inf' if v > 0 else '-inf'
    if dtype == torch.float64:
        return v
    # numpy prints the shortest decimal that reads back as the same float32 / float16
    return float(str(np.float16(v) if dtype == torch.float16 else np.float32(v)))


def enc(t):
    t = t.detach()
    flat = t.reshape(-1).tolist() if t.dim() else [t.item()]
    return {'dtype': DT[t.dtype], 'shape': list(t.shape), 'data': [num(v, t.dtype) for v in flat]}


def enc_out(o):
    if isinstance(o, torch.Tensor):
        return {'out': enc(o)}
    if isinstance(o, (list, tuple)):
        return {f'out{i}': enc(x) for i, x in enumerate(o)}
    if isinstance(o, dict):
        return {k: (enc(v) if isinstance(v, torch.Tensor) else v) for k, v in o.items()}
    return {'out': o}  # a Python bool or number (equal, allclose)


def argnum(v):
    if isinstance(v, float) and not math.isfinite(v):
        return num(v, F64)
    if isinstance(v, float) and v == int(v):
        raise ValueError(f'float argument {v} would reach the engine as an integer: use a non-integral value')
    return v


# ---- the op table (keys and arguments as in the TS API) -----------------------------------------
def q_arg(i, a):
    return i['q'] if 'q' in i else a['q']


def where_arg(i, a, k):
    return i[k] if k in i else a[k]


def other(i, a):
    return i['b'] if 'b' in i else a['b']


def inplace(fn):
    def run(i, a):
        x = i['x'].clone()
        fn(x, i, a)
        return x
    return run


def batch_norm(i, a):
    rm = i['runningMean'].clone() if 'runningMean' in i else None
    rv = i['runningVar'].clone() if 'runningVar' in i else None
    y = F.batch_norm(i['x'], rm, rv, i.get('weight'), i.get('bias'), a['training'], a.get('momentum', 0.1), a.get('eps', 1e-5))
    out = {'out': y}
    if rm is not None:
        out['runningMean'], out['runningVar'] = rm, rv
    return out


def sgd(i, a):
    ps = [i['p0'].clone().requires_grad_(True), i['p1'].clone().requires_grad_(True)]
    opt = torch.optim.SGD(ps, lr=a['lr'], momentum=a['momentum'], dampening=a['dampening'], weight_decay=a['weightDecay'], nesterov=a['nesterov'])
    for s in range(a['steps']):
        for k, p in enumerate(ps):
            p.grad = i[f'g{k}'] * (s + 1)
        opt.step()
    return {'p0': ps[0].detach(), 'p1': ps[1].detach()}


MODES = {'bilinear': 'bilinear', 'nearest': 'nearest'}
BINARY = {
    'add': lambda i, a: torch.add(i['a'], other(i, a), alpha=a.get('alpha', 1)),
    'sub': lambda i, a: torch.sub(i['a'], other(i, a), alpha=a.get('alpha', 1)),
    'mul': lambda i, a: torch.mul(i['a'], other(i, a)),
    'div': lambda i, a: torch.div(i['a'], other(i, a)),
    'pow': lambda i, a: torch.pow(i['a'], other(i, a)),
    'remainder': lambda i, a: torch.remainder(i['a'], other(i, a)),
    'eq': lambda i, a: torch.eq(i['a'], other(i, a)),
    'ne': lambda i, a: torch.ne(i['a'], other(i, a)),
    'lt': lambda i, a: torch.lt(i['a'], other(i, a)),
    'le': lambda i, a: torch.le(i['a'], other(i, a)),
    'gt': lambda i, a: torch.gt(i['a'], other(i, a)),
    'ge': lambda i, a: torch.ge(i['a'], other(i, a)),
    'maximum': lambda i, a: torch.maximum(i['a'], i['b']),
    'minimum': lambda i, a: torch.minimum(i['a'], i['b']),
    'logicalAnd': lambda i, a: torch.logical_and(i['a'], i['b']),
    'logicalOr': lambda i, a: torch.logical_or(i['a'], i['b']),
    'logicalXor': lambda i, a: torch.logical_xor(i['a'], i['b']),
}
UNARY = {
    'neg': torch.neg, 'abs': torch.abs, 'sign': torch.sign, 'exp': torch.exp, 'log': torch.log, 'sqrt': torch.sqrt,
    'rsqrt': torch.rsqrt, 'square': torch.square, 'reciprocal': torch.reciprocal, 'sin': torch.sin, 'cos': torch.cos,
    'floor': torch.floor, 'ceil': torch.ceil, 'round': torch.round, 'relu': torch.relu, 'sigmoid': torch.sigmoid,
    'tanh': torch.tanh, 'isnan': torch.isnan, 'isfinite': torch.isfinite, 'logicalNot': torch.logical_not,
    'gelu': F.gelu, 'softplus': F.softplus, 'clone': torch.clone, 'contiguous': lambda x: x.contiguous(),
    'detach': lambda x: x.detach(), 'nonzero': torch.nonzero, 'countNonzero': torch.count_nonzero,
    'all': torch.all, 'any': torch.any, 'prod': torch.prod, 'max': torch.max, 'min': torch.min,
    'T': lambda x: x.T, 'float16Roundtrip': lambda x: x.to(torch.float16).to(torch.float32),
}
OPS = {
    **BINARY,
    **{k: (lambda f: lambda i, a: f(i['x']))(f) for k, f in UNARY.items()},
    'rsub': lambda i, a: a['s'] - i['x'],
    'rdiv': lambda i, a: a['s'] / i['x'],
    'to': lambda i, a: i['x'].to(getattr(torch, a['dtype'])),
    'clamp': lambda i, a: torch.clamp(i['x'], a.get('min'), a.get('max')),
    'where': lambda i, a: torch.where(i['cond'], where_arg(i, a, 'a'), where_arg(i, a, 'b')),
    'equal': lambda i, a: torch.equal(i['a'], i['b']),
    'allclose': lambda i, a: torch.allclose(i['a'], i['b'], a['rtol'], a['atol']),
    # reductions
    'sum': lambda i, a: torch.sum(i['x']) if a.get('dim') is None else torch.sum(i['x'], a['dim'], a.get('keepdim', False)),
    'mean': lambda i, a: torch.mean(i['x']) if a.get('dim') is None else torch.mean(i['x'], a['dim'], a.get('keepdim', False)),
    'var': lambda i, a: torch.var(i['x'], unbiased=a.get('unbiased', True)) if a.get('dim') is None
    else torch.var(i['x'], a['dim'], unbiased=a.get('unbiased', True), keepdim=a.get('keepdim', False)),
    'std': lambda i, a: torch.std(i['x'], unbiased=a.get('unbiased', True)) if a.get('dim') is None
    else torch.std(i['x'], a['dim'], unbiased=a.get('unbiased', True), keepdim=a.get('keepdim', False)),
    'maxDim': lambda i, a: dict(zip(('values', 'indices'), torch.max(i['x'], a['dim'], a.get('keepdim', False)))),
    'minDim': lambda i, a: dict(zip(('values', 'indices'), torch.min(i['x'], a['dim'], a.get('keepdim', False)))),
    'argmax': lambda i, a: torch.argmax(i['x'], a.get('dim'), a.get('keepdim', False)),
    'argmin': lambda i, a: torch.argmin(i['x'], a.get('dim'), a.get('keepdim', False)),
    'norm': lambda i, a: torch.norm(i['x'], float(a['p']) if isinstance(a['p'], str) else a['p'], a.get('dim'), a.get('keepdim', False)),
    'topk': lambda i, a: dict(zip(('values', 'indices'), torch.topk(i['x'], a['k'], a.get('dim', -1), a.get('largest', True)))),
    'sort': lambda i, a: dict(zip(('values', 'indices'), torch.sort(i['x'], dim=a.get('dim', -1), descending=a.get('descending', False), stable=True))),
    'argsort': lambda i, a: torch.sort(i['x'], dim=a.get('dim', -1), descending=a.get('descending', False), stable=True)[1],
    'kthvalue': lambda i, a: dict(zip(('values', 'indices'), torch.kthvalue(i['x'], a['k'], a.get('dim', -1), a.get('keepdim', False)))),
    'quantile': lambda i, a: torch.quantile(i['x'], q_arg(i, a), a.get('dim'), a.get('keepdim', False), interpolation=a.get('interpolation', 'linear')),
    'cumsum': lambda i, a: torch.cumsum(i['x'], a['dim']),
    # shape and indexing
    'reshape': lambda i, a: i['x'].reshape(a['shape']),
    'view': lambda i, a: i['x'].view(a['shape']),
    'flatten': lambda i, a: i['x'].flatten(a.get('start', 0), a.get('end', -1)),
    'permute': lambda i, a: i['x'].permute(a['order']),
    'transpose': lambda i, a: i['x'].transpose(a['d0'], a['d1']),
    'squeeze': lambda i, a: i['x'].squeeze() if a.get('dim') is None else i['x'].squeeze(a['dim']),
    'unsqueeze': lambda i, a: i['x'].unsqueeze(a['dim']),
    'expand': lambda i, a: i['x'].expand(a['shape']),
    'repeat': lambda i, a: i['x'].repeat(a['times']),
    'cat': lambda i, a: torch.cat([i[f'x{k}'] for k in range(a['n'])], a.get('dim', 0)),
    'stack': lambda i, a: torch.stack([i[f'x{k}'] for k in range(a['n'])], a.get('dim', 0)),
    'narrow': lambda i, a: i['x'].narrow(a['dim'], a['start'], a['length']),
    'slice': lambda i, a: i['x'][(slice(None),) * (a['dim'] % i['x'].dim()) + (slice(a.get('start'), a.get('end'), a.get('step', 1)),)],
    'select': lambda i, a: i['x'].select(a['dim'], a['index']),
    'indexSelect': lambda i, a: torch.index_select(i['x'], a['dim'], i['index']),
    'gather': lambda i, a: torch.gather(i['x'], a['dim'], i['index']),
    'scatter': lambda i, a: torch.scatter(i['x'], a['dim'], i['index'], i['src'] if 'src' in i else a['value']),
    'scatterAdd': lambda i, a: torch.scatter_add(i['x'], a['dim'], i['index'], i['src']),
    'maskedFill': lambda i, a: torch.masked_fill(i['x'], i['mask'], a['value']),
    'maskedSelect': lambda i, a: torch.masked_select(i['x'], i['mask']),
    'tril': lambda i, a: torch.tril(i['x'], a.get('k', 0)),
    'flip': lambda i, a: torch.flip(i['x'], a['dims']),
    'roll': lambda i, a: torch.roll(i['x'], a['shifts'], a['dims']),
    'pad': lambda i, a: F.pad(i['x'], a['pads'], value=a.get('value', 0)),
    'bincount': lambda i, a: torch.bincount(i['x'], i.get('weights'), a.get('minlength', 0)),
    'chunk': lambda i, a: torch.chunk(i['x'], a['chunks'], a.get('dim', 0)),
    # products and neural-network ops
    'matmul': lambda i, a: torch.matmul(i['a'], i['b']),
    'mm': lambda i, a: torch.mm(i['a'], i['b']),
    'bmm': lambda i, a: torch.bmm(i['a'], i['b']),
    'outer': lambda i, a: torch.outer(i['a'], i['b']),
    'addmm': lambda i, a: torch.addmm(i['input'], i['a'], i['b'], beta=a.get('beta', 1), alpha=a.get('alpha', 1)),
    'linear': lambda i, a: F.linear(i['x'], i['weight'], i.get('bias')),
    'conv2d': lambda i, a: F.conv2d(i['x'], i['weight'], i.get('bias'), a.get('stride', 1), a.get('padding', 0), a.get('dilation', 1), a.get('groups', 1)),
    'maxPool2d': lambda i, a: F.max_pool2d(i['x'], a['kernel'], a.get('stride'), a.get('padding', 0), a.get('dilation', 1), a.get('ceilMode', False)),
    'avgPool2d': lambda i, a: F.avg_pool2d(i['x'], a['kernel'], a.get('stride'), a.get('padding', 0), a.get('ceilMode', False), a.get('countIncludePad', True)),
    'adaptiveAvgPool2d': lambda i, a: F.adaptive_avg_pool2d(i['x'], a['size']),
    'batchNorm': batch_norm,
    'layerNorm': lambda i, a: F.layer_norm(i['x'], a['shape'], i.get('weight'), i.get('bias'), a.get('eps', 1e-5)),
    'dropout': lambda i, a: F.dropout(i['x'], a['p'], a['training']),
    'softmax': lambda i, a: torch.softmax(i['x'], a['dim']),
    'logSoftmax': lambda i, a: torch.log_softmax(i['x'], a['dim']),
    'leakyRelu': lambda i, a: F.leaky_relu(i['x'], a['slope']),
    'crossEntropy': lambda i, a: F.cross_entropy(i['logits'], i['target'], i.get('weight'), ignore_index=a.get('ignoreIndex', -100),
                                                 reduction=a.get('reduction', 'mean'), label_smoothing=a.get('labelSmoothing', 0.0)),
    'nllLoss': lambda i, a: F.nll_loss(i['logProbs'], i['target'], i.get('weight'), ignore_index=a.get('ignoreIndex', -100), reduction=a.get('reduction', 'mean')),
    'mseLoss': lambda i, a: F.mse_loss(i['input'], i['target'], reduction=a.get('reduction', 'mean')),
    'oneHot': lambda i, a: F.one_hot(i['x'], a.get('numClasses', -1)),
    'affineGrid': lambda i, a: F.affine_grid(i['theta'], a['size'], align_corners=a.get('alignCorners', False)),
    'gridSample': lambda i, a: F.grid_sample(i['x'], i['grid'], a.get('mode', 'bilinear'), a.get('paddingMode', 'zeros'), a.get('alignCorners', False)),
    'affineSample': lambda i, a: F.grid_sample(i['x'], F.affine_grid(i['theta'], list(i['x'].shape), align_corners=a.get('alignCorners', False)),
                                               a.get('mode', 'bilinear'), a.get('paddingMode', 'zeros'), a.get('alignCorners', False)),
    # in place: the test checks that the method returns the same object
    'add_': inplace(lambda x, i, a: x.add_(other(i, a), alpha=a.get('alpha', 1))),
    'sub_': inplace(lambda x, i, a: x.sub_(other(i, a))),
    'mul_': inplace(lambda x, i, a: x.mul_(other(i, a))),
    'div_': inplace(lambda x, i, a: x.div_(other(i, a))),
    'addcmul_': inplace(lambda x, i, a: x.addcmul_(i['t1'], i['t2'], value=a['value'])),
    'addcdiv_': inplace(lambda x, i, a: x.addcdiv_(i['t1'], i['t2'], value=a['value'])),
    'lerp_': inplace(lambda x, i, a: x.lerp_(i['end'], a['weight'])),
    'copy_': inplace(lambda x, i, a: x.copy_(i['src'])),
    'zero_': inplace(lambda x, i, a: x.zero_()),
    'fill_': inplace(lambda x, i, a: x.fill_(a['value'])),
    'clamp_': inplace(lambda x, i, a: x.clamp_(a.get('min'), a.get('max'))),
    'sqrt_': inplace(lambda x, i, a: x.sqrt_()),
    'maskedFill_': inplace(lambda x, i, a: x.masked_fill_(i['mask'], a['value'])),
    'maskedScatter_': inplace(lambda x, i, a: x.masked_scatter_(i['mask'], i['src'])),
    'indexPut_': inplace(lambda x, i, a: x.index_put_(tuple(i[f'i{k}'] for k in range(a['n'])), i['values'], a.get('accumulate', False))),
    'sgdStep': sgd,
}

def seeded(fn):
    """Seed the global CPU generator as manualSeed does, draw, and put the fixture script's own stream back."""
    def run(i, a):
        state = torch.get_rng_state()
        torch.manual_seed(a['seed'])
        try:
            return fn(i, a)
        finally:
            torch.set_rng_state(state)
    return run


OPS.update({
    'rand': seeded(lambda i, a: torch.rand(a['shape'], dtype=getattr(torch, a.get('dtype', 'float32')))),
    'randn': seeded(lambda i, a: torch.randn(a['shape'], dtype=getattr(torch, a.get('dtype', 'float32')))),
    'randint': seeded(lambda i, a: torch.randint(a['low'], a['high'], a['shape'])),
    'randperm': seeded(lambda i, a: torch.randperm(a['n'])),
    'bernoulli': seeded(lambda i, a: torch.bernoulli(i['p']) if 'prob' not in a else torch.bernoulli(i['p'], a['prob'])),
    'dropoutTrain': seeded(lambda i, a: F.dropout(i['x'], a['p'], True)),
    'multinomial': seeded(lambda i, a: torch.multinomial(i['probs'], a['n'], a.get('replacement', False))),
    'uniform_': seeded(lambda i, a: i['x'].clone().uniform_(a['lo'], a['hi'])),
    'normal_': seeded(lambda i, a: i['x'].clone().normal_(a['mean'], a['std'])),
    'bernoulli_': seeded(lambda i, a: i['x'].clone().bernoulli_(a['p'])),
})

CASES = []


def case(name, op, inputs, args=None, grad=None, grad_of='out', tol=None):
    args = args or {}
    for v in args.values():
        argnum(v) if not isinstance(v, (list, dict)) else None
    ins = {k: (v.detach().clone().requires_grad_(True) if grad and k in grad else v.clone()) for k, v in inputs.items()}
    out = OPS[op](ins, args)
    entry = {'name': f'{op}/{name}', 'op': op, 'inputs': {k: enc(v) for k, v in inputs.items()},
             'args': {k: argnum(v) if not isinstance(v, (list, dict)) else v for k, v in args.items()}, 'outputs': enc_out(out)}
    if grad:
        y = out if isinstance(out, torch.Tensor) else out[grad_of]
        w = rn(*y.shape, dtype=y.dtype)
        (y * w).sum().backward()
        entry['gradOf'] = grad_of
        entry['gradWeight'] = enc(w)
        entry['grads'] = {k: enc(ins[k].grad) for k in grad}
    if tol:
        entry['tol'] = tol
    CASES.append(entry)


# ---- elementwise and comparison -----------------------------------------------------------------
for op in ['add', 'sub', 'mul', 'div']:
    case('same_shape', op, {'a': rn(2, 3), 'b': pos(2, 3)}, grad=['a', 'b'])
    case('broadcast_2x3_3', op, {'a': rn(2, 3), 'b': pos(3)}, grad=['a', 'b'])
    case('broadcast_2x1_1x3', op, {'a': rn(2, 1), 'b': pos(1, 3)}, grad=['a', 'b'])
    case('scalar_float', op, {'a': rn(2, 3)}, {'b': 2.5}, grad=['a'])
    case('float64', op, {'a': rn(3, dtype=F64), 'b': pos(3, dtype=F64)}, grad=['a', 'b'])
case('alpha', 'add', {'a': rn(2, 3), 'b': rn(3)}, {'alpha': 0.5}, grad=['a', 'b'])
case('alpha', 'sub', {'a': rn(2, 3), 'b': rn(3)}, {'alpha': 2}, grad=['a', 'b'])
# dtype promotion (PyTorch's rules, a JS integer acting as a Python int)
case('int64_float32', 'add', {'a': ints(-5, 5, 2, 3), 'b': rn(3)})
case('int32_float64', 'add', {'a': ints(-5, 5, 3, dtype=I32), 'b': rn(2, 3, dtype=F64)})
case('bool_int64', 'add', {'a': torch.tensor([True, False, True]), 'b': ints(-5, 5, 3)})
case('bool_bool', 'add', {'a': torch.tensor([True, False, False]), 'b': torch.tensor([True, True, False])})
case('int64_pyfloat', 'add', {'a': ints(-5, 5, 2, 3)}, {'b': 2.5})
case('int64_pyint', 'mul', {'a': ints(-5, 5, 2, 3)}, {'b': 3})
case('int32_pyint', 'add', {'a': ints(-5, 5, 4, dtype=I32)}, {'b': 7})
case('uint8_int64', 'add', {'a': ints(0, 200, 4, dtype=U8), 'b': ints(-5, 5, 4)})
case('uint8_int8', 'add', {'a': ints(0, 100, 4, dtype=U8), 'b': ints(-5, 5, 4, dtype=I8)})
case('float32_float64_0d', 'mul', {'a': rn(3), 'b': torch.tensor(1.25, dtype=F64)})
case('int_true_division', 'div', {'a': ints(-9, 9, 4), 'b': torch.tensor([2, 3, 4, 5])})
case('bool_pyint', 'add', {'a': torch.tensor([True, False])}, {'b': 3})
case('int_pyint', 'pow', {'a': ints(-4, 5, 5)}, {'b': 2})
case('float_pyfloat', 'pow', {'a': pos(2, 3)}, {'b': 0.5}, grad=['a'])
case('tensor_exponent', 'pow', {'a': pos(2, 3), 'b': rn(3)}, grad=['a', 'b'])
case('int', 'remainder', {'a': torch.tensor([5, -5, 7, -7])}, {'b': 3})
case('float_negative_divisor', 'remainder', {'a': torch.tensor([5.5, -5.5, 7.25, -0.5])}, {'b': -2.5})
case('broadcast', 'remainder', {'a': rn(2, 3, scale=4), 'b': pos(3)})
for op in ['eq', 'ne', 'lt', 'le', 'gt', 'ge']:
    a = ints(0, 3, 2, 3).float()
    case('broadcast_2x3_3', op, {'a': a, 'b': torch.tensor([0., 1., 2.])})
    case('scalar', op, {'a': ints(0, 3, 2, 3)}, {'b': 1})
case('int_vs_float', 'lt', {'a': torch.tensor([1, 2, 3]), 'b': torch.tensor([1.5, 2.0, 2.5])})
case('broadcast', 'maximum', {'a': distinct(2, 3), 'b': distinct(3) + 0.125}, grad=['a', 'b'])
case('broadcast', 'minimum', {'a': distinct(2, 1), 'b': distinct(1, 3) + 0.125}, grad=['a', 'b'])
case('int32_float32', 'maximum', {'a': ints(-3, 3, 4, dtype=I32), 'b': rn(4)})
bools = lambda *s: torch.rand(*s) > 0.5
for op in ['logicalAnd', 'logicalOr', 'logicalXor']:
    case('bool', op, {'a': bools(2, 3), 'b': bools(3)})
    case('float', op, {'a': torch.tensor([0., 1.5, 0., -2.]), 'b': torch.tensor([0., 0., 3., 1.])})

smooth = ['neg', 'exp', 'sin', 'cos', 'sigmoid', 'tanh', 'square', 'gelu', 'softplus']
for op in smooth:
    case('float32', op, {'x': rn(2, 3)}, grad=['x'])
case('float64', 'exp', {'x': rn(4, dtype=F64)}, grad=['x'])
for op in ['log', 'sqrt', 'rsqrt', 'reciprocal']:
    case('positive', op, {'x': pos(2, 3)}, grad=['x'])
case('nonfinite', 'log', {'x': torch.tensor([0., -1., 1., 2.5])})
case('nonfinite', 'sqrt', {'x': torch.tensor([-1., 0., 4., 2.])})
case('float32', 'abs', {'x': distinct(2, 3) + 0.125}, grad=['x'])
case('float32', 'relu', {'x': distinct(2, 3) + 0.125}, grad=['x'])
case('float32', 'sign', {'x': torch.tensor([-2.5, 0., 3.25])})
case('int64', 'abs', {'x': torch.tensor([-3, 0, 4])})
case('int64', 'neg', {'x': torch.tensor([-3, 0, 4])})
case('int64', 'sign', {'x': torch.tensor([-3, 0, 4])})
case('half_to_even', 'round', {'x': torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6])})
case('float32', 'floor', {'x': torch.tensor([0.5, -0.5, 2.0, -2.25])})
case('float32', 'ceil', {'x': torch.tensor([0.5, -0.5, 2.0, -2.25])})
case('int64', 'floor', {'x': torch.tensor([3, -3])})
case('mixed', 'isnan', {'x': torch.tensor([float('nan'), 1.0, float('inf'), -float('inf')])})
case('mixed', 'isfinite', {'x': torch.tensor([float('nan'), 1.0, float('inf'), -float('inf')])})
case('float', 'logicalNot', {'x': torch.tensor([0., 1.5, -0.0])})
case('both', 'clamp', {'x': distinct(2, 3) + 0.125}, {'min': -0.5, 'max': 0.75}, grad=['x'])
case('min_only', 'clamp', {'x': distinct(2, 3) + 0.125}, {'min': -0.25}, grad=['x'])
case('max_only', 'clamp', {'x': distinct(2, 3) + 0.125}, {'max': 0.25}, grad=['x'])
case('int_bounds', 'clamp', {'x': torch.tensor([-5, 0, 5, 9])}, {'min': -2, 'max': 6})
case('slope', 'leakyRelu', {'x': distinct(2, 3) + 0.125}, {'slope': 0.2}, grad=['x'])
case('float', 'rsub', {'x': rn(2, 3)}, {'s': 3}, grad=['x'])
case('int_pyfloat', 'rsub', {'x': ints(-3, 3, 3)}, {'s': 2.5})
case('float', 'rdiv', {'x': pos(2, 3)}, {'s': 1.5}, grad=['x'])
c = bools(2, 3)
case('tensors', 'where', {'cond': c, 'a': rn(2, 3), 'b': rn(2, 3)}, grad=['a', 'b'])
case('broadcast', 'where', {'cond': bools(2, 1), 'a': rn(1, 3), 'b': rn(2, 3)}, grad=['a', 'b'])
case('scalar_b', 'where', {'cond': c, 'a': rn(2, 3)}, {'b': 0.5}, grad=['a'])
case('scalar_a', 'where', {'cond': c, 'b': rn(2, 3)}, {'a': -1.5}, grad=['b'])
case('int_tensor_float_scalar', 'where', {'cond': c, 'a': ints(0, 9, 2, 3)}, {'b': 0.5})
case('int_scalars', 'where', {'cond': c}, {'a': 1, 'b': 0})
case('float_scalars', 'where', {'cond': c}, {'a': 1.5, 'b': -0.5})
for d, s in [('int64', (I64, 'int64')), ('int32', (I32, 'int32')), ('bool', (BOOL, 'bool')), ('float64', (F64, 'float64')), ('uint8', (U8, 'uint8'))]:
    case(f'float32_to_{d}', 'to', {'x': torch.tensor([3.75, -3.75, 0.0, 0.5, 200.25])} if d != 'uint8' else {'x': torch.tensor([3.75, 0.0, 0.5, 200.25])}, {'dtype': s[1]})
case('int64_to_float32', 'to', {'x': ints(-100, 100, 5)}, {'dtype': 'float32'})
case('bool_to_float32', 'to', {'x': torch.tensor([True, False])}, {'dtype': 'float32'})
case('float32', 'float16Roundtrip', {'x': torch.tensor([1.0001, 3.14159, -65504.0, 1e-4, 0.1])})
case('equal_values', 'equal', {'a': torch.tensor([1., 2.]), 'b': torch.tensor([1., 2.])})
case('differ', 'equal', {'a': torch.tensor([1., 2.]), 'b': torch.tensor([1., 2.5])})
case('close', 'allclose', {'a': torch.tensor([1., 2.]), 'b': torch.tensor([1.00001, 2.])}, {'rtol': 1e-4, 'atol': 1e-6})
case('far', 'allclose', {'a': torch.tensor([1., 2.]), 'b': torch.tensor([1.01, 2.])}, {'rtol': 1e-4, 'atol': 1e-6})
for op in ['clone', 'contiguous', 'detach']:
    case('float', op, {'x': rn(2, 3)})

# ---- reductions ---------------------------------------------------------------------------------
x3 = rn(2, 3, 4)
case('all', 'sum', {'x': x3}, grad=['x'])
case('dim1_keepdim', 'sum', {'x': x3}, {'dim': [1], 'keepdim': True}, grad=['x'])
case('dims_0_2', 'sum', {'x': x3}, {'dim': [0, 2]}, grad=['x'])
case('negative_dim', 'sum', {'x': x3}, {'dim': [-1]}, grad=['x'])
case('int32_to_int64', 'sum', {'x': ints(-5, 5, 2, 3, dtype=I32)}, {'dim': [1]})
case('bool', 'sum', {'x': bools(2, 3)})
case('all', 'mean', {'x': x3}, grad=['x'])
case('dim0_keepdim', 'mean', {'x': x3}, {'dim': [0], 'keepdim': True}, grad=['x'])
case('float64_dims', 'mean', {'x': rn(2, 3, 4, dtype=F64)}, {'dim': [1, 2]}, grad=['x'])
for op in ['var', 'std']:
    case('all', op, {'x': x3}, grad=['x'])
    case('dim1', op, {'x': x3}, {'dim': [1]}, grad=['x'])
    case('dim2_keepdim_biased', op, {'x': x3}, {'dim': [2], 'keepdim': True, 'unbiased': False}, grad=['x'])
    case('dims_0_1', op, {'x': x3}, {'dim': [0, 1]}, grad=['x'])
case('float', 'prod', {'x': pos(2, 3)}, grad=['x'])
case('int', 'prod', {'x': torch.tensor([[1, -2], [3, 4]])})
d3 = distinct(2, 3, 4)
case('all', 'max', {'x': d3}, grad=['x'])
case('all', 'min', {'x': d3}, grad=['x'])
case('dim1', 'maxDim', {'x': d3}, {'dim': 1}, grad=['x'], grad_of='values')
case('dim2_keepdim', 'maxDim', {'x': d3}, {'dim': 2, 'keepdim': True}, grad=['x'], grad_of='values')
case('dim0', 'minDim', {'x': d3}, {'dim': 0}, grad=['x'], grad_of='values')
case('dim_neg1_keepdim', 'minDim', {'x': d3}, {'dim': -1, 'keepdim': True}, grad=['x'], grad_of='values')
case('int', 'maxDim', {'x': torch.tensor([[3, 9, 1], [7, 2, 8]])}, {'dim': 1})
case('flat', 'argmax', {'x': d3})
case('dim1_keepdim', 'argmax', {'x': d3}, {'dim': 1, 'keepdim': True})
case('ties_first', 'argmax', {'x': torch.tensor([[1., 3., 3.], [2., 2., 0.]])}, {'dim': 1})
case('dim2', 'argmin', {'x': d3}, {'dim': 2})
case('p2_all', 'norm', {'x': x3}, {'p': 2}, grad=['x'])
case('p1_dim', 'norm', {'x': d3 + 0.125}, {'p': 1, 'dim': [1]}, grad=['x'])
case('p2_dim_keepdim', 'norm', {'x': x3}, {'p': 2, 'dim': [2], 'keepdim': True}, grad=['x'])
case('p3_dims', 'norm', {'x': x3}, {'p': 3, 'dim': [0, 2]}, grad=['x'])
case('pinf_dim', 'norm', {'x': d3}, {'p': float('inf'), 'dim': [1]}, grad=['x'])
case('p1.5', 'norm', {'x': x3}, {'p': 1.5}, grad=['x'])
case('largest', 'topk', {'x': d3}, {'k': 2}, grad=['x'], grad_of='values')
case('smallest_dim1', 'topk', {'x': d3}, {'k': 2, 'dim': 1, 'largest': False}, grad=['x'], grad_of='values')
case('ascending', 'sort', {'x': d3}, grad=['x'], grad_of='values')
case('descending_dim0', 'sort', {'x': d3}, {'dim': 0, 'descending': True}, grad=['x'], grad_of='values')
case('ties_stable', 'sort', {'x': torch.tensor([2., 1., 2., 1., 0., 2., 1.])})
case('ties_stable_descending', 'sort', {'x': torch.tensor([2., 1., 2., 1., 0., 2., 1.])}, {'descending': True})
case('int', 'sort', {'x': torch.tensor([5, -1, 3, 0])})
case('dim1', 'argsort', {'x': d3}, {'dim': 1})
case('descending', 'argsort', {'x': d3}, {'descending': True})
case('k2', 'kthvalue', {'x': d3}, {'k': 2}, grad=['x'], grad_of='values')
case('k3_dim1_keepdim', 'kthvalue', {'x': d3}, {'k': 3, 'dim': 1, 'keepdim': True}, grad=['x'], grad_of='values')
xq = distinct(3, 5)
case('all_q0.3', 'quantile', {'x': xq}, {'q': 0.3}, grad=['x'])
case('dim1_q0.75_keepdim', 'quantile', {'x': xq}, {'q': 0.75, 'dim': 1, 'keepdim': True}, grad=['x'])
case('q_tensor_dim0', 'quantile', {'x': xq, 'q': torch.tensor([0.1, 0.5, 0.9])}, {'dim': 0}, grad=['x'])
for interp in ['lower', 'higher', 'midpoint', 'nearest']:
    case(f'{interp}', 'quantile', {'x': xq}, {'q': 0.3, 'dim': 1, 'interpolation': interp})
case('float64', 'quantile', {'x': rn(7, dtype=F64)}, {'q': 0.4}, grad=['x'])
case('dim1', 'cumsum', {'x': x3}, {'dim': 1}, grad=['x'])
case('dim_neg1', 'cumsum', {'x': x3}, {'dim': -1}, grad=['x'])
case('int32_to_int64', 'cumsum', {'x': ints(-5, 5, 5, dtype=I32)}, {'dim': 0})
case('float', 'countNonzero', {'x': torch.tensor([[0., 1.], [2., 0.], [0., 0.]])})
case('some', 'all', {'x': torch.tensor([1., 0., 2.])})
case('none_zero', 'all', {'x': torch.tensor([1., -3., 2.])})
case('some', 'any', {'x': torch.tensor([0., 0., 2.])})
case('none', 'any', {'x': torch.tensor([0., 0., 0.])})

# ---- shape and indexing -------------------------------------------------------------------------
x = rn(2, 3, 4)
case('to_4x6', 'reshape', {'x': x}, {'shape': [4, 6]}, grad=['x'])
case('infer', 'reshape', {'x': x}, {'shape': [-1, 2]}, grad=['x'])
case('infer_middle', 'view', {'x': x}, {'shape': [2, -1, 2]}, grad=['x'])
case('default', 'flatten', {'x': x}, grad=['x'])
case('dims_1_2', 'flatten', {'x': rn(2, 3, 2, 2)}, {'start': 1, 'end': 2}, grad=['x'])
case('2_0_1', 'permute', {'x': x}, {'order': [2, 0, 1]}, grad=['x'])
case('0_2', 'transpose', {'x': x}, {'d0': 0, 'd1': 2}, grad=['x'])
case('neg', 'transpose', {'x': x}, {'d0': -1, 'd1': -2}, grad=['x'])
case('2d', 'T', {'x': rn(2, 3)}, grad=['x'])
xs = rn(1, 3, 1, 2)
case('all', 'squeeze', {'x': xs}, grad=['x'])
case('dim2', 'squeeze', {'x': xs}, {'dim': 2}, grad=['x'])
case('dim1_noop', 'squeeze', {'x': xs}, {'dim': 1}, grad=['x'])
case('dim0', 'unsqueeze', {'x': rn(2, 3)}, {'dim': 0}, grad=['x'])
case('dim_neg1', 'unsqueeze', {'x': rn(2, 3)}, {'dim': -1}, grad=['x'])
case('3x1_to_2x3x4', 'expand', {'x': rn(3, 1)}, {'shape': [2, 3, 4]}, grad=['x'])
case('keep_dim', 'expand', {'x': rn(1, 3)}, {'shape': [4, -1]}, grad=['x'])
case('2x3', 'repeat', {'x': rn(2, 3)}, {'times': [2, 1, 2]}, grad=['x'])
case('dim0', 'cat', {'x0': rn(2, 3), 'x1': rn(1, 3), 'x2': rn(3, 3)}, {'n': 3, 'dim': 0}, grad=['x0', 'x1', 'x2'])
case('dim1', 'cat', {'x0': rn(2, 3), 'x1': rn(2, 1)}, {'n': 2, 'dim': 1}, grad=['x0', 'x1'])
case('promote', 'cat', {'x0': ints(0, 5, 2), 'x1': rn(3)}, {'n': 2})
case('dim0', 'stack', {'x0': rn(2, 3), 'x1': rn(2, 3)}, {'n': 2}, grad=['x0', 'x1'])
case('dim_neg1', 'stack', {'x0': rn(2, 3), 'x1': rn(2, 3), 'x2': rn(2, 3)}, {'n': 3, 'dim': -1}, grad=['x0', 'x1', 'x2'])
case('dim1', 'narrow', {'x': x}, {'dim': 1, 'start': 1, 'length': 2}, grad=['x'])
case('negative_start', 'narrow', {'x': x}, {'dim': 2, 'start': -3, 'length': 2}, grad=['x'])
xl = rn(3, 7)
case('step2', 'slice', {'x': xl}, {'dim': 1, 'start': 1, 'end': 6, 'step': 2}, grad=['x'])
case('step3_open_end', 'slice', {'x': xl}, {'dim': 1, 'start': 0, 'step': 3}, grad=['x'])
case('negative_bounds', 'slice', {'x': xl}, {'dim': 1, 'start': -4, 'end': -1}, grad=['x'])
case('dim0', 'slice', {'x': xl}, {'dim': 0, 'start': 1}, grad=['x'])
case('dim1', 'select', {'x': x}, {'dim': 1, 'index': 2}, grad=['x'])
case('neg_index', 'select', {'x': x}, {'dim': 0, 'index': -1}, grad=['x'])
case('dim0_repeats', 'indexSelect', {'x': rn(4, 3), 'index': torch.tensor([3, 0, 3, 1])}, {'dim': 0}, grad=['x'])
case('dim1', 'indexSelect', {'x': rn(2, 5), 'index': torch.tensor([4, 1])}, {'dim': 1}, grad=['x'])
case('dim1', 'gather', {'x': rn(3, 4), 'index': torch.tensor([[0, 3], [1, 1], [2, 0]])}, {'dim': 1}, grad=['x'])
case('dim0', 'gather', {'x': rn(3, 4), 'index': torch.tensor([[2, 0, 1, 2], [0, 0, 0, 1]])}, {'dim': 0}, grad=['x'])
case('src_dim1', 'scatter', {'x': rn(3, 4), 'index': torch.tensor([[0, 3], [1, 2], [3, 0]]), 'src': rn(3, 2)}, {'dim': 1}, grad=['x', 'src'])
case('value_dim0', 'scatter', {'x': rn(3, 4), 'index': torch.tensor([[2, 0, 1, 1]])}, {'dim': 0, 'value': -2.5}, grad=['x'])
case('dim0_duplicates', 'scatterAdd', {'x': rn(3, 2), 'index': torch.tensor([[0, 1], [0, 1], [2, 0]]), 'src': rn(3, 2)}, {'dim': 0}, grad=['x', 'src'])
mask = bools(2, 3)
case('scalar', 'maskedFill', {'x': rn(2, 3), 'mask': mask}, {'value': -1.5}, grad=['x'])
case('broadcast_mask', 'maskedFill', {'x': rn(2, 3), 'mask': torch.tensor([True, False, True])}, {'value': 0}, grad=['x'])
case('2d', 'maskedSelect', {'x': rn(2, 3), 'mask': mask}, grad=['x'])
case('broadcast_mask', 'maskedSelect', {'x': rn(2, 3), 'mask': torch.tensor([False, True, True])}, grad=['x'])
case('2d', 'nonzero', {'x': torch.tensor([[0., 1., 0.], [2., 0., 3.]])})
case('k0', 'tril', {'x': rn(3, 4)}, grad=['x'])
case('k_neg1', 'tril', {'x': rn(3, 4)}, {'k': -1})
case('dims_0_1', 'flip', {'x': rn(2, 3)}, {'dims': [0, 1]}, grad=['x'])
case('dim1', 'roll', {'x': rn(2, 4)}, {'shifts': [1], 'dims': [1]}, grad=['x'])
case('last_two', 'pad', {'x': rn(1, 2, 3)}, {'pads': [1, 2, 0, 1], 'value': 0.5}, grad=['x'])
case('negative_crop', 'pad', {'x': rn(2, 4)}, {'pads': [-1, 1]}, grad=['x'])
case('plain', 'bincount', {'x': torch.tensor([0, 2, 2, 5, 1])})
case('weights_minlength', 'bincount', {'x': torch.tensor([0, 2, 2, 1]), 'weights': torch.tensor([0.5, 1.0, 0.25, 2.0])}, {'minlength': 5})
case('uneven', 'chunk', {'x': rn(5, 2)}, {'chunks': 3})
case('dim1', 'chunk', {'x': rn(2, 4)}, {'chunks': 2, 'dim': 1})

# ---- products and neural-network ops -------------------------------------------------------------
case('2d_2d', 'matmul', {'a': rn(2, 3), 'b': rn(3, 4)}, grad=['a', 'b'])
case('1d_2d', 'matmul', {'a': rn(3), 'b': rn(3, 4)}, grad=['a', 'b'])
case('2d_1d', 'matmul', {'a': rn(2, 3), 'b': rn(3)}, grad=['a', 'b'])
case('dot', 'matmul', {'a': rn(3), 'b': rn(3)}, grad=['a', 'b'])
case('batched_3d_2d', 'matmul', {'a': rn(2, 2, 3), 'b': rn(3, 4)}, grad=['a', 'b'])
case('broadcast_batch', 'matmul', {'a': rn(2, 1, 2, 3), 'b': rn(3, 3, 2)}, grad=['a', 'b'])
case('int64', 'matmul', {'a': ints(-3, 4, 2, 3), 'b': ints(-3, 4, 3, 2)})
case('float64', 'matmul', {'a': rn(2, 3, dtype=F64), 'b': rn(3, 2, dtype=F64)}, grad=['a', 'b'])
case('2d', 'mm', {'a': rn(3, 2), 'b': rn(2, 4)}, grad=['a', 'b'])
case('3d', 'bmm', {'a': rn(2, 2, 3), 'b': rn(2, 3, 2)}, grad=['a', 'b'])
case('vectors', 'outer', {'a': rn(3), 'b': rn(4)}, grad=['a', 'b'])
case('default', 'addmm', {'input': rn(2, 4), 'a': rn(2, 3), 'b': rn(3, 4)}, grad=['input', 'a', 'b'])
case('beta_alpha_broadcast', 'addmm', {'input': rn(4), 'a': rn(2, 3), 'b': rn(3, 4)}, {'beta': 0.5, 'alpha': 2}, grad=['input', 'a', 'b'])
case('bias', 'linear', {'x': rn(2, 3), 'weight': rn(4, 3), 'bias': rn(4)}, grad=['x', 'weight', 'bias'])
case('no_bias_3d', 'linear', {'x': rn(2, 2, 3), 'weight': rn(4, 3)}, grad=['x', 'weight'])
case('basic_bias', 'conv2d', {'x': rn(1, 2, 5, 5), 'weight': rn(3, 2, 3, 3), 'bias': rn(3)}, grad=['x', 'weight', 'bias'], tol=[1e-4, 1e-5])
case('stride2_pad1', 'conv2d', {'x': rn(2, 2, 5, 5), 'weight': rn(3, 2, 3, 3)}, {'stride': 2, 'padding': 1}, grad=['x', 'weight'], tol=[1e-4, 1e-5])
case('dilation2', 'conv2d', {'x': rn(1, 1, 6, 6), 'weight': rn(2, 1, 3, 3), 'bias': rn(2)}, {'dilation': 2}, grad=['x', 'weight', 'bias'], tol=[1e-4, 1e-5])
case('groups2', 'conv2d', {'x': rn(1, 4, 4, 4), 'weight': rn(4, 2, 3, 3), 'bias': rn(4)}, {'padding': 1, 'groups': 2}, grad=['x', 'weight', 'bias'], tol=[1e-4, 1e-5])
case('depthwise', 'conv2d', {'x': rn(1, 3, 4, 4), 'weight': rn(3, 1, 2, 2)}, {'groups': 3}, grad=['x', 'weight'], tol=[1e-4, 1e-5])
case('asymmetric', 'conv2d', {'x': rn(1, 2, 5, 6), 'weight': rn(2, 2, 3, 2), 'bias': rn(2)},
     {'stride': [1, 2], 'padding': [2, 0], 'dilation': [1, 2]}, grad=['x', 'weight', 'bias'], tol=[1e-4, 1e-5])
case('float64', 'conv2d', {'x': rn(1, 2, 4, 4, dtype=F64), 'weight': rn(2, 2, 3, 3, dtype=F64), 'bias': rn(2, dtype=F64)},
     {'padding': 1}, grad=['x', 'weight', 'bias'])
xp = distinct(1, 2, 6, 6)
case('k2', 'maxPool2d', {'x': xp}, {'kernel': 2}, grad=['x'])
case('k3_s2_p1', 'maxPool2d', {'x': xp}, {'kernel': 3, 'stride': 2, 'padding': 1}, grad=['x'])
case('dilation2', 'maxPool2d', {'x': xp}, {'kernel': 2, 'stride': 1, 'dilation': 2}, grad=['x'])
case('ceil', 'maxPool2d', {'x': distinct(1, 1, 5, 5)}, {'kernel': 2, 'ceilMode': True}, grad=['x'])
case('3d_input_rect', 'maxPool2d', {'x': distinct(2, 4, 6)}, {'kernel': [2, 3], 'stride': [2, 1]}, grad=['x'])
case('k2', 'avgPool2d', {'x': rn(1, 2, 4, 4)}, {'kernel': 2}, grad=['x'])
case('k3_s2_p1_include', 'avgPool2d', {'x': rn(1, 2, 5, 5)}, {'kernel': 3, 'stride': 2, 'padding': 1}, grad=['x'])
case('k3_s2_p1_exclude', 'avgPool2d', {'x': rn(1, 2, 5, 5)}, {'kernel': 3, 'stride': 2, 'padding': 1, 'countIncludePad': False}, grad=['x'])
case('ceil', 'avgPool2d', {'x': rn(1, 1, 5, 5)}, {'kernel': 2, 'ceilMode': True}, grad=['x'])
case('5x7_to_3x3', 'adaptiveAvgPool2d', {'x': rn(1, 2, 5, 7)}, {'size': [3, 3]}, grad=['x'])
case('to_1x1', 'adaptiveAvgPool2d', {'x': rn(2, 3, 4, 4)}, {'size': [1, 1]}, grad=['x'])
case('upsample_2x4', 'adaptiveAvgPool2d', {'x': rn(1, 1, 3, 3)}, {'size': [2, 4]}, grad=['x'])
bn = {'x': rn(3, 2, 2, 2), 'weight': pos(2), 'bias': rn(2), 'runningMean': rn(2), 'runningVar': pos(2)}
case('training_4d', 'batchNorm', bn, {'training': True, 'momentum': 0.1, 'eps': 1e-5}, grad=['x', 'weight', 'bias'])
case('training_2d_momentum', 'batchNorm', {'x': rn(4, 3), 'weight': pos(3), 'bias': rn(3), 'runningMean': rn(3), 'runningVar': pos(3)},
     {'training': True, 'momentum': 0.3, 'eps': 1e-3}, grad=['x', 'weight', 'bias'])
case('training_no_stats_no_affine', 'batchNorm', {'x': rn(4, 2, 3)}, {'training': True}, grad=['x'])
case('eval_4d', 'batchNorm', bn, {'training': False}, grad=['x', 'weight', 'bias'])
case('last_dim', 'layerNorm', {'x': rn(2, 3, 4), 'weight': pos(4), 'bias': rn(4)}, {'shape': [4]}, grad=['x', 'weight', 'bias'])
case('last_two_no_affine', 'layerNorm', {'x': rn(2, 3, 4)}, {'shape': [3, 4], 'eps': 1e-3}, grad=['x'])
case('p0_training', 'dropout', {'x': rn(2, 3)}, {'p': 0, 'training': True}, grad=['x'])
case('eval', 'dropout', {'x': rn(2, 3)}, {'p': 0.5, 'training': False}, grad=['x'])
case('p1_training', 'dropout', {'x': rn(2, 3)}, {'p': 1, 'training': True}, grad=['x'])
for op in ['softmax', 'logSoftmax']:
    case('dim1', op, {'x': rn(2, 3)}, {'dim': 1}, grad=['x'])
    case('dim0_3d', op, {'x': rn(3, 2, 2)}, {'dim': 0}, grad=['x'])
    case('large_values', op, {'x': torch.tensor([[1000., 1001., 1002.], [-1000., 0., 1000.]])}, {'dim': -1}, grad=['x'])
logits, target = rn(4, 5), torch.tensor([1, 0, 4, 2])
cw = pos(5)
case('mean', 'crossEntropy', {'logits': logits, 'target': target}, grad=['logits'])
case('sum', 'crossEntropy', {'logits': logits, 'target': target}, {'reduction': 'sum'}, grad=['logits'])
case('none', 'crossEntropy', {'logits': logits, 'target': target}, {'reduction': 'none'}, grad=['logits'])
case('weights', 'crossEntropy', {'logits': logits, 'target': target, 'weight': cw}, grad=['logits'])
case('label_smoothing', 'crossEntropy', {'logits': logits, 'target': target}, {'labelSmoothing': 0.1}, grad=['logits'])
case('weights_label_smoothing', 'crossEntropy', {'logits': logits, 'target': target, 'weight': cw}, {'labelSmoothing': 0.2}, grad=['logits'])
case('weights_label_smoothing_sum', 'crossEntropy', {'logits': logits, 'target': target, 'weight': cw}, {'labelSmoothing': 0.2, 'reduction': 'sum'}, grad=['logits'])
case('ignore_index', 'crossEntropy', {'logits': logits, 'target': torch.tensor([1, -100, 4, 2])}, grad=['logits'])
case('ignore_index_custom', 'crossEntropy', {'logits': logits, 'target': target}, {'ignoreIndex': 2, 'labelSmoothing': 0.1}, grad=['logits'])
case('spatial', 'crossEntropy', {'logits': rn(2, 3, 2, 2), 'target': ints(0, 3, 2, 2, 2)}, grad=['logits'])
lp = torch.log_softmax(rn(4, 5), 1)
case('mean', 'nllLoss', {'logProbs': lp, 'target': target}, grad=['logProbs'])
case('weights', 'nllLoss', {'logProbs': lp, 'target': target, 'weight': cw}, grad=['logProbs'])
case('none_ignore', 'nllLoss', {'logProbs': lp, 'target': target}, {'reduction': 'none', 'ignoreIndex': 0}, grad=['logProbs'])
for red in ['mean', 'sum', 'none']:
    case(red, 'mseLoss', {'input': rn(2, 3), 'target': rn(2, 3)}, {'reduction': red}, grad=['input', 'target'])
case('infer', 'oneHot', {'x': torch.tensor([0, 3, 1])})
case('num_classes_2d', 'oneHot', {'x': torch.tensor([[0, 2], [1, 1]])}, {'numClasses': 4})
theta = torch.tensor([[[0.9, -0.2, 0.1], [0.3, 1.1, -0.2]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
case('default', 'affineGrid', {'theta': theta}, {'size': [2, 1, 3, 4]}, grad=['theta'])
case('align_corners', 'affineGrid', {'theta': theta}, {'size': [2, 1, 3, 4], 'alignCorners': True}, grad=['theta'])
xg = rn(1, 2, 3, 4)
grid = ((torch.rand(1, 2, 3, 2, dtype=F64) * 2.4 - 1.2) * 100).round().div(100).add(0.003).float()
for mode in ['bilinear', 'nearest']:
    for padm in ['zeros', 'border', 'reflection']:
        for ac in [False, True]:
            g = ['x', 'grid'] if mode == 'bilinear' else ['x']
            case(f'{mode}_{padm}_{"ac" if ac else "noac"}', 'gridSample', {'x': xg, 'grid': grid}, {'mode': mode, 'paddingMode': padm, 'alignCorners': ac}, grad=g)
case('rotate', 'affineSample', {'x': rn(2, 1, 3, 3), 'theta': theta}, {}, grad=['x', 'theta'])
case('rotate_border_ac', 'affineSample', {'x': rn(2, 1, 3, 3), 'theta': theta}, {'paddingMode': 'border', 'alignCorners': True}, grad=['x', 'theta'])

# ---- in place ------------------------------------------------------------------------------------
case('tensor_alpha', 'add_', {'x': rn(2, 3), 'b': rn(3)}, {'alpha': -0.5})
case('scalar', 'add_', {'x': rn(2, 3)}, {'b': 1.25})
case('int_scalar', 'add_', {'x': ints(0, 5, 3)}, {'b': 2})
case('tensor', 'sub_', {'x': rn(2, 3), 'b': rn(2, 1)})
case('scalar', 'mul_', {'x': rn(2, 3)}, {'b': -1.5})
case('tensor', 'mul_', {'x': rn(2, 3), 'b': rn(3)})
case('tensor', 'div_', {'x': rn(2, 3), 'b': pos(2, 3)})
case('scalar', 'div_', {'x': rn(2, 3)}, {'b': 4})
case('value', 'addcmul_', {'x': rn(2, 3), 't1': rn(2, 3), 't2': rn(3)}, {'value': 0.5})
case('value', 'addcdiv_', {'x': rn(2, 3), 't1': rn(2, 3), 't2': pos(2, 3)}, {'value': -0.25})
case('weight', 'lerp_', {'x': rn(2, 3), 'end': rn(2, 3)}, {'weight': 0.3})
case('broadcast_cast', 'copy_', {'x': rn(2, 3), 'src': ints(-5, 5, 3)})
case('float', 'zero_', {'x': rn(2, 3)})
case('float', 'fill_', {'x': rn(2, 3)}, {'value': 0.75})
case('int', 'fill_', {'x': ints(0, 5, 3)}, {'value': 7})
case('both', 'clamp_', {'x': rn(2, 3)}, {'min': -0.5, 'max': 0.5})
case('positive', 'sqrt_', {'x': pos(2, 3)})
case('mask', 'maskedFill_', {'x': rn(2, 3), 'mask': bools(2, 3)}, {'value': 0})
case('broadcast_mask', 'maskedFill_', {'x': rn(2, 3), 'mask': torch.tensor([[True], [False]])}, {'value': -2.5})
m = torch.tensor([[True, False, True], [False, True, True]])
case('mask', 'maskedScatter_', {'x': rn(2, 3), 'mask': m, 'src': rn(6)})
case('one_index', 'indexPut_', {'x': rn(4, 2), 'i0': torch.tensor([0, 2]), 'values': rn(2, 2)}, {'n': 1})
case('two_indices', 'indexPut_', {'x': rn(3, 3), 'i0': torch.tensor([0, 2, 1]), 'i1': torch.tensor([1, 0, 1]), 'values': rn(3)}, {'n': 2})
case('accumulate_duplicates', 'indexPut_', {'x': rn(4), 'i0': torch.tensor([1, 1, 3]), 'values': torch.tensor([0.5, 0.25, -1.0])}, {'n': 1, 'accumulate': True})
case('bool_mask', 'indexPut_', {'x': rn(2, 3), 'i0': m, 'values': torch.tensor(9.5)}, {'n': 1})
sg = {'p0': rn(2, 3), 'p1': rn(3), 'g0': rn(2, 3), 'g1': rn(3)}
case('plain', 'sgdStep', sg, {'lr': 0.1, 'momentum': 0, 'dampening': 0, 'weightDecay': 0, 'nesterov': False, 'steps': 2})
case('momentum_wd_dampening', 'sgdStep', sg, {'lr': 0.05, 'momentum': 0.9, 'dampening': 0.1, 'weightDecay': 0.01, 'nesterov': False, 'steps': 3})
case('nesterov', 'sgdStep', sg, {'lr': 0.05, 'momentum': 0.9, 'dampening': 0, 'weightDecay': 0.001, 'nesterov': True, 'steps': 3})

# ---- random draws: libtorch's CPU generator is PyTorch's, so a seed gives PyTorch's numbers -------
case('seed0', 'rand', {}, {'seed': 0, 'shape': [5]})
case('seed1_float64', 'rand', {}, {'seed': 1, 'shape': [2, 3], 'dtype': 'float64'})
case('seed0_small', 'randn', {}, {'seed': 0, 'shape': [3]})
case('seed2_vectorized', 'randn', {}, {'seed': 2, 'shape': [4, 5]})
case('seed3', 'randint', {}, {'seed': 3, 'low': -5, 'high': 7, 'shape': [2, 4]})
case('seed4', 'randperm', {}, {'seed': 4, 'n': 10})
case('seed5_tensor_p', 'bernoulli', {'p': torch.tensor([[0.1, 0.5, 0.9], [0.3, 0.7, 0.2]])}, {'seed': 5})
case('seed6_scalar_p', 'bernoulli', {'p': torch.zeros(8)}, {'seed': 6, 'prob': 0.3})
case('seed7', 'dropoutTrain', {'x': rn(3, 6)}, {'seed': 7, 'p': 0.4})
case('seed8', 'multinomial', {'probs': torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]])}, {'seed': 8, 'n': 3})
case('seed9_replacement', 'multinomial', {'probs': torch.tensor([0.25, 0.5, 0.25])}, {'seed': 9, 'n': 6, 'replacement': True})
case('seed10', 'uniform_', {'x': torch.zeros(2, 3)}, {'seed': 10, 'lo': -2, 'hi': 3})
case('seed11_vectorized', 'normal_', {'x': torch.zeros(20)}, {'seed': 11, 'mean': 1.5, 'std': 0.5})
case('seed12', 'bernoulli_', {'x': torch.zeros(6)}, {'seed': 12, 'p': 0.5})

# ---- write ---------------------------------------------------------------------------------------
names = [c['name'] for c in CASES]
dup = {n for n in names if names.count(n) > 1}
if dup:
    sys.exit(f'duplicate case names: {sorted(dup)}')
out = {'generator': 'scripts/make-fixtures.py (generated file: do not edit)', 'torch': torch.__version__, 'cases': CASES}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'ops.json')
os.makedirs(os.path.dirname(path), exist_ok=True)
text = json.dumps(out, separators=(',', ':'))
with open(path, 'w') as f:
    f.write(text + '\n')
print(f'wrote {len(CASES)} cases, {len(text) // 1024} KB to {os.path.normpath(path)}')
