"""PyTorch side of bench/mlp-phases.ts: CPU ms per phase of one MLP training step, and the GEMMs alone."""
import json
import time

import torch
import torch.nn.functional as F

from mnist_data import mnist_flat

BATCH, STEPS = 128, 300


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = mnist_flat("train")
    n = x.shape[0]
    sizes = [784, 512, 256, 10]
    params = []
    for i in range(3):
        params += [torch.rand(sizes[i + 1], sizes[i]).mul_(0.05).requires_grad_(True),
                   torch.rand(sizes[i + 1]).mul_(0.05).requires_grad_(True)]
    w1, b1, w2, b2, w3, b3 = params
    opt = torch.optim.SGD(params, lr=0.05)
    perm = torch.randperm(n)
    phase = dict(index=0.0, forward=0.0, backward=0.0, optimizer=0.0, scope=0.0)
    for s in range(-10, STEPS):
        c = time.process_time()

        def lap(k):
            nonlocal c
            now = time.process_time()
            if s >= 0:
                phase[k] += now - c
            c = now

        start = ((s + 10) * BATCH) % (n - BATCH)
        idx = perm[start:start + BATCH]
        xb, yb = x[idx], y[idx]
        lap("index")
        loss = F.cross_entropy(F.linear(F.relu(F.linear(F.relu(F.linear(xb, w1, b1)), w2, b2)), w3, b3), yb)
        lap("forward")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        lap("backward")
        opt.step()
        lap("optimizer")
        del loss, xb, yb, idx
        lap("scope")

    with torch.no_grad():
        xb = x[:BATCH]
        h1, h2, g3, g2, g1 = (torch.rand(BATCH, 512), torch.rand(BATCH, 256), torch.rand(BATCH, 10),
                              torch.rand(BATCH, 256), torch.rand(BATCH, 512))
        W1, W2, W3 = w1.detach(), w2.detach(), w3.detach()

        def once():
            xb.matmul(W1.T); h1.matmul(W2.T); h2.matmul(W3.T)
            g3.T.matmul(h2); g2.T.matmul(h1); g1.T.matmul(xb)
            g3.matmul(W3); g2.matmul(W2)

        for _ in range(10):
            once()
        c0 = time.process_time()
        for _ in range(STEPS):
            once()
        gemm = time.process_time() - c0

    def ms(v):
        return v * 1000 / STEPS

    print(json.dumps({
        "engine": "pytorch", "indexMs": ms(phase["index"]), "forwardMs": ms(phase["forward"]),
        "backwardMs": ms(phase["backward"]), "optimizerMs": ms(phase["optimizer"]), "scopeMs": ms(phase["scope"]),
        "gemmMs": ms(gemm), "stepMs": ms(sum(phase.values())),
    }))


if __name__ == "__main__":
    main()
