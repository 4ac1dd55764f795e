/** Unstructured sparsity that saves space (a compressed safetensors format) and time (a sparse Linear kernel). */
export {
  encodeSparseSafetensors, decodeSparseSafetensors, saveSparseSafetensors, loadSparseSafetensors, gzipSize,
  DEFAULT_MAX_BYTES, type Encoding, type SparseDecoded, type SparseDecodeOptions, type SparseEncodeOptions,
} from './format.js';
export {
  sparseLinear, autoSparseLinear, sparseMaxDensity, SPARSE_RULE, setSparseInference, sparseInferenceEnabled, withDenseInference,
  weightDensity, sparseCacheInfo, clearSparseCache, type SparseLayout,
} from './linear.js';
export { autoSparseChain, sparseChain, sequentialInference, CHAIN_MAX_DENSE_ELEMENTS, type ChainLayer } from './chain.js';
export { autoSparseConv2d, sparseConv2d, SPARSE_CONV_RULE, type ConvGeometry } from './conv.js';
