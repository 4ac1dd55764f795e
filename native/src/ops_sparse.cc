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

// The cache entry for w (float32 CPU, read as [rows, cols] row-major: a Linear weight, or a conv
// weight [O, C, kh, kw] as [O, C*kh*kw]), with nnz counted for its current version.
Packed& lookupAs(const at::Tensor& w, int64_t rows, int64_t cols);
Packed& lookup(const at::Tensor& w) { return lookupAs(w, w.size(0), w.size(1)); }
Packed& lookupAs(const at::Tensor& w, int64_t rows, int64_t cols) {
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
  if (hit->version != v || hit->rows != rows || hit->cols != cols) {
    at::Tensor c = w.contiguous();
    const float* p = c.data_ptr<float>();
    int64_t n = c.numel(), nnz = 0;
    for (int64_t i = 0; i < n; i++) nnz += p[i] != 0.0f;
    hit->version = v;
    hit->rows = rows;
    hit->cols = cols;
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

// ---- fused chains of Linear (+ ReLU) layers, and sparse convolutions ------------------------------
//
// sparseChain runs y = L_n(...L_1(x)) where each L is a Linear with an optional ReLU, in one call:
// the bias and the ReLU are applied where the result is made, and the activations between layers
// stay in a per-thread scratch buffer (no tensors, no libtorch calls). At batch 1 each sparse layer
// is CSC: y = b + sum over nonzero inputs of x_k * column k (zero inputs, half of them after a
// ReLU, are skipped). At batch > 1 the batch runs in tiles of 16 rows, transposed once on the way
// in ([in, 16]) and once on the way out: between layers a tile stays transposed, which is the layout
// the next layer's CSR product reads (the per-layer path transposes in and out at every layer).
// Small or dense layers in the chain (the [10, 100] head) are computed in the same tile by a
// plain dense loop.
namespace {

TOPIARY_CLONES
void csrTile(const int* outer, const int* inner, const float* val, const float* bias, const float* x, int64_t ldx,
             float* y, int64_t ldy, int64_t out, bool relu) {
  for (int64_t i = 0; i < out; i++) {
    float acc[TILE], acc2[TILE];
    const float b = bias ? bias[i] : 0.0f;
    for (int k = 0; k < TILE; k++) { acc[k] = b; acc2[k] = 0.0f; }
    int p = outer[i];
    const int end = outer[i + 1];
    for (; p + 1 < end; p += 2) {
      const float v = val[p], v2 = val[p + 1];
      const float* r = x + static_cast<int64_t>(inner[p]) * ldx;
      const float* r2 = x + static_cast<int64_t>(inner[p + 1]) * ldx;
      for (int k = 0; k < TILE; k++) { acc[k] += v * r[k]; acc2[k] += v2 * r2[k]; }
    }
    if (p < end) {
      const float v = val[p];
      const float* r = x + static_cast<int64_t>(inner[p]) * ldx;
      for (int k = 0; k < TILE; k++) acc[k] += v * r[k];
    }
    float* yr = y + i * ldy;
    // `s < 0 ? 0 : s` keeps a NaN as libtorch's relu does.
    if (relu) for (int k = 0; k < TILE; k++) { const float s = acc[k] + acc2[k]; yr[k] = s < 0.0f ? 0.0f : s; }
    else for (int k = 0; k < TILE; k++) yr[k] = acc[k] + acc2[k];
  }
}

// The same product for a last block narrower than a tile (nb < 16 columns).
void csrNarrow(const int* outer, const int* inner, const float* val, const float* bias, const float* x, int64_t ldx,
               float* y, int64_t ldy, int64_t out, int64_t nb, bool relu) {
  for (int64_t i = 0; i < out; i++) {
    float acc[TILE];
    const float b = bias ? bias[i] : 0.0f;
    for (int64_t k = 0; k < nb; k++) acc[k] = b;
    for (int p = outer[i]; p < outer[i + 1]; p++) {
      const float v = val[p];
      const float* r = x + static_cast<int64_t>(inner[p]) * ldx;
      for (int64_t k = 0; k < nb; k++) acc[k] += v * r[k];
    }
    float* yr = y + i * ldy;
    for (int64_t k = 0; k < nb; k++) yr[k] = relu && acc[k] < 0.0f ? 0.0f : acc[k];
  }
}

// A dense layer on a transposed tile: y[out, 16] = W[out, in] x[in, 16] + b.
TOPIARY_CLONES
void denseTile(const float* w, const float* bias, const float* x, float* y, int64_t out, int64_t in, bool relu) {
  for (int64_t i = 0; i < out; i++) {
    float acc[TILE], acc2[TILE];
    const float b = bias ? bias[i] : 0.0f;
    for (int k = 0; k < TILE; k++) { acc[k] = b; acc2[k] = 0.0f; }
    const float* wr = w + i * in;
    int64_t j = 0;
    for (; j + 1 < in; j += 2) {
      const float v = wr[j], v2 = wr[j + 1];
      const float* r = x + j * TILE;
      for (int k = 0; k < TILE; k++) { acc[k] += v * r[k]; acc2[k] += v2 * r[k + TILE]; }
    }
    if (j < in) {
      const float v = wr[j];
      const float* r = x + j * TILE;
      for (int k = 0; k < TILE; k++) acc[k] += v * r[k];
    }
    float* yr = y + i * TILE;
    if (relu) for (int k = 0; k < TILE; k++) { const float s = acc[k] + acc2[k]; yr[k] = s < 0.0f ? 0.0f : s; }
    else for (int k = 0; k < TILE; k++) yr[k] = acc[k] + acc2[k];
  }
}

struct ChainLayer {
  at::Tensor w, wc, b;  // weight, its contiguous form (dense layers), bias (undefined: none)
  Packed* e = nullptr;   // the packed weight when this layer runs sparse
  bool relu = false;
  int64_t out = 0, in = 0;
};

// Reads a JS array of tensors or nulls.
std::vector<c10::optional<at::Tensor>> optList(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsArray()) throw Napi::TypeError::New(env, std::string(what) + " must be an array");
  auto a = info[i].As<Napi::Array>();
  std::vector<c10::optional<at::Tensor>> r;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (v.IsNull() || v.IsUndefined()) { r.push_back(c10::nullopt); continue; }
    if (!v.IsExternal()) throw Napi::TypeError::New(env, std::string(what) + "[" + std::to_string(k) + "] must be a tensor or null");
    Box* b = v.As<Napi::External<Box>>().Data();
    if (!b->t.defined()) throw Napi::Error::New(env, std::string(what) + "[" + std::to_string(k) + "]: tensor was disposed");
    r.push_back(b->t);
  }
  return r;
}
std::vector<double> numList(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsArray()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an array of numbers");
  auto a = info[i].As<Napi::Array>();
  std::vector<double> r;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + "[" + std::to_string(k) + "] must be a number");
    r.push_back(v.As<Napi::Number>().DoubleValue());
  }
  return r;
}

thread_local std::vector<float> g_scratchA, g_scratchB;

// Batch 1 through CSR: one dot product per output row, gathering the inputs; four independent sums
// (the scatter of the CSC form waits on each store, about 3 cycles a nonzero here).
TOPIARY_CLONES
void csrGatherVec(const int* outer, const int* inner, const float* val, const float* bias, const float* x, float* y, int64_t out) {
  for (int64_t i = 0; i < out; i++) {
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    int p = outer[i];
    const int end = outer[i + 1];
    for (; p + 3 < end; p += 4) {
      a0 += val[p] * x[inner[p]];
      a1 += val[p + 1] * x[inner[p + 1]];
      a2 += val[p + 2] * x[inner[p + 2]];
      a3 += val[p + 3] * x[inner[p + 3]];
    }
    for (; p < end; p++) a0 += val[p] * x[inner[p]];
    y[i] = (bias ? bias[i] : 0.0f) + ((a0 + a1) + (a2 + a3));
  }
}

// Batch 1: CSC (skipping zero inputs) when at least this share of a layer's inputs is zero (a ReLU's
// output, an image's background), CSR otherwise. g_batch1Mode forces one (1 CSR, 2 CSC) for measurement.
constexpr double CSC_ZERO_SHARE = 0.5;
thread_local int g_batch1Mode = 0;

bool useCsc(const float* in, int64_t n) {
  if (g_batch1Mode) return g_batch1Mode == 2;
  int64_t zeros = 0;
  for (int64_t k = 0; k < n; k++) zeros += in[k] == 0.0f;
  return static_cast<double>(zeros) >= CSC_ZERO_SHARE * static_cast<double>(n);
}

void chainBatch1(std::vector<ChainLayer>& L, const float* x, float* yOut) {
  int64_t widest = 0;
  for (auto& l : L) widest = std::max(widest, l.out);
  if (static_cast<int64_t>(g_scratchA.size()) < widest) { g_scratchA.resize(widest); g_scratchB.resize(widest); }
  const float* in = x;
  for (size_t li = 0; li < L.size(); li++) {
    ChainLayer& l = L[li];
    float* out = li + 1 == L.size() ? yOut : (li % 2 ? g_scratchB.data() : g_scratchA.data());
    const float* bp = l.b.defined() ? l.b.data_ptr<float>() : nullptr;
    if (l.e && !useCsc(in, l.in)) {
      buildCsr(*l.e, l.w);
      const Compressed& c = l.e->csr;
      csrGatherVec(c.outer.data(), c.inner.data(), c.val.data(), bp, in, out, l.out);
    } else if (l.e) {
      buildCsc(*l.e, l.w);
      const Compressed& c = l.e->csc;
      if (bp) std::memcpy(out, bp, l.out * sizeof(float));
      else std::fill(out, out + l.out, 0.0f);
      const int* outer = c.outer.data();
      const int* inner = c.inner.data();
      const float* val = c.val.data();
      for (int64_t k = 0; k < l.in; k++) {
        const float xk = in[k];
        if (xk == 0.0f) continue;
        for (int p = outer[k]; p < outer[k + 1]; p++) out[inner[p]] += val[p] * xk;
      }
    } else {
      using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      Eigen::Map<const RowMat> W(l.wc.data_ptr<float>(), l.out, l.in);
      Eigen::Map<const Eigen::VectorXf> X(in, l.in);
      Eigen::Map<Eigen::VectorXf> Y(out, l.out);
      if (bp) Y = Eigen::Map<const Eigen::VectorXf>(bp, l.out);
      else Y.setZero();
      Y.noalias() += W * X;
    }
    if (l.relu) for (int64_t i = 0; i < l.out; i++) out[i] = out[i] < 0.0f ? 0.0f : out[i];
    in = out;
  }
}

void chainTiles(std::vector<ChainLayer>& L, const float* X, float* Y, int64_t B) {
  int64_t widest = L[0].in, work = 0;
  for (auto& l : L) { widest = std::max(widest, l.out); work += (l.e ? l.e->nnz : l.out * l.in) + l.out; }
  const int64_t in0 = L[0].in, outN = L.back().out;
  const int64_t tiles = (B + TILE - 1) / TILE;
  at::parallel_for(0, tiles, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, work * TILE)), [&](int64_t t0, int64_t t1) {
    std::vector<float> bufA(widest * TILE), bufB(widest * TILE);
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b0 = t * TILE, nb = std::min<int64_t>(TILE, B - b0);
      float* xt = bufA.data();
      float* yt = bufB.data();
      if (nb < TILE) std::fill(xt, xt + in0 * TILE, 0.0f);
      for (int64_t k = 0; k < in0; k++)
        for (int64_t b = 0; b < nb; b++) xt[k * TILE + b] = X[(b0 + b) * in0 + k];
      for (auto& l : L) {
        const float* bp = l.b.defined() ? l.b.data_ptr<float>() : nullptr;
        if (l.e) csrTile(l.e->csr.outer.data(), l.e->csr.inner.data(), l.e->csr.val.data(), bp, xt, TILE, yt, TILE, l.out, l.relu);
        else denseTile(l.wc.data_ptr<float>(), bp, xt, yt, l.out, l.in, l.relu);
        std::swap(xt, yt);
      }
      for (int64_t b = 0; b < nb; b++) {
        float* row = Y + (b0 + b) * outN;
        for (int64_t i = 0; i < outN; i++) row[i] = xt[i * TILE + b];
      }
    }
  });
}

// Direct sparse convolution (stride 1, dilation 1, any padding): each nonzero w[o, c, ky, kx] adds
// v times the shifted input plane x[c] to the output plane y[o], a row of ow outputs at a time
// (Park et al., "Faster CNNs with direct sparse convolutions", ICLR 2017). No im2col: at 2 to 20%
// density the unfolding cost more than the products (bench/sparse-linear.ts --part conv).
__attribute__((optimize("O3"))) TOPIARY_CLONES
void directConvImage(const int* outer, const int* inner, const float* val, const float* bias, const float* X, float* Y,
                     int64_t O, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t ph, int64_t pw, int64_t oh, int64_t ow, bool relu) {
  const int64_t plane = oh * ow, kk = kh * kw;
  for (int64_t o = 0; o < O; o++) {
    float* Yo = Y + o * plane;
    const float b = bias ? bias[o] : 0.0f;
    for (int64_t i = 0; i < plane; i++) Yo[i] = b;
    for (int p = outer[o]; p < outer[o + 1]; p++) {
      const int64_t k = inner[p], c = k / kk, r = k % kk, ky = r / kw, kx = r % kw;
      const float v = val[p];
      const int64_t oy0 = std::max<int64_t>(0, ph - ky), oy1 = std::min<int64_t>(oh, H + ph - ky);
      const int64_t ox0 = std::max<int64_t>(0, pw - kx), ox1 = std::min<int64_t>(ow, W + pw - kx);
      if (oy0 >= oy1 || ox0 >= ox1) continue;
      const float* Xc = X + c * H * W + (ky - ph) * W + (kx - pw);
      for (int64_t oy = oy0; oy < oy1; oy++) {
        const float* xr = Xc + oy * W;
        float* yr = Yo + oy * ow;
        for (int64_t ox = ox0; ox < ox1; ox++) yr[ox] += v * xr[ox];
      }
    }
    if (relu) for (int64_t i = 0; i < plane; i++) Yo[i] = Yo[i] < 0.0f ? 0.0f : Yo[i];
  }
}

}  // namespace

// sparseChain(x, weights[], biases[] (tensor or null each), relu[] (0/1 each), maxDensity[] (per layer;
// < 0: never sparse), maxDenseElements, auto, flattenStart|null, batch1Mode|null (0 auto, 1 CSR, 2 CSC;
// for measurement)) -> y. The chain is fused when some layer is sparse enough and every layer that
// is not has at most maxDenseElements elements. Otherwise, with auto, the layers run one by one in
// this call, each as Linear's automatic path runs it (libtorch's linear and relu, or the per-layer
// sparse kernel), one native call instead of one per op; without auto the result is null.
// x: float32 [..., in]; layer l: w [out_l, in_l] with in_l = out_{l-1}, optional ReLU after it.
// With auto = true inputs it does not take (grad mode on, other dtypes or devices, mismatched
// shapes) give null, and the per-layer path reports any error in its own words.
OP(sparseChain) {
  const at::Tensor& x = T(info, 0);
  std::vector<at::Tensor> ws = TL(info, 1);
  auto bs = optList(info, 2, "sparseChain: biases");
  std::vector<double> relu = numList(info, 3, "sparseChain: relu");
  std::vector<double> maxDensity = numList(info, 4, "sparseChain: maxDensity");
  const double maxDense = D(info, 5);
  const bool isAuto = B(info, 6);
  // A Flatten(startDim) before the chain, read in place: x as [prod(sizes[:startDim]), prod(sizes[startDim:])].
  const int64_t flat = isNil(info, 7) ? -1 : I(info, 7);
  g_batch1Mode = isNil(info, 8) ? 0 : static_cast<int>(I(info, 8));
  const size_t n = ws.size();
  bool ok = n > 0 && bs.size() == n && relu.size() == n && maxDensity.size() == n && x.scalar_type() == at::kFloat && x.device().is_cpu() && x.dim() >= 1 &&
            (flat < 0 || (flat >= 1 && flat < x.dim()));
  at::Tensor xv = x;
  if (ok && flat >= 1) xv = x.flatten(flat);
  if (ok && isAuto) ok = !at::GradMode::is_enabled();
  for (size_t l = 0; ok && l < n; l++) {
    const at::Tensor& w = ws[l];
    ok = w.dim() == 2 && w.scalar_type() == at::kFloat && w.device().is_cpu() && w.numel() < INT32_MAX && w.size(1) == (l == 0 ? xv.size(-1) : ws[l - 1].size(0)) &&
         (!bs[l] || (bs[l]->scalar_type() == at::kFloat && bs[l]->device().is_cpu() && bs[l]->dim() == 1 && bs[l]->size(0) == w.size(0)));
  }
  if (!ok) {
    if (isAuto) return env.Null();
    TORCH_CHECK(false, "sparseChain: the layers do not chain (each weight float32 CPU [out, in] with in equal to the previous out, the first in equal to the input's last dim ",
                x.sizes(), ", biases float32 [out] or null, one relu flag and one maxDensity per layer)");
  }
  std::vector<ChainLayer> L(n);
  bool anySparse = false, fusable = true;
  for (size_t l = 0; l < n; l++) {
    const at::Tensor& w = ws[l];
    ChainLayer& c = L[l];
    c.w = w; c.out = w.size(0); c.in = w.size(1); c.relu = relu[l] != 0;
    if (bs[l]) c.b = bs[l]->contiguous();
    Packed& e = lookup(w);
    if (maxDensity[l] >= 0 && w.numel() > 0 && static_cast<double>(e.nnz) <= maxDensity[l] * static_cast<double>(w.numel())) { c.e = &e; anySparse = true; }
    else {
      c.wc = w.contiguous();
      if (static_cast<double>(w.numel()) > maxDense) fusable = false;
    }
  }
  at::NoGradGuard ng;
  const int64_t Bn = c10::multiply_integers(xv.sizes().begin(), xv.sizes().end() - 1);
  if (!anySparse || !fusable) {
    if (!isAuto) return env.Null();
    // Not worth fusing (no layer sparse enough, or a large layer that is not): the layers one by one
    // as Linear's automatic path runs them (libtorch's linear and relu, or the per-layer sparse kernel
    // where the rule says), in this one call instead of one native call per op.
    at::Tensor h = xv.reshape({Bn, L[0].in});
    for (auto& l : L) {
      const c10::optional<at::Tensor> b = l.b.defined() ? c10::optional<at::Tensor>(l.b) : c10::nullopt;
      if (l.e && Bn > 0 && l.out > 0) {
        if (Bn == 1) { buildCsc(*l.e, l.w); h = productCsc(*l.e, h, b); }
        else { buildCsr(*l.e, l.w); h = productTiled(*l.e, h, b, false); }
      } else {
        h = at::linear(h, l.w, b);
      }
      if (l.relu) h = at::relu(h);
    }
    std::vector<int64_t> shape(xv.sizes().begin(), xv.sizes().end());
    shape.back() = L.back().out;
    RET(h.reshape(shape));
  }
  const int64_t outN = L.back().out;
  std::vector<int64_t> outShape(xv.sizes().begin(), xv.sizes().end());
  outShape.back() = outN;
  at::Tensor y = at::empty(outShape, xv.options());
  if (Bn == 0 || outN == 0 || L[0].in == 0) {
    if (Bn > 0 && outN > 0) {
      // No inputs: run the chain on zeros (the biases and ReLUs still apply).
      at::Tensor y2 = y.view({Bn, outN});
      std::vector<float> zero(std::max<int64_t>(1, L[0].in), 0.0f);
      for (int64_t b = 0; b < Bn; b++) chainBatch1(L, zero.data(), y2.data_ptr<float>() + b * outN);
    }
    RET(y);
  }
  at::Tensor xc = xv.contiguous();
  if (Bn > 1) for (size_t l = 0; l < n; l++) if (L[l].e) buildCsr(*L[l].e, L[l].w);
  if (Bn == 1) chainBatch1(L, xc.data_ptr<float>(), y.data_ptr<float>());
  else chainTiles(L, xc.data_ptr<float>(), y.data_ptr<float>(), Bn);
  RET(y);
}

// sparseConv2d(x, w, bias|null, stride[2], padding[2], dilation[2], groups, maxDensity, relu, auto)
// -> y, or null when the weight is denser than maxDensity (the caller runs the dense conv).
// x: float32 [B, C, H, W]; w: [O, C, kh, kw]; groups 1 only (auto: null for other groups). The
// input is unfolded (im2col, a few images at a time so the columns stay in cache; a 1x1 conv with
// stride 1 and no padding reads the input as is), and the CSR weight [O, C*kh*kw] multiplies each
// image's columns [C*kh*kw, oh*ow] in blocks of 16 columns; the output comes out as [B, O, oh, ow]
// (NCHW, contiguous) with the bias (and a ReLU, when asked) applied in the same pass. With stride 1
// and no dilation (LeNet-5's convs, every 3x3 of a CIFAR ResNet but the strided ones) the product is
// direct instead (directConvImage): no unfolding.
OP(sparseConv2d) {
  const at::Tensor& x = T(info, 0);
  const at::Tensor& w = T(info, 1);
  auto bias = OptT(info, 2);
  std::vector<int64_t> stride = IL(info, 3), padding = IL(info, 4), dilation = IL(info, 5);
  const int64_t groups = I(info, 6);
  const double maxDensity = D(info, 7);
  const bool relu = B(info, 8);
  const bool isAuto = B(info, 9);
  bool ok = x.dim() == 4 && w.dim() == 4 && groups == 1 && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat && x.device().is_cpu() && w.device().is_cpu() &&
            x.size(1) == w.size(1) && stride.size() == 2 && padding.size() == 2 && dilation.size() == 2 && w.numel() < INT32_MAX &&
            (!bias || (bias->scalar_type() == at::kFloat && bias->device().is_cpu() && bias->dim() == 1 && bias->size(0) == w.size(0)));
  if (ok && isAuto) ok = !at::GradMode::is_enabled();
  int64_t oh = 0, ow = 0;
  if (ok) {
    oh = (x.size(2) + 2 * padding[0] - dilation[0] * (w.size(2) - 1) - 1) / stride[0] + 1;
    ow = (x.size(3) + 2 * padding[1] - dilation[1] * (w.size(3) - 1) - 1) / stride[1] + 1;
    ok = oh > 0 && ow > 0;
  }
  if (!ok) {
    if (isAuto) return env.Null();
    TORCH_CHECK(false, "sparseConv2d: takes a float32 CPU input [B, C, H, W] and weight [O, C, kh, kw] with groups 1 and a positive output size; got input ",
                x.sizes(), ", weight ", w.sizes(), ", groups ", groups);
  }
  const int64_t O = w.size(0), K = w.size(1) * w.size(2) * w.size(3), Bn = x.size(0), Lc = oh * ow;
  Packed& e = lookupAs(w, O, K);
  if (w.numel() > 0 && static_cast<double>(e.nnz) > maxDensity * static_cast<double>(w.numel())) return env.Null();
  at::NoGradGuard ng;
  buildCsr(e, w);
  at::Tensor y = at::empty({Bn, O, oh, ow}, x.options());
  if (Bn == 0) RET(y);
  at::Tensor xc = x.contiguous();
  at::Tensor bc = bias ? bias->contiguous() : at::Tensor();
  const float* bp = bias ? bc.data_ptr<float>() : nullptr;
  // Stride 1 and no dilation: the direct product, no unfolding (see directConvImage).
  if (stride[0] == 1 && stride[1] == 1 && dilation[0] == 1 && dilation[1] == 1) {
    const float* X = xc.data_ptr<float>();
    float* Yp = y.data_ptr<float>();
    const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
    at::parallel_for(0, Bn, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++)
        directConvImage(e.csr.outer.data(), e.csr.inner.data(), e.csr.val.data(), bp, X + b * C * H * W, Yp + b * O * Lc,
                        O, H, W, w.size(2), w.size(3), padding[0], padding[1], oh, ow, relu);
    });
    RET(y);
  }
  const bool direct = w.size(2) == 1 && w.size(3) == 1 && stride[0] == 1 && stride[1] == 1 && padding[0] == 0 && padding[1] == 0;
  const int* outer = e.csr.outer.data();
  const int* inner = e.csr.inner.data();
  const float* val = e.csr.val.data();
  float* Y = y.data_ptr<float>();
  // Images per im2col call: about 1 MB of columns at a time.
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(Bn, (1 << 18) / std::max<int64_t>(1, K * Lc)));
  at::parallel_for(0, (Bn + chunk - 1) / chunk, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      const int64_t b0 = c * chunk, nb = std::min<int64_t>(chunk, Bn - b0);
      at::Tensor cols = direct ? xc.narrow(0, b0, nb).reshape({nb, K, Lc})
                               : at::im2col(xc.narrow(0, b0, nb), {w.size(2), w.size(3)}, dilation, padding, stride).contiguous();
      const float* C = cols.data_ptr<float>();
      for (int64_t b = 0; b < nb; b++) {
        const float* Xb = C + b * K * Lc;
        float* Yb = Y + (b0 + b) * O * Lc;
        int64_t j = 0;
        for (; j + TILE <= Lc; j += TILE) csrTile(outer, inner, val, bp, Xb + j, Lc, Yb + j, Lc, O, relu);
        if (j < Lc) csrNarrow(outer, inner, val, bp, Xb + j, Lc, Yb + j, Lc, O, Lc - j, relu);
      }
    }
  });
  RET(y);
}

// tensorVersions(tensors[]) -> their version counters (libtorch bumps one at every in-place change:
// optimizer steps, copy_, masking), so a cache built from tensors knows when it is stale.
OP(tensorVersions) {
  std::vector<at::Tensor> ts = TL(info, 0);
  auto a = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(ts[i]._version())));
  return a;
}
