/**
 * topiary: the one curated public surface. Everything a user imports comes from here.
 */
export * from './core/errors.js';
export { type DType, DTYPES } from './core/dtype.js';
export { cudaAvailable, defaultDevice, type Device } from './core/device.js';
export { manualSeed, setNumThreads, getNumThreads, torchVersion } from './core/runtime.js';
export { Rng } from './core/rng.js';
export * from './tensor/index.js';
