/** MNIST as pre-loaded tensors for the raw-tensor benchmarks (the same files the Python side reads). */
import { data, keep, noGrad, tensor, type Tensor } from '../../src/index.js';
import { dataRoot } from './common.js';

/** Normalized float32 images [n, 784] and int64 labels [n]; both kept (the caller disposes). */
export async function mnistFlat(split: 'train' | 'test'): Promise<{ x: Tensor; y: Tensor; n: number }> {
  const raw = await data.loadRaw('mnist', split, { dataDir: dataRoot() });
  const n = raw.n;
  const x = noGrad(() => {
    const u8 = tensor(raw.images, { shape: [n, 784] });
    const f = u8.to('float32').mul_(1 / 255).sub_(0.1307).div_(0.3081);
    u8.dispose();
    return f;
  });
  const y = tensor(BigInt64Array.from(raw.labels, (v) => BigInt(v)), { shape: [n] });
  return { x: keep(x), y: keep(y), n };
}
