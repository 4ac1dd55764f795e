/**
 * Where each dataset comes from and what its files must hash to.
 *
 * Registry keys ('mnist', 'fashion_mnist', 'cifar10', 'cifar100') reach the CLI, recipes and run
 * hashes, so they never change once released. Folder names are the ones the official archives
 * (and torchvision) use, so a copy made by other tools can be pointed at directly.
 */
import { RegistryError } from '../core/errors.js';

export type DatasetName = 'mnist' | 'fashion_mnist' | 'cifar10' | 'cifar100';
export type Split = 'train' | 'test';

/** One file of a dataset, named relative to the dataset's folder. */
export interface FileSpec {
  readonly name: string;
  /** Official md5 where one is published; undefined means the file cannot be checked on its own. */
  readonly md5?: string;
}

interface SpecBase {
  readonly name: DatasetName;
  /** Folder under the data root (see locate.ts). */
  readonly folder: string;
  readonly numClasses: number;
  /** Per-sample shape [C, H, W]. */
  readonly inputShape: readonly [number, number, number];
  /** Standard per-channel normalization on pixels scaled to [0, 1]. */
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** MNIST-like: one IDX images file and one IDX labels file per split, each downloaded on its own. */
export interface IdxDatasetSpec extends SpecBase {
  readonly format: 'idx';
  /** Files are fetched from baseUrl + file name. */
  readonly baseUrl: string;
  readonly splits: Readonly<Record<Split, { readonly images: FileSpec; readonly labels: FileSpec }>>;
}

/** CIFAR-like: binary record files, all shipped in one tar.gz archive. */
export interface CifarDatasetSpec extends SpecBase {
  readonly format: 'cifar';
  /** 1 for CIFAR-10 (label), 2 for CIFAR-100 (coarse label, then fine label). */
  readonly labelBytes: 1 | 2;
  /** Number of coarse classes (CIFAR-100 only). */
  readonly numCoarseClasses?: number;
  /** Members inside the archive are `<folder>/<file name>`. */
  readonly archive: { readonly url: string; readonly name: string; readonly md5: string };
  /** Files in order; a split made of several files is their concatenation. */
  readonly splits: Readonly<Record<Split, readonly FileSpec[]>>;
}

export type DatasetSpec = IdxDatasetSpec | CifarDatasetSpec;

function idxSplits(md5: [string, string, string, string]): IdxDatasetSpec['splits'] {
  return {
    train: { images: { name: 'train-images-idx3-ubyte.gz', md5: md5[0] }, labels: { name: 'train-labels-idx1-ubyte.gz', md5: md5[1] } },
    test: { images: { name: 't10k-images-idx3-ubyte.gz', md5: md5[2] }, labels: { name: 't10k-labels-idx1-ubyte.gz', md5: md5[3] } },
  };
}

export const mnist: IdxDatasetSpec = {
  name: 'mnist',
  format: 'idx',
  folder: 'mnist',
  // yann.lecun.com now answers with a login page; this is the mirror torchvision tries first.
  baseUrl: 'https://ossci-datasets.s3.amazonaws.com/mnist/',
  splits: idxSplits([
    'f68b3c2dcbeaaa9fbdd348bbdeb94873',
    'd53e105ee54ea40749a09fcbcd1e9432',
    '9fb629c4189551a2d022fa330f9573f3',
    'ec29112dd5afa0611ce80d1b7f02629c',
  ]),
  numClasses: 10,
  inputShape: [1, 28, 28],
  mean: [0.1307],
  std: [0.3081],
};

export const fashionMnist: IdxDatasetSpec = {
  name: 'fashion_mnist',
  format: 'idx',
  // The key uses '_' (registry keys are identifiers); the folder keeps the project's own spelling.
  folder: 'fashion-mnist',
  baseUrl: 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
  splits: idxSplits([
    '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
    '25c81989df183df01b3e8a0aad5dffbe',
    'bef4ecab320f06d8554ea6380940ec79',
    'bb300cfdad3c16e7a12a480ee83cd310',
  ]),
  numClasses: 10,
  inputShape: [1, 28, 28],
  mean: [0.286],
  std: [0.353],
};

export const cifar10: CifarDatasetSpec = {
  name: 'cifar10',
  format: 'cifar',
  folder: 'cifar-10-batches-bin',
  labelBytes: 1,
  archive: {
    url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
    name: 'cifar-10-binary.tar.gz',
    md5: 'c32a1d4ab5d03f1284b67883e8d87530',
  },
  splits: {
    train: [
      { name: 'data_batch_1.bin', md5: '5dd7e06a14cb22eb9f671a540d1b7c25' },
      { name: 'data_batch_2.bin', md5: '5ea93a67294ea407fff1d09f752e9692' },
      { name: 'data_batch_3.bin', md5: '942cd6a4bcdd0dd3c604fbe906cb4421' },
      { name: 'data_batch_4.bin', md5: 'ae636b3ba5c66a11e91e8cb52e771fcb' },
      { name: 'data_batch_5.bin', md5: '53f37980c15c3d472c316c40844f3f0d' },
    ],
    test: [{ name: 'test_batch.bin', md5: '803d5f7f4d78ea53de84dbe85f74fb6d' }],
  },
  numClasses: 10,
  inputShape: [3, 32, 32],
  mean: [0.4914, 0.4822, 0.4465],
  std: [0.247, 0.2435, 0.2616],
};

export const cifar100: CifarDatasetSpec = {
  name: 'cifar100',
  format: 'cifar',
  folder: 'cifar-100-binary',
  labelBytes: 2,
  numCoarseClasses: 20,
  archive: {
    url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
    name: 'cifar-100-binary.tar.gz',
    md5: '03b5dce01913d631647c71ecec9e9cb8',
  },
  // No per-file md5 is published for the extracted files; the archive's md5 covers them at download.
  splits: { train: [{ name: 'train.bin' }], test: [{ name: 'test.bin' }] },
  numClasses: 100,
  inputShape: [3, 32, 32],
  mean: [0.5071, 0.4865, 0.4409],
  std: [0.2673, 0.2564, 0.2762],
};

export const datasets: Readonly<Record<DatasetName, DatasetSpec>> = {
  mnist,
  fashion_mnist: fashionMnist,
  cifar10,
  cifar100,
};

export const datasetNames = Object.keys(datasets) as DatasetName[];

/** The spec for a registry key; an unknown key throws a RegistryError listing the known ones. */
export function getDatasetSpec(name: string): DatasetSpec {
  if (!Object.hasOwn(datasets, name)) {
    throw new RegistryError(`unknown dataset '${name}'; known datasets: ${datasetNames.join(', ')}`);
  }
  return datasets[name as DatasetName];
}

/** Every file of a dataset, both splits, in a stable order (used to check or fetch a whole dataset). */
export function datasetFiles(spec: DatasetSpec): FileSpec[] {
  if (spec.format === 'idx') {
    return (['train', 'test'] as const).flatMap((s) => [spec.splits[s].images, spec.splits[s].labels]);
  }
  return [...spec.splits.train, ...spec.splits.test];
}
