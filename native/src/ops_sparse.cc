// Sparse inference for pruned Linear weights, over Eigen's sparse-dense product (header-only).
//
// The packed forms live in a per-thread cache keyed by the weight's TensorImpl and its version
// counter (every in-place op bumps it: optimizer steps, masking, copy_), so a layer packs once
// per change of its weight and JS holds no extra tensors (memory() stays what the model owns).
// The cache holds weak references: a freed weight's entry is dropped at the next lookup.
//
// Layouts (the measurement, confirmed by bench/sparse-linear.ts):
//   batch 1:  y = W x with W column-major (CSC): one axpy of a column per nonzero input.
//   batch B:  Y^T = W X^T with W row-major (CSR) and X^T row-major [in, B]: each nonzero adds a
//             contiguous row of B activations, which vectorizes.
#include "common.h"
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <Eigen/SparseCore>
#include <c10/util/intrusive_ptr.h>
#include <cstring>
#include <memory>

using namespace topiary;

namespace {

struct Compressed {
  std::vector<float> val;
  std::vector<int> inner, outer;
  bool built = false;
};

struct Packed {
  c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl> impl;
  int64_t version = -1;
  int64_t rows = 0, cols = 0, nnz = 0;
  Compressed csr, csc;
  Packed(const at::Tensor& w) : impl(w.getIntrusivePtr()) {}
  size_t bytes() const {
    auto b = [](const Compressed& c) { return c.val.size() * 4 + c.inner.size() * 4 + c.outer.size() * 4; };
    return b(csr) + b(csc);
  }
};

thread_local std::vector<std::unique_ptr<Packed>> g_cache;

// The cache entry for w (2-d float32 CPU), with nnz counted for its current version.
Packed& lookup(const at::Tensor& w) {
  const c10::TensorImpl* key = w.unsafeGetTensorImpl();
  Packed* hit = nullptr;
  for (auto it = g_cache.begin(); it != g_cache.end();) {
    if ((*it)->impl.expired()) { it = g_cache.erase(it); continue; }
    if ((*it)->impl._unsafe_get_target() == key) hit = it->get();
    ++it;
  }
  if (!hit) {
    g_cache.push_back(std::make_unique<Packed>(w));
    hit = g_cache.back().get();
  }
  int64_t v = static_cast<int64_t>(w._version());
  if (hit->version != v || hit->rows != w.size(0) || hit->cols != w.size(1)) {
    at::Tensor c = w.contiguous();
    const float* p = c.data_ptr<float>();
    int64_t n = c.numel(), nnz = 0;
    for (int64_t i = 0; i < n; i++) nnz += p[i] != 0.0f;
    hit->version = v;
    hit->rows = w.size(0);
    hit->cols = w.size(1);
    hit->nnz = nnz;
    hit->csr = Compressed();
    hit->csc = Compressed();
  }
  return *hit;
}

void buildCsr(Packed& e, const at::Tensor& w) {
  if (e.csr.built) return;
  at::Tensor c = w.contiguous();
  const float* p = c.data_ptr<float>();
  Compressed& s = e.csr;
  s.val.reserve(e.nnz);
  s.inner.reserve(e.nnz);
  s.outer.assign(1, 0);
  for (int64_t r = 0; r < e.rows; r++) {
    const float* row = p + r * e.cols;
    for (int64_t k = 0; k < e.cols; k++) {
      if (row[k] != 0.0f) { s.val.push_back(row[k]); s.inner.push_back(static_cast<int>(k)); }
    }
    s.outer.push_back(static_cast<int>(s.val.size()));
  }
  s.built = true;
}

void buildCsc(Packed& e, const at::Tensor& w) {
  if (e.csc.built) return;
  at::Tensor c = w.contiguous();
  const float* p = c.data_ptr<float>();
  Compressed& s = e.csc;
  // Count per column, then fill in row order so each column's row indices come out sorted.
  s.outer.assign(e.cols + 1, 0);
  for (int64_t r = 0; r < e.rows; r++)
    for (int64_t k = 0; k < e.cols; k++) s.outer[k + 1] += p[r * e.cols + k] != 0.0f;
  for (int64_t k = 0; k < e.cols; k++) s.outer[k + 1] += s.outer[k];
  s.val.resize(e.nnz);
  s.inner.resize(e.nnz);
  std::vector<int> next(s.outer.begin(), s.outer.end() - 1);
  for (int64_t r = 0; r < e.rows; r++) {
    for (int64_t k = 0; k < e.cols; k++) {
      float v = p[r * e.cols + k];
      if (v != 0.0f) { int at = next[k]++; s.val[at] = v; s.inner[at] = static_cast<int>(r); }
    }
  }
  s.built = true;
}

using RowSparse = Eigen::Map<const Eigen::SparseMatrix<float, Eigen::RowMajor, int>>;
using ColSparse = Eigen::Map<const Eigen::SparseMatrix<float, Eigen::ColMajor, int>>;
using RowDense = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void checkWeight(const at::Tensor& w, const char* op) {
  TORCH_CHECK(w.dim() == 2, op, ": weight must be 2-d [out, in], got ", w.sizes());
  TORCH_CHECK(w.scalar_type() == at::kFloat && w.device().is_cpu(), op, ": weight must be float32 on the CPU");
  TORCH_CHECK(w.size(0) < INT32_MAX && w.size(1) < INT32_MAX && w.numel() < INT32_MAX, op, ": weight ", w.sizes(), " is too large for 32-bit indices");
}

// [B, in] -> [B, out] with W in CSR, in tiles of TILE = 16 batch rows: a tile of X is transposed
// into a small buffer [in, 16] (it stays in cache), each output row accumulates one contiguous row
// of 16 activations per nonzero in registers, and the tile is written back transposed. Tiles run
// in parallel on libtorch's threads.
//   Why not Eigen here: for the same tiles, Eigen's product (`yt.noalias() += W * xt`, CSR times
//   row-major) stores the 16-wide result row to memory after every nonzero; this loop keeps it in
//   registers and ran the [300, 784] 98% product at batch 128 in about a third of Eigen's time
//   (the `eigen` layout below keeps Eigen's version for the benchmark). And libtorch's own
//   transposing copy of a whole [128, 784] input cost more than the product (126 us against ~40).
constexpr int TILE = 16;

// Compiled for AVX-512, AVX2 + FMA and the baseline, picked at load time (GCC's function clones):
// the 16-wide accumulator is one AVX-512 register, and the baseline build still runs anywhere.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TOPIARY_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TOPIARY_CLONES
#endif
TOPIARY_CLONES
void tileProduct(const int* outer, const int* inner, const float* val, const float* bias, const float* xt, float* yt, int64_t out) {
  for (int64_t i = 0; i < out; i++) {
    // Two accumulators, alternate nonzeros: two independent chains of multiply-adds instead of one.
    float acc[TILE], acc2[TILE];
    const float b = bias ? bias[i] : 0.0f;
    for (int k = 0; k < TILE; k++) { acc[k] = b; acc2[k] = 0.0f; }
    int p = outer[i];
    const int end = outer[i + 1];
    for (; p + 1 < end; p += 2) {
      const float v = val[p], v2 = val[p + 1];
      const float* r = xt + static_cast<int64_t>(inner[p]) * TILE;
      const float* r2 = xt + static_cast<int64_t>(inner[p + 1]) * TILE;
      for (int k = 0; k < TILE; k++) { acc[k] += v * r[k]; acc2[k] += v2 * r2[k]; }
    }
    if (p < end) {
      const float v = val[p];
      const float* r = xt + static_cast<int64_t>(inner[p]) * TILE;
      for (int k = 0; k < TILE; k++) acc[k] += v * r[k];
    }
    for (int k = 0; k < TILE; k++) yt[i * TILE + k] = acc[k] + acc2[k];
  }
}

at::Tensor productTiled(Packed& e, const at::Tensor& x2, const c10::optional<at::Tensor>& bias, bool eigen) {
  using Tile = Eigen::Matrix<float, Eigen::Dynamic, TILE, Eigen::RowMajor>;
  const int64_t B = x2.size(0), in = e.cols, out = e.rows;
  at::Tensor xc = x2.contiguous();
  at::Tensor y = at::empty({B, out}, x2.options());
  const float* X = xc.data_ptr<float>();
  float* Y = y.data_ptr<float>();
  at::Tensor bc = bias ? bias->contiguous() : at::Tensor();
  const float* bp = bias ? bc.data_ptr<float>() : nullptr;
  const int* outer = e.csr.outer.data();
  const int* inner = e.csr.inner.data();
  const float* val = e.csr.val.data();
  RowSparse W(out, in, e.nnz, outer, inner, val);
  const int64_t tiles = (B + TILE - 1) / TILE;
  const int64_t work = std::max<int64_t>(1, (e.nnz + in + out) * TILE);
  at::parallel_for(0, tiles, std::max<int64_t>(1, 65536 / work), [&](int64_t t0, int64_t t1) {
    Tile xt(in, TILE), yt(out, TILE);
    float* xb = xt.data();
    float* yb = yt.data();
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b0 = t * TILE, nb = std::min<int64_t>(TILE, B - b0);
      if (nb < TILE) xt.setZero();
      // Write contiguously, read nb strided streams: the faster order for this shape.
      for (int64_t k = 0; k < in; k++)
        for (int64_t b = 0; b < nb; b++) xb[k * TILE + b] = X[(b0 + b) * in + k];
      if (eigen) {
        if (bp) yt = Eigen::Map<const Eigen::VectorXf>(bp, out).replicate(1, TILE);
        else yt.setZero();
        yt.noalias() += W * xt;
      } else {
        tileProduct(outer, inner, val, bp, xb, yb, out);
      }
      for (int64_t b = 0; b < nb; b++) {
        float* row = Y + (b0 + b) * out;
        for (int64_t i = 0; i < out; i++) row[i] = yb[i * TILE + b];
      }
    }
  });
  return y;
}

// [B, in] -> [B, out] with W in CSC: batch 1 is y = W x (an axpy per input); batches scatter per row.
at::Tensor productCsc(Packed& e, const at::Tensor& x2, const c10::optional<at::Tensor>& bias) {
  const int64_t B = x2.size(0);
  at::Tensor xc = x2.contiguous();
  // A fresh tensor: expand(...).contiguous() of a [1, out] view would return the bias itself at batch 1.
  at::Tensor y = at::empty({B, e.rows}, x2.options());
  if (bias) y.copy_(bias->reshape({1, e.rows}).expand({B, e.rows}));
  else y.zero_();
  ColSparse W(e.rows, e.cols, e.nnz, e.csc.outer.data(), e.csc.inner.data(), e.csc.val.data());
  for (int64_t b = 0; b < B; b++) {
    Eigen::Map<const Eigen::VectorXf> X(xc.data_ptr<float>() + b * e.cols, e.cols);
    Eigen::Map<Eigen::VectorXf> Y(y.data_ptr<float>() + b * e.rows, e.rows);
    Y.noalias() += W * X;
  }
  return y;
}

}  // namespace

// sparseLinear(x, w, bias|null, maxDensity, layout 0 auto | 1 csr tiles | 2 csc (Eigen) | 3 csr tiles
// (Eigen), auto) -> y, or null when the weight's density (nonzeros / elements) exceeds maxDensity
// (the caller then runs the dense op). x: float32 [..., in]; w: float32 [out, in]; bias: float32
// [out]. No autograd (inference only). With auto = true (Linear's automatic path), inputs this
// kernel does not take (another dtype or device, grad mode on, a mismatched shape) give null
// instead of an error, and the dense op reports any error in its own words.
OP(sparseLinear) {
  const at::Tensor& x = T(info, 0);
  const at::Tensor& w = T(info, 1);
  auto bias = OptT(info, 2);
  double maxDensity = D(info, 3);
  int64_t layout = isNil(info, 4) ? 0 : I(info, 4);
  if (B(info, 5)) {
    bool ok = !at::GradMode::is_enabled() && w.dim() == 2 && w.scalar_type() == at::kFloat && w.device().is_cpu() &&
              w.numel() < INT32_MAX && x.scalar_type() == at::kFloat && x.device().is_cpu() && x.dim() >= 1 && x.size(-1) == w.size(1) &&
              (!bias || (bias->scalar_type() == at::kFloat && bias->device().is_cpu() && bias->dim() == 1 && bias->size(0) == w.size(0)));
    if (!ok) return env.Null();
  }
  checkWeight(w, "sparseLinear");
  TORCH_CHECK(layout >= 0 && layout <= 3, "sparseLinear: layout must be 0 (auto), 1 (csr), 2 (csc) or 3 (eigen csr), got ", layout);
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.device().is_cpu(), "sparseLinear: input must be float32 on the CPU");
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), "sparseLinear: input's last dim (shape ", x.sizes(), ") does not match the weight's in-features ", w.size(1));
  if (bias) {
    TORCH_CHECK(bias->scalar_type() == at::kFloat && bias->device().is_cpu() && bias->dim() == 1 && bias->size(0) == w.size(0),
                "sparseLinear: bias must be float32 [", w.size(0), "], got ", bias->sizes());
  }
  Packed& e = lookup(w);
  if (w.numel() > 0 && static_cast<double>(e.nnz) > maxDensity * static_cast<double>(w.numel())) return env.Null();
  at::NoGradGuard ng;
  std::vector<int64_t> outShape(x.sizes().begin(), x.sizes().end());
  outShape.back() = e.rows;
  // The leading dims are the batch (1 for a 1-d input); reshape with -1 would be ambiguous when in = 0.
  const int64_t B = c10::multiply_integers(x.sizes().begin(), x.sizes().end() - 1);
  at::Tensor x2 = x.reshape({B, e.cols});
  if (layout == 0) layout = B == 1 ? 2 : 1;
  at::Tensor y;
  if (B == 0 || e.rows == 0) {
    y = at::empty({B, e.rows}, x.options());
    if (bias) y.copy_(bias->reshape({1, e.rows}).expand({B, e.rows}));
  } else if (layout == 1) {
    buildCsr(e, w);
    y = productTiled(e, x2, bias, false);
  } else if (layout == 3) {
    buildCsr(e, w);
    y = productTiled(e, x2, bias, true);
  } else {
    buildCsc(e, w);
    y = productCsc(e, x2, bias);
  }
  RET(x.dim() == 2 ? y : y.reshape(outShape));
}

// sparseNnz(w) -> the weight's nonzero count (cached per version, as sparseLinear counts it).
OP(sparseNnz) {
  const at::Tensor& w = T(info, 0);
  checkWeight(w, "sparseNnz");
  return Napi::Number::New(env, static_cast<double>(lookup(w).nnz));
}

// sparseCacheInfo() -> { entries, bytes } of this thread's packed weights; sparseCacheClear() drops them.
OP(sparseCacheInfo) {
  size_t bytes = 0, n = 0;
  for (const auto& e : g_cache) if (!e->impl.expired()) { n++; bytes += e->bytes(); }
  auto o = Napi::Object::New(env);
  o.Set("entries", Napi::Number::New(env, static_cast<double>(n)));
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes)));
  return o;
}
OP(sparseCacheClear) {
  g_cache.clear();
  return env.Undefined();
}
