"""SNIP on LeNet-300-100 / MNIST in PyTorch, with the training of recipes/pmp-snip-lenet300.yaml.

An independent cross-check of topiary's SNIP baseline (docs/results/pmp.md): the same data files,
split size, initialization, scoring batch, optimizer and schedule, written directly in PyTorch.
Run with Debian's PyTorch:  /usr/bin/python3 bench/crosscheck/snip_lenet300.py --sparsity 0.95 --seed 0

--authors switches on three details of the SNIP authors' TensorFlow code (github.com/namhoonlee/snip-public,
model.py and network.py) that the paper's text does not state, to test whether they explain the gap
to the paper's figures: TensorFlow's variance-scaling initialization (truncated normal, fan_in,
scale 1; biases too when scoring), the saliency scored on one initialization and the mask applied
to a fresh one (weights_bp / weights_ap), and the biases pruned with the weights under the same
global threshold. The script also prints the authors' reporting protocol (their test.py): the
best test accuracy over the last 5 checkpoints, saved every 1000 iterations. That selects on the
test set, so it is printed for comparison only.
"""
import math
import argparse
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch"))
from mnist_data import mnist_flat  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--sparsity", type=float, default=0.95)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--epochs", type=int, default=140)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--milestones", type=str, default="47,94", help="epochs where lr drops by 10 (the reduced budget: 5,9 over 14 epochs)")
p.add_argument("--authors", action="store_true", help="the SNIP authors' code details (see above)")
a = p.parse_args()
torch.manual_seed(a.seed)
torch.set_num_threads(a.threads)

x, y = mnist_flat("train")
xt, yt = mnist_flat("test")
g = torch.Generator().manual_seed(a.seed)
perm = torch.randperm(x.shape[0], generator=g)
n_val = round(0.11 * x.shape[0])
tr, va = perm[n_val:], perm[:n_val]

TF_TRUNC = 0.87962566103423978  # std of a unit normal truncated at 2 std: TF divides by it


def vs_(t, fan_in):
    std = math.sqrt(1.0 / fan_in) / TF_TRUNC
    nn.init.trunc_normal_(t, 0.0, std, -2 * std, 2 * std)


def make_net(scoring):
    net = nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))
    for m in net:
        if isinstance(m, nn.Linear):
            if a.authors:
                vs_(m.weight, m.in_features)
                if scoring:  # TF's variance scaling on a 1-D bias uses its length as fan_in
                    vs_(m.bias, m.out_features)
                else:
                    nn.init.zeros_(m.bias)
            else:
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)
    return net


def prunable(net):
    layers = [m for m in net if isinstance(m, nn.Linear)]
    return [q for m in layers for q in ([m.weight, m.bias] if a.authors else [m.weight])]


net = make_net(scoring=True)
weights = prunable(net)

# SNIP: |g * w| on one batch of 100 training images, normalized, top (1 - s) kept globally.
idx = tr[torch.randperm(tr.shape[0], generator=g)[:100]]
loss = F.cross_entropy(net(x[idx]), y[idx])
grads = torch.autograd.grad(loss, weights)
scores = [(gr * w).abs().detach() for gr, w in zip(grads, weights)]
total = sum(s.sum() for s in scores)
flat = torch.cat([(s / total).flatten() for s in scores])
k = round((1 - a.sparsity) * flat.numel())
keep = torch.zeros_like(flat)
keep[torch.topk(flat, k).indices] = 1  # exactly k kept, as TF's top_k
masks, o = [], 0
for s in scores:
    masks.append(keep[o:o + s.numel()].view_as(s))
    o += s.numel()
if a.authors:  # the mask goes onto a fresh initialization
    net = make_net(scoring=False)
    weights = prunable(net)
with torch.no_grad():
    for w, m in zip(weights, masks):
        w.mul_(m)

opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
steps_per_epoch = (tr.shape[0] + 99) // 100
sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(v) for v in a.milestones.split(',')], gamma=0.1)


def test_acc():
    net.eval()
    with torch.no_grad():
        r = (net(xt).argmax(1) == yt).float().mean().item()
    net.train()
    return r


total_iters = a.epochs * steps_per_epoch
checkpoints = []  # test accuracy at the authors' last 5 checkpoints (every 1000 iterations)
it = 0
t0 = time.time()
for epoch in range(a.epochs):
    net.train()
    order = tr[torch.randperm(tr.shape[0], generator=g)]
    for i in range(0, order.shape[0], 100):
        b = order[i:i + 100]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x[b]), y[b]).backward()
        for w, m in zip(weights, masks):
            w.grad.mul_(m)
        opt.step()
        with torch.no_grad():
            for w, m in zip(weights, masks):
                w.mul_(m)
        it += 1
        if it % 1000 == 0 and it > total_iters - 5000:
            checkpoints.append(test_acc())
    sched.step()
net.eval()
with torch.no_grad():
    val = (net(x[va]).argmax(1) == y[va]).float().mean().item()
    test = (net(xt).argmax(1) == yt).float().mean().item()
kept = sum(int(m.sum()) for m in masks)
what = "authors' code details" if a.authors else "topiary's recipe"
best5 = f", authors' protocol (best test of the last {len(checkpoints)} checkpoints) {100 * max(checkpoints):.2f}%" if checkpoints else ""
print(f"snip pytorch ({what}) sparsity {a.sparsity} seed {a.seed}: kept {kept}, val {100 * val:.2f}%, test {100 * test:.2f}%{best5} "
      f"({a.epochs} epochs, {it} iterations, {time.time() - t0:.0f} s)")
