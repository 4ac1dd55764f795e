/** Convolutional networks: LeNet-5 (Caffe), the SNIP VGG-like, VGG-19 with BatchNorm. */
import { BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import type { ModelSpec } from './types.js';

/** Caffe's LeNet-5: conv 20 (5x5), pool, conv 50 (5x5), pool, fc 500, fc 10. 431,080 parameters on MNIST. */
export const lenet5: ModelSpec = {
  name: 'lenet5',
  description: 'LeNet-5, Caffe variant: conv20-pool-conv50-pool-fc500-fc10',
  build: ({ inputShape: [c, h, w], numClasses }) => {
    const oh = Math.floor((Math.floor((h - 4) / 2) - 4) / 2), ow = Math.floor((Math.floor((w - 4) / 2) - 4) / 2);
    return new Sequential(
      new Conv2d(c, 20, 5), new MaxPool2d(2),
      new Conv2d(20, 50, 5), new MaxPool2d(2),
      new Flatten(), new Linear(50 * oh * ow, 500), new ReLU(), new Linear(500, numClasses),
    );
  },
};

type Cfg = (number | 'M')[];
function vggFeatures(cfg: Cfg, inC: number): Module[] {
  const layers: Module[] = [];
  let c = inC;
  for (const v of cfg) {
    if (v === 'M') layers.push(new MaxPool2d(2));
    else {
      layers.push(new Conv2d(c, v, 3, { padding: 1 }), new BatchNorm2d(v), new ReLU());
      c = v;
    }
  }
  return layers;
}
const VGG16: Cfg = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];
const VGG19: Cfg = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'];
const spatialAfter = (h: number, cfg: Cfg) => cfg.reduce<number>((s, v) => (v === 'M' ? Math.floor(s / 2) : s), h);

/** SNIP's VGG-like (Zagoruyko's CIFAR VGG-16 with BatchNorm): 13 conv layers, then fc 512, fc classes. */
export const vggLike: ModelSpec = {
  name: 'vgg_like',
  description: 'VGG-like (SNIP, CIFAR-10): VGG-16 convs with BatchNorm, fc 512 + BN, fc classes',
  build: ({ inputShape: [c, h, w], numClasses }) => {
    const s = spatialAfter(Math.min(h, w), VGG16);
    return new Sequential(...vggFeatures(VGG16, c), new Flatten(),
      new Linear(512 * s * s, 512), new BatchNorm1d(512), new ReLU(), new Dropout(0.5), new Linear(512, numClasses));
  },
};

/** VGG-19 with BatchNorm for CIFAR (as in GraSP's and PMP's code): 16 conv layers, one fc head. */
export const vgg19: ModelSpec = {
  name: 'vgg19',
  description: 'VGG-19 with BatchNorm, CIFAR variant (16 convs, fc head)',
  build: ({ inputShape: [c, h, w], numClasses }) => {
    const s = spatialAfter(Math.min(h, w), VGG19);
    return new Sequential(...vggFeatures(VGG19, c), new Flatten(), new Linear(512 * s * s, numClasses));
  },
};
