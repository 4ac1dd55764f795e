/** Unstructured sparsity that saves space (a compressed safetensors format) and time (a sparse Linear kernel). */
export {
  encodeSparseSafetensors, decodeSparseSafetensors, saveSparseSafetensors, loadSparseSafetensors, gzipSize,
  DEFAULT_MAX_BYTES, type Encoding, type SparseDecoded, type SparseDecodeOptions, type SparseEncodeOptions,
} from './format.js';
export {
  sparseLinear, autoSparseLinear, sparseMaxDensity, SPARSE_RULE, setSparseInference, sparseInferenceEnabled, withDenseInference,
  weightDensity, sparseCacheInfo, clearSparseCache, type SparseLayout,
} from './linear.js';
