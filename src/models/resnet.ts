/**
 * Residual networks: He et al.'s CIFAR ResNets (resnet20/32/56/110: 16-32-64 channels, option-A
 * shortcuts that subsample and zero-pad, so every weight is in a 3x3 conv or the head), and the CIFAR
 * ResNet-18 (3x3 stem, no max pool, basic blocks 64-128-256-512 with 1x1 projection shortcuts).
 */
import { F } from '../tensor/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { kaimingNormal_ } from '../nn/init.js';
import type { ModelSpec } from './types.js';

class BasicBlock extends Module {
  conv1: Conv2d; bn1: BatchNorm2d; conv2: Conv2d; bn2: BatchNorm2d;
  shortcut: Module | null;
  constructor(readonly inC: number, readonly outC: number, readonly stride: number, readonly optionA: boolean) {
    super();
    this.conv1 = this.registerModule('conv1', new Conv2d(inC, outC, 3, { stride, padding: 1, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(outC));
    this.conv2 = this.registerModule('conv2', new Conv2d(outC, outC, 3, { padding: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(outC));
    this.shortcut = null;
    if (!optionA && (stride !== 1 || inC !== outC)) {
      this.shortcut = this.registerModule('shortcut', new Sequential(new Conv2d(inC, outC, 1, { stride, bias: false }), new BatchNorm2d(outC)));
    }
  }
  /** Option A: subsample by the stride and pad the new channels with zeros (no parameters). */
  private identity(x: Tensor): Tensor {
    if (this.stride === 1 && this.inC === this.outC) return x;
    const sub = x.slice(2, 0, null, this.stride).slice(3, 0, null, this.stride); // [B, inC, H/s, W/s]
    const extra = this.outC - this.inC;
    return F.pad(sub, [0, 0, 0, 0, Math.floor(extra / 2), extra - Math.floor(extra / 2)]);
  }
  forward(x: Tensor): Tensor {
    const out = this.bn2.call(this.conv2.call(this.bn1.call(this.conv1.call(x)).relu()));
    const sc = this.shortcut ? this.shortcut.call(x) : this.identity(x);
    return out.add(sc).relu();
  }
}

class ResNet extends Module {
  stem: Sequential; layers: Sequential; head: Sequential;
  constructor(inC: number, widths: number[], blocks: number[], numClasses: number, optionA: boolean) {
    super();
    this.stem = this.registerModule('stem', new Sequential(new Conv2d(inC, widths[0], 3, { padding: 1, bias: false }), new BatchNorm2d(widths[0])));
    this.layers = this.registerModule('layers', new Sequential());
    let c = widths[0];
    widths.forEach((w, stage) => {
      for (let b = 0; b < blocks[stage]; b++) {
        this.layers.append(new BasicBlock(c, w, stage > 0 && b === 0 ? 2 : 1, optionA));
        c = w;
      }
    });
    this.head = this.registerModule('head', new Sequential(new AdaptiveAvgPool2d(1), new Flatten(), new Linear(c, numClasses)));
    // He et al. initialize convolutions with Kaiming normal (fan_out for these CIFAR nets, as torchvision does).
    for (const [, m] of this.namedModules()) if (m instanceof Conv2d) kaimingNormal_(m.weight, 'fan_out', 'relu');
  }
  forward(x: Tensor): Tensor {
    return this.head.call(this.layers.call(this.stem.call(x).relu()));
  }
}

function cifarResnet(depth: number): ModelSpec {
  const n = (depth - 2) / 6;
  return {
    name: `resnet${depth}`,
    description: `ResNet-${depth} (He et al. 2016, CIFAR): 3 stages of ${n} basic blocks, 16-32-64 channels, option-A shortcuts`,
    build: (c) => new ResNet(c.inputShape[0], [16, 32, 64], [n, n, n], c.numClasses, true),
  };
}

export const resnet20 = cifarResnet(20);
export const resnet32 = cifarResnet(32);
export const resnet56 = cifarResnet(56);
export const resnet110 = cifarResnet(110);
export const resnet18: ModelSpec = {
  name: 'resnet18',
  description: 'ResNet-18, CIFAR variant: 3x3 stem, no max pool, [2,2,2,2] basic blocks 64-512, projection shortcuts',
  build: (c) => new ResNet(c.inputShape[0], [64, 128, 256, 512], [2, 2, 2, 2], c.numClasses, false),
};
