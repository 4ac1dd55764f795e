"""SNIP on LeNet-300-100 / MNIST in PyTorch, with the training of recipes/pmp-snip-lenet300.yaml.

An independent cross-check of topiary's SNIP baseline (docs/results/pmp.md): the same data files,
split size, initialization, scoring batch, optimizer and schedule, written directly in PyTorch.
Run with Debian's PyTorch:  /usr/bin/python3 bench/crosscheck/snip_lenet300.py --sparsity 0.95 --seed 0
"""
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
a = p.parse_args()
torch.manual_seed(a.seed)
torch.set_num_threads(a.threads)

x, y = mnist_flat("train")
xt, yt = mnist_flat("test")
g = torch.Generator().manual_seed(a.seed)
perm = torch.randperm(x.shape[0], generator=g)
n_val = round(0.11 * x.shape[0])
tr, va = perm[n_val:], perm[:n_val]

net = nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))
for m in net:
    if isinstance(m, nn.Linear):
        nn.init.xavier_normal_(m.weight)
        nn.init.zeros_(m.bias)
weights = [m.weight for m in net if isinstance(m, nn.Linear)]

# SNIP: |g * w| on one batch of 100 training images, normalized, top (1 - s) kept globally.
idx = tr[torch.randperm(tr.shape[0], generator=g)[:100]]
loss = F.cross_entropy(net(x[idx]), y[idx])
grads = torch.autograd.grad(loss, weights)
scores = [(gr * w).abs().detach() for gr, w in zip(grads, weights)]
total = sum(s.sum() for s in scores)
flat = torch.cat([(s / total).flatten() for s in scores])
k = round((1 - a.sparsity) * flat.numel())
thr = torch.topk(flat, k).values[-1]
masks = [((s / total) >= thr).float() for s in scores]
with torch.no_grad():
    for w, m in zip(weights, masks):
        w.mul_(m)

opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
steps_per_epoch = (tr.shape[0] + 99) // 100
sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(v) for v in a.milestones.split(',')], gamma=0.1)
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
    sched.step()
net.eval()
with torch.no_grad():
    val = (net(x[va]).argmax(1) == y[va]).float().mean().item()
    test = (net(xt).argmax(1) == yt).float().mean().item()
kept = sum(int(m.sum()) for m in masks)
print(f"snip pytorch sparsity {a.sparsity} seed {a.seed}: kept {kept} weights, val {100 * val:.2f}%, test {100 * test:.2f}% "
      f"({a.epochs} epochs, {time.time() - t0:.0f} s)")
