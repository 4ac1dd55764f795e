"""MNIST from the same IDX gz files topiary reads, as tensors (gzip + numpy, no torchvision)."""
import gzip
import os

import numpy as np
import torch


def data_root():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("TOPIARY_DATA") or os.path.normpath(os.path.join(here, "../../../shared/datasets"))


def _read(name, offset):
    path = os.path.join(data_root(), "mnist", name)
    if not os.path.exists(path) and os.path.exists(path[:-3]):
        with open(path[:-3], "rb") as f:
            return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def mnist_uint8(split):
    """uint8 images [n, 1, 28, 28] and int64 labels [n]."""
    prefix = "train" if split == "train" else "t10k"
    images = _read(f"{prefix}-images-idx3-ubyte.gz", 16)
    labels = _read(f"{prefix}-labels-idx1-ubyte.gz", 8)
    n = labels.shape[0]
    x = torch.from_numpy(images.copy()).view(n, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def mnist_flat(split):
    """Normalized float32 images [n, 784] and int64 labels [n]."""
    x, y = mnist_uint8(split)
    x = x.view(x.shape[0], 784).float().mul_(1 / 255).sub_(0.1307).div_(0.3081)
    return x, y
