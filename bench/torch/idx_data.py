"""MNIST and Fashion-MNIST from the same IDX gz files topiary reads (gzip + numpy, no torchvision)."""
import gzip
import os

import numpy as np
import torch

# The folder under $TOPIARY_DATA and topiary's normalization constants (src/data/sources.ts).
DATASETS = {
    "mnist": ("mnist", 0.1307, 0.3081),
    "fashion_mnist": ("fashion-mnist", 0.286, 0.353),
}


def data_root():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("TOPIARY_DATA") or os.path.normpath(os.path.join(here, "../../../shared/datasets"))


def _read(folder, name, offset):
    path = os.path.join(data_root(), folder, name)
    if not os.path.exists(path) and os.path.exists(path[:-3]):
        with open(path[:-3], "rb") as f:
            return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def idx_uint8(dataset, split):
    """uint8 images [n, 1, 28, 28] and int64 labels [n]."""
    folder = DATASETS[dataset][0]
    prefix = "train" if split == "train" else "t10k"
    images = _read(folder, f"{prefix}-images-idx3-ubyte.gz", 16)
    labels = _read(folder, f"{prefix}-labels-idx1-ubyte.gz", 8)
    n = labels.shape[0]
    x = torch.from_numpy(images.copy()).view(n, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def idx_flat(dataset, split, mean=None, std=None):
    """float32 images [n, 784], x / 255 then (x - mean) / std as torchvision's ToTensor + Normalize do."""
    _, m, s = DATASETS[dataset]
    x, y = idx_uint8(dataset, split)
    x = x.view(x.shape[0], 784).float().div_(255).sub_(m if mean is None else mean).div_(s if std is None else std)
    return x, y
