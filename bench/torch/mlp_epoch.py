"""PyTorch side of bench/mlp-epoch.ts: the same MLP epoch and small-op loop, one thread.

Idiomatic PyTorch: batches indexed from a pre-loaded tensor with a randperm (no DataLoader and its
per-sample overhead), torch.optim.SGD, zero_grad(set_to_none=True) as topiary's zeroGrad does.
Prints one JSON line.
"""
import json
import math
import time

import torch
import torch.nn.functional as F

from mnist_data import mnist_flat

BATCH, LR, WARMUP_STEPS = 128, 0.05, 5
SMALL_OPS, SMALL_TRIALS, FORWARDS = 100_000, 5, 1000


def uniform_param(shape, fan_in):
    b = 1 / math.sqrt(fan_in)
    with torch.no_grad():
        t = torch.rand(shape).mul_(2 * b).sub_(b)
    return t.requires_grad_(True)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = mnist_flat("train")
    tx, ty = mnist_flat("test")
    n = x.shape[0]
    sizes = [784, 512, 256, 10]
    params = []
    for i in range(3):
        params += [uniform_param((sizes[i + 1], sizes[i]), sizes[i]), uniform_param((sizes[i + 1],), sizes[i])]
    w1, b1, w2, b2, w3, b3 = params

    def forward(xb):
        return F.linear(F.relu(F.linear(F.relu(F.linear(xb, w1, b1)), w2, b2)), w3, b3)

    opt = torch.optim.SGD(params, lr=LR)

    def step(xb, yb):
        loss = F.cross_entropy(forward(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(WARMUP_STEPS):
        step(x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH])

    c0, t0 = time.process_time(), time.perf_counter()
    perm = torch.randperm(n)
    for i in range(0, n, BATCH):
        idx = perm[i:i + BATCH]
        step(x[idx], y[idx])
    epoch_seconds = time.perf_counter() - t0
    epoch_cpu_seconds = time.process_time() - c0

    with torch.no_grad():
        acc = (forward(tx).argmax(1) == ty).float().mean().item()
        train_loss = F.cross_entropy(forward(x), y).item()
        xb = x[:BATCH]
        forward(xb)
        t1 = time.process_time()
        for _ in range(FORWARDS):
            forward(xb)
        forward_ms = (time.process_time() - t1) * 1000 / FORWARDS

    a, b = torch.rand(10), torch.rand(10)
    per_op = []
    for _ in range(SMALL_TRIALS):
        s0 = time.process_time()
        for _ in range(SMALL_OPS):
            a + b
        per_op.append((time.process_time() - s0) * 1e6 / SMALL_OPS)
    print(json.dumps({
        "engine": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(), "epochSeconds": epoch_seconds, "epochCpuSeconds": epoch_cpu_seconds, "testAccuracy": acc,
        "trainLoss": train_loss, "forwardMs": forward_ms, "smallOpUs": min(per_op),
        "smallOpUsMedian": sorted(per_op)[len(per_op) // 2],
    }))


if __name__ == "__main__":
    main()
