"""PyTorch side of bench/lenet5-epoch.ts, one thread. Usage: lenet5_epoch.py lenet5|resnet20

lenet5: one MNIST epoch of Caffe's LeNet-5 with the minimal loop equivalent to topiary's DataLoader +
train(): a randperm over a pre-loaded uint8 tensor, per batch index, convert to float, normalize in
place, forward, cross-entropy, zero_grad, backward, SGD step, and the loop's per-batch loss.item()
and accuracy read.
resnet20: training steps of He et al.'s CIFAR ResNet-20 (option-A shortcuts) on one random
128x3x32x32 batch. Prints one JSON line.
"""
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from mnist_data import mnist_uint8

BATCH, WARMUP_STEPS, RESNET_WARMUP, RESNET_STEPS = 128, 3, 2, 6
MEAN, STD = 0.1307, 0.3081


def lenet5():
    # Caffe's LeNet-5 as in src/models/conv.ts: no activation after the convolutions.
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


class BasicBlock(nn.Module):
    def __init__(self, in_c, out_c, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, out_c, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_c)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_c)
        self.in_c, self.out_c, self.stride = in_c, out_c, stride

    def shortcut(self, x):
        # Option A: subsample by the stride, zero-pad the new channels.
        if self.stride == 1 and self.in_c == self.out_c:
            return x
        sub = x[:, :, ::self.stride, ::self.stride]
        extra = self.out_c - self.in_c
        return F.pad(sub, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, in_c=3, widths=(16, 32, 64), blocks=(3, 3, 3), num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_c, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]))
        layers, c = [], widths[0]
        for stage, w in enumerate(widths):
            for b in range(blocks[stage]):
                layers.append(BasicBlock(c, w, 2 if stage > 0 and b == 0 else 1))
                c = w
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.head(self.layers(F.relu(self.stem(x))))


def run_lenet5():
    images, labels = mnist_uint8("train")
    timages, tlabels = mnist_uint8("test")
    n = labels.shape[0]
    model = lenet5()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader_s = 0.0

    def batch(idx):
        nonlocal loader_s
        t = time.perf_counter()
        x = images[idx].float().mul_(1 / (255 * STD)).sub_(MEAN / STD)
        y = labels[idx]
        loader_s += time.perf_counter() - t
        return x, y

    def step(x, y):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return logits, loss

    for i in range(WARMUP_STEPS):
        step(*batch(torch.arange(i * BATCH, (i + 1) * BATCH)))
    loader_s = 0.0
    model.train()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    c0, t0 = time.process_time(), time.perf_counter()
    t = time.perf_counter()
    perm = torch.randperm(n)
    loader_s += time.perf_counter() - t
    loss_sum, correct, seen = 0.0, 0, 0
    for i in range(0, n, BATCH):
        x, y = batch(perm[i:i + BATCH])
        logits, loss = step(x, y)
        b = y.shape[0]
        loss_sum += loss.item() * b
        correct += (logits.argmax(1) == y).sum().item()
        seen += b
    epoch_s, epoch_cpu = time.perf_counter() - t0, time.process_time() - c0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    model.eval()
    with torch.no_grad():
        tx = timages.float().mul_(1 / (255 * STD)).sub_(MEAN / STD)
        acc = (model(tx).argmax(1) == tlabels).float().mean().item()
    return {"part": "lenet5", "epochSeconds": epoch_s, "epochCpuSeconds": epoch_cpu, "loaderMs": loader_s * 1000,
            "loaderShare": loader_s / epoch_s, "trainLoss": loss_sum / seen, "trainAccuracy": correct / seen,
            "testAccuracy": acc, "epochSysSeconds": r1.ru_stime - r0.ru_stime, "pageFaults": r1.ru_minflt - r0.ru_minflt}


def run_resnet20():
    model = ResNet()
    model.train()
    x, y = torch.randn(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(RESNET_WARMUP):
        step()
    wall, cpu, sys_s, faults = [], [], [], []
    for _ in range(RESNET_STEPS):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        c0, t0 = time.process_time(), time.perf_counter()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        sys_s.append(r1.ru_stime - r0.ru_stime)
        faults.append(r1.ru_minflt - r0.ru_minflt)
    return {"part": "resnet20", "stepSeconds": statistics.median(wall), "stepCpuSeconds": statistics.median(cpu),
            "params": sum(p.numel() for p in model.parameters()),
            "stepSysSeconds": statistics.median(sys_s), "stepPageFaults": statistics.median(faults)}


def main():
    part = sys.argv[1] if len(sys.argv) > 1 else "lenet5"
    torch.set_num_threads(1)
    torch.manual_seed(0)
    r = run_resnet20() if part == "resnet20" else run_lenet5()
    print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(), **r}))


if __name__ == "__main__":
    main()
