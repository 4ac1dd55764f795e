/** nn.functional: the neural ops, re-exported where PyTorch users look for them. */
export * from '../tensor/nn-ops.js';
