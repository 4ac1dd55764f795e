"""LeNet-300-100 / an MLP trained the way a PyTorch user writes it (issue 15, section 4).

nn.Sequential of nn.Linear (PyTorch's default init), torch.optim.SGD, CosineAnnealingLR stepped once
per epoch, F.cross_entropy (mean), batches indexed from the whole training set (no validation split),
x / 255 then (x - mean) / std. Run with Debian's PyTorch (/usr/bin/python3).

Two modes:
  free      its own init (torch.manual_seed(seed)) and shuffling (torch.randperm per epoch); prints
            one JSON line with the test accuracy. The PyTorch side of the distribution check.
              /usr/bin/python3 bench/torch/mlp_recipe.py free --dataset fashion_mnist --seed 0
  lockstep  DIR holds init.safetensors (the initial weights, topiary's names), order.bin (int32,
            epoch after epoch, the sample order) and config.json; trains config.steps steps from
            those and writes DIR/torch.json (the loss of every step, the lr of every epoch) and
            DIR/torch_final.safetensors, and how far init.safetensors is from PyTorch's own init
            for the seed (topiary draws it from the same generator in the same order: 0).
            bench/crosscheck/lockstep.ts and
            test/train/torch-lockstep.test.ts drive it.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idx_data import DATASETS, idx_flat, idx_uint8  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (k, v["dtype"])
        a, b = v["data_offsets"]
        arr = np.frombuffer(buf[8 + n + a:8 + n + b], dtype="<f4").reshape(v["shape"])
        out[k] = torch.from_numpy(arr.copy())
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        b = t.detach().contiguous().float().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_net(widths, n_in=784, n_out=10):
    layers, prev = [nn.Flatten()], n_in
    for w in widths:
        layers += [nn.Linear(prev, w), nn.ReLU()]
        prev = w
    layers.append(nn.Linear(prev, n_out))
    return nn.Sequential(*layers)  # parameter names 1.weight, 3.weight, ... as topiary's


def train(net, x, y, cfg, order_of_epoch, max_steps=None, on_step=None, n=None):
    opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weightDecay"], nesterov=cfg.get("nesterov", False))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    bs, step, lrs = cfg["batchSize"], 0, []
    n = x.shape[0] if n is None else n
    for epoch in range(cfg["epochs"]):
        lrs.append(opt.param_groups[0]["lr"])
        order = order_of_epoch(epoch)
        net.train()
        for i in range(0, n, bs):
            if max_steps is not None and step >= max_steps:
                return lrs
            idx = order[i:i + bs]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if on_step:
                on_step(step, loss.item())
            step += 1
        sched.step()
    return lrs


def accuracy(net, x, y):
    net.eval()
    with torch.no_grad():
        return (net(x).argmax(1) == y).float().mean().item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["free", "lockstep"])
    p.add_argument("dir", nargs="?")
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--widths", default="300,100")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mean", type=float, default=None, help="input normalization (default: topiary's constants for the dataset)")
    p.add_argument("--std", type=float, default=None)
    p.add_argument("--init-seed", type=int, default=None, help="free: seed the init with this, then the shuffling with --seed")
    p.add_argument("--order-file", default=None, help="free: int32 sample orders, epoch after epoch (topiary's, say), instead of randperm")
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    if a.mode == "free":
        cfg = {"lr": a.lr, "momentum": a.momentum, "weightDecay": a.weight_decay, "epochs": a.epochs, "batchSize": a.batch_size}
        torch.manual_seed(a.seed if a.init_seed is None else a.init_seed)
        net = make_net([int(w) for w in a.widths.split(",")])
        if a.init_seed is not None:
            torch.manual_seed(a.seed)
        x, y = idx_flat(a.dataset, "train", a.mean, a.std)
        xt, yt = idx_flat(a.dataset, "test", a.mean, a.std)
        if a.order_file:
            n = x.shape[0]
            order = torch.from_numpy(np.fromfile(a.order_file, dtype="<i4").astype(np.int64))
            train(net, x, y, cfg, lambda e: order[e * n:(e + 1) * n])
        else:
            train(net, x, y, cfg, lambda e: torch.randperm(x.shape[0]))
        print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "dataset": a.dataset, "seed": a.seed,
                          **cfg, "mean": a.mean, "std": a.std, "initSeed": a.init_seed, "orderFile": a.order_file, "testAccuracy": accuracy(net, xt, yt)}))
        return

    d = a.dir
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    init = read_safetensors(os.path.join(d, "init.safetensors"))
    # PyTorch's own init for the seed: topiary draws it from the same generator in the same order.
    torch.manual_seed(cfg["seed"])
    own = make_net(cfg["widths"]).state_dict()
    net = make_net(cfg["widths"])
    prefix = "layers." if all(k.startswith("layers.") for k in init) else ""
    net.load_state_dict({k[len(prefix):]: v for k, v in init.items()})
    init_diff = max((own[k[len(prefix):]] - v).abs().max().item() for k, v in init.items())
    if cfg.get("topiaryNormalization"):
        # topiary's loader: x * float32(1 / (255 std)) - float32(mean / std), the same values as
        # (x / 255 - mean) / std to a rounding; this form makes the inputs bit-equal.
        _, mean, std = DATASETS[cfg["dataset"]]
        xu, y = idx_uint8(cfg["dataset"], "train")
        scale, shift = np.float32(1 / (255 * std)), np.float32(mean / std)
        x = xu.view(xu.shape[0], 784).float().mul_(float(scale)).sub_(float(shift))
    else:
        x, y = idx_flat(cfg["dataset"], "train")
    n = cfg["samplesPerEpoch"]  # a subset's indices into the whole training set, or all of it
    order = torch.from_numpy(np.fromfile(os.path.join(d, "order.bin"), dtype="<i4").astype(np.int64))
    assert order.numel() % n == 0, "order.bin: not whole epochs"
    losses = []
    lrs = train(net, x, y, cfg, lambda e: order[e * n:(e + 1) * n], cfg["steps"], lambda s, l: losses.append(l), n)
    write_safetensors(os.path.join(d, "torch_final.safetensors"), {prefix + k: v for k, v in net.state_dict().items()})
    test_acc = accuracy(net, *idx_flat(cfg["dataset"], "test")) if cfg.get("test") else None
    with open(os.path.join(d, "torch.json"), "w") as f:
        json.dump({"torch": torch.__version__, "losses": losses, "lrs": lrs, "initDiff": init_diff, "testAccuracy": test_acc}, f)


if __name__ == "__main__":
    main()
