"""Diagnostic (PyTorch only): how much the memory layout of convolutions costs on this CPU.

One training step (SGD momentum 0.9, batch 128, one thread) of LeNet-5 and ResNet-20 in PyTorch's
default NCHW layout, with oneDNN (mkldnn) disabled, and in channels-last layout. The kernels are the
ones topiary's addon calls, so this bounds what a layout choice in topiary could change.
Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch/conv_layout.py
"""
import json
import time

import torch
import torch.nn.functional as F

from lenet5_epoch import ResNet, lenet5


def step_ms(model, x, y, steps, channels_last=False):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    ts = []
    for _ in range(steps):
        c = time.process_time()
        step()
        ts.append(time.process_time() - c)
    return sorted(ts)[len(ts) // 2] * 1000


def main():
    torch.set_num_threads(1)
    out = {"unit": "median CPU ms per training step"}
    for name, make, shape, steps in [("lenet5", lenet5, (1, 28, 28), 30), ("resnet20", ResNet, (3, 32, 32), 6)]:
        x, y = torch.randn(128, *shape), torch.randint(0, 10, (128,))
        r = {}
        for label, mkl, cl in [("nchw", True, False), ("nchw_no_mkldnn", False, False), ("channels_last", True, True)]:
            torch.backends.mkldnn.enabled = mkl
            torch.manual_seed(0)
            r[label] = step_ms(make(), x, y, steps, cl)
        torch.backends.mkldnn.enabled = True
        out[name] = r
    print(json.dumps(out))


if __name__ == "__main__":
    main()
