"""PyTorch side of bench/vit-step.ts, one thread: training steps of vit_tiny (src/models/vit.ts) on one
random 128x1x28x28 batch, SGD lr 0.05 momentum 0.9 weight decay 5e-4, train mode.

The same network: a 7x7 stride-7 patch embedding (16 patches of width 64), a class token, learned
positions, 4 pre-norm encoder blocks (nn.TransformerEncoderLayer, norm_first, batch_first, 4 heads,
MLP 128, exact GELU, no dropout), a final LayerNorm and a linear head on the class token.
Prints one JSON line.
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH, WARMUP, STEPS = 128, 2, 8


class Vit(nn.Module):
    def __init__(self, dim=64, depth=4, heads=4, mlp=128, patch=7, num_classes=10):
        super().__init__()
        self.patch = nn.Conv2d(1, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, (28 // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[nn.TransformerEncoderLayer(dim, heads, mlp, dropout=0.0, activation="gelu",
                                                                 batch_first=True, norm_first=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)  # [B, N, D]
        h = torch.cat([self.cls.expand(t.shape[0], 1, -1), t], 1) + self.pos
        h = self.norm(self.blocks(h))
        return self.head(h[:, 0])


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Vit()
    model.train()
    x, y = torch.randn(BATCH, 1, 28, 28), torch.randint(0, 10, (BATCH,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(WARMUP):
        step()
    wall, cpu = [], []
    for _ in range(STEPS):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    r = {"part": "vit", "stepSeconds": statistics.median(wall), "stepCpuSeconds": statistics.median(cpu),
         "params": sum(p.numel() for p in model.parameters())}
    print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(), **r}))


if __name__ == "__main__":
    sys.exit(main())
