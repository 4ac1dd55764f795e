/** The data layer's public surface: dataset specs and raw files, tensor datasets, the loader, augmentations. */
export { datasets, datasetNames, getDatasetSpec, datasetFiles, mnist, fashionMnist, cifar10, cifar100 } from './sources.js';
export type { DatasetName, Split, FileSpec, DatasetSpec, IdxDatasetSpec, CifarDatasetSpec } from './sources.js';
export { dataRoot, datasetDir, findFile, type LocateOptions } from './locate.js';
export { ensureFiles, verifyFiles, downloadFile, md5File, type FetchFn, type DownloadOptions, type EnsureOptions } from './download.js';
export { readIdx, parseIdx, type IdxArray, type IdxKind } from './idx.js';
export { readCifar, parseCifar, type CifarBatch, type CifarVariant } from './cifar.js';
export { loadRaw, type RawDataset, type LoadRawOptions } from './raw.js';
export { TensorDataset, loadDataset, splitTrainVal, asView, type DatasetInfo, type DatasetView, type DataSource, type LoadDatasetOptions } from './dataset.js';
export { DataLoader, type DataLoaderOptions, type Batch, type LoaderStats } from './loader.js';
export {
  augment, compose, randomCrop, horizontalFlip, randomAffine, affineTheta,
  type Augmentation, type SampleShape, type RandomCropOptions, type CropParams, type HorizontalFlipOptions, type RandomAffineOptions, type AffineParams,
} from './augment.js';
