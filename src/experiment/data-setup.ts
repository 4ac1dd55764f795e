/** From a configuration to loaders: seeded train/validation split, augmentation, test set. */
import { DataLoader, horizontalFlip, loadDataset, randomAffine, randomCrop, splitTrainVal, type TensorDataset } from '../data/index.js';
import type { Augmentation } from '../data/augment.js';
import { ConfigError, DatasetError } from '../core/errors.js';
import type { DataLike } from '../prune/methods/types.js';

export interface DataConfig {
  dataset: string;
  batchSize: number;
  valFraction: number;
  subset?: number;
  seed: number;
  device?: string;
  augment: { rotation: number; translation: number; cropPadding: number; flip: boolean; interpolation?: 'bilinear' | 'nearest' };
}

/** The loaders (DataLike, which pruning methods see; its valLoader is null when valFraction is 0) plus the datasets. */
export interface DataBundle extends DataLike {
  train: TensorDataset;
  test: TensorDataset;
}

export async function setupData(c: DataConfig, opts: { dataDir?: string; evalBatchSize?: number } = {}): Promise<DataBundle> {
  let train: TensorDataset, test: TensorDataset;
  try {
    train = await loadDataset(c.dataset, { split: 'train', dataDir: opts.dataDir, subset: c.subset, seed: c.seed });
    test = await loadDataset(c.dataset, { split: 'test', dataDir: opts.dataDir });
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    throw new DatasetError(`dataset '${c.dataset}' could not be loaded: ${(e as Error).message}`, undefined, { cause: e });
  }
  const augs: Augmentation<any>[] = [];
  if (c.augment.cropPadding > 0) augs.push(randomCrop({ padding: c.augment.cropPadding }));
  if (c.augment.flip) augs.push(horizontalFlip());
  if (c.augment.rotation > 0 || c.augment.translation > 0) augs.push(randomAffine({ degrees: c.augment.rotation, translate: c.augment.translation, mode: c.augment.interpolation }));
  const evalBs = opts.evalBatchSize ?? 1000;
  let trainLoader: DataLoader, valLoader: DataLoader | null = null;
  if (c.valFraction > 0) {
    const { train: tv, val } = splitTrainVal(train, c.valFraction, c.seed);
    const empty = val.indices.length === 0 ? 'validation' : tv.indices.length === 0 ? 'training' : null;
    if (empty) {
      train.dispose();
      test.dispose();
      throw new ConfigError(`valFraction: ${c.valFraction} of ${train.length} training examples leaves an empty ${empty} split; ` +
        `use a larger subset${empty === 'validation' ? ' or valFraction 0 (no validation)' : ' or a smaller valFraction'}`, [{ path: 'valFraction', message: `empty ${empty} split` }]);
    }
    trainLoader = new DataLoader(tv, { batchSize: c.batchSize, shuffle: true, seed: c.seed, augment: augs, device: c.device });
    valLoader = new DataLoader(val, { batchSize: evalBs, device: c.device });
  } else {
    trainLoader = new DataLoader(train, { batchSize: c.batchSize, shuffle: true, seed: c.seed, augment: augs, device: c.device });
  }
  const testLoader = new DataLoader(test, { batchSize: evalBs, device: c.device });
  return {
    train, test, trainLoader, valLoader, testLoader,
    inputShape: [...train.shape], numClasses: train.numClasses,
    dispose: () => { train.dispose(); test.dispose(); },
  };
}
