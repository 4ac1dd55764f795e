export { Tensor, type Scalar, type TensorLike, type Dims } from './tensor.js';
export * from './creation.js';
export { tidy, keep, dispose, memory, type MemoryInfo } from './scope.js';
export { noGrad, enableGrad, isGradEnabled, grad, type GradOptions } from './autograd.js';
export * as F from './nn-ops.js';
export { saveSafetensors, loadSafetensors, encodeSafetensors, decodeSafetensors } from './safetensors.js';
