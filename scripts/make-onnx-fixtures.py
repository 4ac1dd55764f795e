#!/usr/bin/python3
"""Write test/fixtures/onnx/<name>.onnx and <name>.json: small PyTorch models exported by PyTorch's
own exporter (torch.onnx.export, no onnx package needed), with PyTorch's answers beside them.

Run by hand with Debian's PyTorch (python3-torch 1.13):
    /usr/bin/python3 scripts/make-onnx-fixtures.py
test/graph/onnx-import.test.ts imports every file and replays the answers.

Models: an MLP with LayerNorm and GELU (opset 17: LayerNormalization), a CNN with BatchNorm and
max pooling, a ResNet basic block with a projection shortcut, a depthwise-separable net (ReLU6 as
Clip), a tiny transformer encoder layer (opset 13: its LayerNorm decomposed into ReduceMean,
Sub, Pow, Sqrt, Div; the attention's head split through Shape-derived Reshapes), an
MNIST-shaped CNN for the command-line test, a net with ConvTranspose (strided, output_padding, grouped), and a token
transformer whose input is int64 token ids (nn.Embedding: a Gather on the input; `--only tokens` writes it alone). Exported with
training=PRESERVE from eval mode, so BatchNorm stays a BatchNormalization node (EVAL would fold it
into the conv) and the batch axis is dynamic ('N').

Each JSON holds: the input (shape [B, ...]), the eval-mode output, the train-mode output (batch
statistics in BatchNorm; dropout is 0 everywhere) with the running statistics after that one step
(momentum 0.1), and the gradients of sum(output * w) (eval mode, w fixed) for every parameter whose
ONNX initializer keeps its PyTorch name.

With `--mnist DATA_DIR` it trains the MNIST CNN one epoch on MNIST and writes mnist_trained.onnx/.json
(its test accuracy and predictions in PyTorch). With `--zoo OUT [WIDTH]` it writes zoo-sized networks instead (not committed: ResNet-18 CIFAR, VGG-11
with BatchNorm, a MobileNet-style net, a tiny ViT; WIDTH 64 is the full ResNet-18), with their outputs.
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'onnx')


def flat(t):
    return [float(str(np.float32(v))) for v in t.detach().double().reshape(-1).tolist()]


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.norm = nn.LayerNorm(32)
        self.fc2 = nn.Linear(32, 24)
        self.drop = nn.Dropout(0.0)
        self.head = nn.Linear(24, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = F.gelu(self.norm(self.fc1(x)))
        x = self.drop(torch.tanh(self.fc2(x)))
        return F.log_softmax(self.head(x), dim=1)


class CnnBn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.avg_pool2d(F.leaky_relu(self.bn2(self.conv2(x)), 0.1), 2)
        return self.fc(x.view(x.size(0), -1))


class ResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.short = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        y = F.relu(y + self.short(x))
        return self.fc(torch.flatten(self.pool(y), 1))


class Depthwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 16, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu6(self.bn0(self.stem(x)))
        x = F.relu6(self.bn1(self.dw(x)))
        x = F.relu(self.bn2(self.pw(x)))
        x = x.mean(dim=(2, 3))
        return self.fc(x)


class UpConv(nn.Module):
    """Down by a strided conv, up by two ConvTransposes (stride 2 with output_padding; grouped)."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.up = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(6, 4, 4, stride=(1, 2), padding=(2, 1), groups=2, bias=False)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        x = F.relu(self.up(F.relu(self.bn(self.down(x)))))
        x = self.up2(x)
        return self.fc(x.mean(dim=(2, 3)))


class Transformer(nn.Module):
    """Tokens [N, 6, 16] -> one encoder layer (post-norm, ReLU FFN) -> mean over tokens -> head."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(16, 16)
        self.layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer(self.embed(x))
        return self.head(x.mean(dim=1))


class MnistCnn(nn.Module):
    """For the command-line test: MNIST's examples [1, 28, 28], ten classes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 5)
        self.fc1 = nn.Linear(8 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class TokenTransformer(nn.Module):
    """Token ids [N, 6] (int64) -> nn.Embedding (a Gather on the input) + a learned position table ->
    one encoder layer -> mean over tokens -> head."""

    VOCAB = 20

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(self.VOCAB, 16)
        self.pos = nn.Parameter(torch.randn(1, 6, 16) * 0.1)
        self.layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 10)

    def forward(self, ids):
        x = self.embed(ids) + self.pos
        return self.head(self.layer(x).mean(dim=1))


MODELS = [
    ('mlp', Mlp, [1, 8, 8], 17),
    ('cnn_bn', CnnBn, [3, 16, 16], 13),
    ('resblock', ResBlock, [3, 16, 16], 15),
    ('depthwise', Depthwise, [3, 16, 16], 17),
    ('transformer', Transformer, [6, 16], 13),
    ('mnist_cnn', MnistCnn, [1, 28, 28], 17),
    ('upconv', UpConv, [3, 12, 10], 17),
    ('tokens', TokenTransformer, [6], 17),
]


def main(only=None):
    os.makedirs(OUT, exist_ok=True)
    for name, cls, shape, opset in MODELS:
        if only and name not in only:
            continue
        torch.manual_seed(0)
        m = cls()
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.copy_(torch.randn(mod.num_features) * 0.1)
                    mod.running_var.copy_(torch.rand(mod.num_features) * 0.5 + 0.75)
                    mod.weight.copy_(torch.randn(mod.num_features) * 0.2 + 1)
                    mod.bias.copy_(torch.randn(mod.num_features) * 0.1)
        m.eval()
        tokens = cls is TokenTransformer
        x = torch.randint(0, cls.VOCAB, [3] + shape) if tokens else torch.randn([3] + shape)
        path = os.path.join(OUT, name + '.onnx')
        torch.onnx.export(m, x, path, opset_version=opset, input_names=['input'], output_names=['output'],
                          dynamic_axes={'input': {0: 'N'}, 'output': {0: 'N'}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
        y = m(x)
        w = torch.randn(y.shape)
        m.zero_grad()
        (y * w).sum().backward()
        # A ConvTranspose weight is stored as the equivalent conv's (flipped, transposed): its gradient has another layout.
        grads = {k: flat(p.grad) for k, p in m.named_parameters() if p.grad is not None and not k.startswith('up')}
        # train mode: batch statistics, running statistics updated once
        m.train()
        with torch.no_grad():
            yt = m(x)
        running = {k: flat(b) for k, b in m.named_buffers() if 'running' in k}
        case = {
            'name': name, 'opset': opset, 'inputShape': shape,
            'input': {'shape': list(x.shape), 'data': x.reshape(-1).tolist() if tokens else flat(x), 'dtype': str(x.dtype).replace('torch.', '')},
            'output': {'shape': list(y.shape), 'data': flat(y)},
            'trainOutput': {'shape': list(yt.shape), 'data': flat(yt)},
            'runningAfterTrainStep': running,
            'lossWeight': flat(w),
            'grads': grads,
        }
        with open(os.path.join(OUT, name + '.json'), 'w') as f:
            json.dump(case, f)
        print(name, os.path.getsize(path), 'bytes')




# ---- zoo-sized networks, written on demand (not committed): --zoo OUT [--width W] -----------------
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet18(nn.Module):
    """The CIFAR variant (3x3 stem, no max pool), widths w, 2w, 4w, 8w."""

    def __init__(self, w=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        layers, cin = [], w
        for i, (c, s) in enumerate([(w, 1), (2 * w, 2), (4 * w, 2), (8 * w, 2)]):
            layers.append(nn.Sequential(BasicBlock(cin, c, s), BasicBlock(c, c, 1)))
            cin = c
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(8 * w, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def vgg11(w=64):
    cfg = [w, 'M', 2 * w, 'M', 4 * w, 4 * w, 'M', 8 * w, 8 * w, 'M', 8 * w, 8 * w, 'M']
    layers, cin = [], 3
    for v in cfg:
        if v == 'M':
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(cin, 10))


class MobileNetish(nn.Module):
    def __init__(self, w=32):
        super().__init__()
        def dw(cin, cout, s):
            return nn.Sequential(nn.Conv2d(cin, cin, 3, s, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(),
                                 nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6())
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU6())
        self.blocks = nn.Sequential(dw(w, 2 * w, 1), dw(2 * w, 4 * w, 2), dw(4 * w, 4 * w, 1), dw(4 * w, 8 * w, 2))
        self.head = nn.Linear(8 * w, 10)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class TinyViT(nn.Module):
    def __init__(self, w=64, patch=4, depth=2, heads=4):
        super().__init__()
        self.embed = nn.Conv2d(3, w, patch, patch)
        n = (32 // patch) ** 2
        self.cls = nn.Parameter(torch.randn(1, 1, w) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n + 1, w) * 0.02)
        layer = nn.TransformerEncoderLayer(w, heads, 2 * w, dropout=0.0, activation='gelu', batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, 10)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.encoder(x))[:, 0])


def zoo(out, width):
    os.makedirs(out, exist_ok=True)
    nets = [('resnet18', lambda: ResNet18(width)), ('vgg11_bn', lambda: vgg11(width)), ('mobilenet', lambda: MobileNetish(max(width // 2, 4))),
            ('vit_tiny', lambda: TinyViT(width))]
    for name, make in nets:
        torch.manual_seed(1)
        m = make()
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.copy_(torch.randn(mod.num_features) * 0.1)
                    mod.running_var.copy_(torch.rand(mod.num_features) * 0.5 + 0.75)
        m.eval()
        x = torch.randn(2, 3, 32, 32)
        path = os.path.join(out, name + '.onnx')
        torch.onnx.export(m, x, path, opset_version=17, input_names=['input'], output_names=['output'],
                          dynamic_axes={'input': {0: 'N'}, 'output': {0: 'N'}}, training=torch.onnx.TrainingMode.PRESERVE)
        with torch.no_grad():
            y = m(x)
        with open(os.path.join(out, name + '.json'), 'w') as f:
            json.dump({'input': {'shape': list(x.shape), 'data': flat(x)}, 'output': {'shape': list(y.shape), 'data': flat(y)},
                       'params': sum(p.numel() for p in m.parameters())}, f)
        print(name, os.path.getsize(path), 'bytes')


def read_idx(path):
    import gzip
    import struct
    with gzip.open(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).copy()).reshape(dims)


def mnist(data_dir):
    """test/fixtures/onnx/mnist_trained.onnx: MnistCnn trained one epoch on MNIST (SGD, batch 64), with its
    test accuracy in PyTorch, normalized as topiary does ((x/255 - 0.1307) / 0.3081)."""
    torch.manual_seed(0)
    def load(split):
        x = read_idx(os.path.join(data_dir, f'{split}-images-idx3-ubyte.gz')).float().div(255).sub(0.1307).div(0.3081).unsqueeze(1)
        return x, read_idx(os.path.join(data_dir, f'{split}-labels-idx1-ubyte.gz')).long()
    xtr, ytr = load('train')
    xte, yte = load('t10k')
    m = MnistCnn()
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    m.train()
    perm = torch.randperm(len(xtr))
    for i in range(0, len(xtr), 64):
        idx = perm[i:i + 64]
        opt.zero_grad()
        F.cross_entropy(m(xtr[idx]), ytr[idx]).backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        pred = torch.cat([m(xte[i:i + 1000]).argmax(1) for i in range(0, len(xte), 1000)])
    acc = float((pred == yte).float().mean()) * 100
    path = os.path.join(OUT, 'mnist_trained.onnx')
    torch.onnx.export(m, xte[:2], path, opset_version=17, input_names=['input'], output_names=['output'],
                      dynamic_axes={'input': {0: 'N'}, 'output': {0: 'N'}}, training=torch.onnx.TrainingMode.PRESERVE)
    with open(os.path.join(OUT, 'mnist_trained.json'), 'w') as f:
        json.dump({'testAccuracy': acc, 'predictions': pred.tolist()}, f)
    print('mnist_trained', os.path.getsize(path), 'bytes, test accuracy', acc)


if __name__ == '__main__':
    import sys
    if len(sys.argv) > 2 and sys.argv[1] == '--zoo':
        zoo(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 64)
    elif len(sys.argv) > 2 and sys.argv[1] == '--mnist':
        mnist(sys.argv[2])
    elif len(sys.argv) > 2 and sys.argv[1] == '--only':
        main(sys.argv[2].split(','))
    else:
        main()
