// Neural-network ops: products, convolutions, pooling, normalization, activations, losses, sampling grids.
#include "common.h"
using namespace topiary;

OP(matmul) { RET(at::matmul(T(info, 0), T(info, 1))); }
OP(mm) { RET(at::mm(T(info, 0), T(info, 1))); }
OP(bmm) { RET(at::bmm(T(info, 0), T(info, 1))); }
OP(outer) { RET(at::outer(T(info, 0), T(info, 1))); }
OP(addmm) {
  at::Scalar beta = isNil(info, 3) ? at::Scalar(1) : S(info, 3);
  at::Scalar alpha = isNil(info, 4) ? at::Scalar(1) : S(info, 4);
  RET(at::addmm(T(info, 0), T(info, 1), T(info, 2), beta, alpha));
}
OP(linear) { RET(at::linear(T(info, 0), T(info, 1), OptT(info, 2))); }
// conv2d(x, w, b|null, stride[2], padding[2], dilation[2], groups)
OP(conv2d) { RET(at::conv2d(T(info, 0), T(info, 1), OptT(info, 2), IL(info, 3), IL(info, 4), IL(info, 5), I(info, 6))); }
OP(maxPool2d) { RET(at::max_pool2d(T(info, 0), IL(info, 1), IL(info, 2), IL(info, 3), IL(info, 4), B(info, 5))); }
OP(avgPool2d) { RET(at::avg_pool2d(T(info, 0), IL(info, 1), IL(info, 2), IL(info, 3), B(info, 4), B(info, 5, true))); }
OP(adaptiveAvgPool2d) { RET(at::adaptive_avg_pool2d(T(info, 0), IL(info, 1))); }
// batchNorm(x, weight|null, bias|null, runningMean|null, runningVar|null, training, momentum, eps)
// In training mode libtorch updates the running statistics in place, as PyTorch does.
OP(batchNorm) {
  RET(at::batch_norm(T(info, 0), OptT(info, 1), OptT(info, 2), OptT(info, 3), OptT(info, 4), B(info, 5), D(info, 6), D(info, 7), false));
}
OP(layerNorm) { RET(at::layer_norm(T(info, 0), IL(info, 1), OptT(info, 2), OptT(info, 3), D(info, 4))); }
OP(dropout) { RET(at::dropout(T(info, 0), D(info, 1), B(info, 2))); }
OP(softmax) { RET(at::softmax(T(info, 0), I(info, 1))); }
OP(logSoftmax) { RET(at::log_softmax(T(info, 0), I(info, 1))); }
OP(leakyRelu) { RET(at::leaky_relu(T(info, 0), S(info, 1))); }
OP(gelu) { RET(at::gelu(T(info, 0))); }
OP(softplus) { RET(at::softplus(T(info, 0))); }

static int64_t reduction(const Napi::CallbackInfo& info, size_t i) {
  if (isNil(info, i)) return at::Reduction::Mean;
  std::string r = Str(info, i);
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  throw Napi::Error::New(info.Env(), "unknown reduction '" + r + "' (expected mean, sum or none)");
}
// crossEntropy(logits, target, weight|null, reduction, ignoreIndex, labelSmoothing)
OP(crossEntropy) {
  RET(at::cross_entropy_loss(T(info, 0), T(info, 1), OptT(info, 2), reduction(info, 3), isNil(info, 4) ? -100 : I(info, 4), isNil(info, 5) ? 0.0 : D(info, 5)));
}
OP(nllLoss) { RET(at::nll_loss(T(info, 0), T(info, 1), OptT(info, 2), reduction(info, 3), isNil(info, 4) ? -100 : I(info, 4))); }
OP(mseLoss) { RET(at::mse_loss(T(info, 0), T(info, 1), reduction(info, 2))); }
OP(oneHot) { RET(at::one_hot(T(info, 0), isNil(info, 1) ? -1 : I(info, 1))); }
OP(affineGrid) { RET(at::affine_grid_generator(T(info, 0), IL(info, 1), B(info, 2))); }
// gridSample(x, grid, mode 0 bilinear | 1 nearest, padding 0 zeros | 1 border | 2 reflection, alignCorners)
OP(gridSample) { RET(at::grid_sampler(T(info, 0), T(info, 1), I(info, 2), I(info, 3), B(info, 4))); }
