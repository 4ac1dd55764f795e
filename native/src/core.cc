// Boxing, argument readers, module init; creation, data transfer, autograd, RNG, threads.
#include "common.h"
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/autograd/function.h>
#include <cmath>
#include <cstring>
#include <torch/version.h>
#include <dlfcn.h>
#include <malloc.h>

namespace topiary {

std::vector<OpEntry>& registry() {
  static std::vector<OpEntry> r;
  return r;
}

std::string cleanMessage(const std::string& msg) {
  // libtorch appends "Exception raised from ... (most recent call first)" and frames: keep the first part.
  std::string m = msg;
  auto p = m.find("\nException raised from");
  if (p != std::string::npos) m = m.substr(0, p);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// Live boxes and their element bytes, for memory(): a training loop must keep both flat.
// Per thread: the addon may be loaded in several worker_threads at once (each its own napi env on
// its own thread, e.g. HIER-MOEA's evaluation pool). A box is made, disposed and finalized on its
// env's thread (basic finalizers run in that isolate's GC, and at env teardown on the same thread),
// so each JS thread counts exactly its own tensors, and the counters need no atomics.
static thread_local int64_t g_live = 0, g_bytes = 0;
// Depth of the TypeScript tidy scopes (set by tidy); tensors made at depth > 0 are not reported to V8.
// Per thread for the same reason: each thread has its own tidy stack.
static thread_local int g_scope_depth = 0;

void throwToJs(Napi::Env env, const Napi::Error& e) noexcept {
  try {
    e.ThrowAsJavaScriptException();
  } catch (...) {
    // The environment is shutting down: there is no JS left to receive the error.
  }
}

// V8's external-memory hint; its status is ignored (node-addon-api's wrapper aborts the process on a
// failed status, and a finalizer running at env teardown must never do that).
static void adjustExternal(node_api_basic_env env, int64_t change) {
  int64_t ignored = 0;
  (void)napi_adjust_external_memory(env, change, &ignored);
}

void release(Napi::BasicEnv env, Box* b) {
  if (!b->t.defined()) return;
  if (b->reported && b->bytes) adjustExternal(env, -b->bytes);
  b->reported = false;
  g_live -= 1;
  g_bytes -= b->bytes;
  b->bytes = 0;
  b->t.reset();
}

// A basic finalizer (BasicEnv, built with NAPI_EXPERIMENTAL) runs inside the GC. A plain one is
// queued to the event loop, and a synchronous training loop never yields: every handle it made
// stayed pending (about 600 bytes each), so RSS grew without bound over thousands of steps.
// It may only adjust counters: the external-memory adjustment here is always a decrease.
static void finalize(Napi::BasicEnv env, Box* b) {
  release(env, b);
  delete b;
}

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  auto* b = new Box{std::move(t), 0};
  b->bytes = static_cast<int64_t>(b->t.numel()) * static_cast<int64_t>(b->t.element_size());
  if (b->bytes && g_scope_depth == 0) {
    adjustExternal(env, b->bytes);
    b->reported = true;
  }
  g_live += 1;
  g_bytes += b->bytes;
  return Napi::External<Box>::New(env, b, finalize);
}

Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  auto arr = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) arr.Set(static_cast<uint32_t>(i), wrap(env, ts[i]));
  return arr;
}

static std::string argName(size_t i) { return "argument " + std::to_string(i); }

bool isTensor(const Napi::Value& v) { return v.IsExternal(); }

bool isNil(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() <= i || info[i].IsUndefined() || info[i].IsNull();
}

static const at::Tensor& unbox(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (!v.IsExternal()) throw Napi::TypeError::New(env, what + " must be a tensor");
  Box* b = v.As<Napi::External<Box>>().Data();
  if (!b->t.defined()) throw Napi::Error::New(env, what + ": tensor was disposed");
  return b->t;
}

const at::Tensor& T(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i) throw Napi::TypeError::New(info.Env(), argName(i) + " is missing");
  return unbox(info.Env(), info[i], argName(i));
}

c10::optional<at::Tensor> OptT(const Napi::CallbackInfo& info, size_t i) {
  if (isNil(info, i)) return c10::nullopt;
  return T(info, i);
}

at::Scalar toScalar(const Napi::Value& v) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), "expected a number");
  double d = v.As<Napi::Number>().DoubleValue();
  // A JS integer acts as a Python int (keeps integer dtypes), anything else as a Python float.
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.007199254740992e15) return at::Scalar(static_cast<int64_t>(d));
  return at::Scalar(d);
}

at::Scalar S(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i) throw Napi::TypeError::New(info.Env(), argName(i) + " is missing");
  return toScalar(info[i]);
}

c10::optional<at::Scalar> OptS(const Napi::CallbackInfo& info, size_t i) {
  if (isNil(info, i)) return c10::nullopt;
  return S(info, i);
}

double D(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), argName(i) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

int64_t I(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), argName(i) + " must be an integer");
  return info[i].As<Napi::Number>().Int64Value();
}

c10::optional<int64_t> OptI(const Napi::CallbackInfo& info, size_t i) {
  if (isNil(info, i)) return c10::nullopt;
  return I(info, i);
}

bool B(const Napi::CallbackInfo& info, size_t i, bool dflt) {
  if (isNil(info, i)) return dflt;
  return info[i].ToBoolean().Value();
}

std::vector<int64_t> IL(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsArray()) throw Napi::TypeError::New(info.Env(), argName(i) + " must be an array of integers");
  auto a = info[i].As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), argName(i) + " must be an array of integers");
    out[k] = v.As<Napi::Number>().Int64Value();
  }
  return out;
}

std::vector<at::Tensor> TL(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsArray()) throw Napi::TypeError::New(info.Env(), argName(i) + " must be an array of tensors");
  auto a = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) out.push_back(unbox(info.Env(), a.Get(k), argName(i) + "[" + std::to_string(k) + "]"));
  return out;
}

std::string Str(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), argName(i) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

at::TensorOptions Opts(const Napi::CallbackInfo& info, size_t dtypeIdx, size_t deviceIdx) {
  at::TensorOptions o;
  if (!isNil(info, dtypeIdx)) o = o.dtype(static_cast<at::ScalarType>(I(info, dtypeIdx)));
  if (!isNil(info, deviceIdx)) o = o.device(at::Device(Str(info, deviceIdx)));
  return o;
}

}  // namespace topiary

using namespace topiary;

// ---- lifetime and metadata -------------------------------------------------------------------
OP(dispose) {
  if (!info[0].IsExternal()) return env.Undefined();
  release(env, info[0].As<Napi::External<Box>>().Data());
  return env.Undefined();
}
OP(isDisposed) {
  if (!info[0].IsExternal()) return Napi::Boolean::New(env, true);
  return Napi::Boolean::New(env, !info[0].As<Napi::External<Box>>().Data()->t.defined());
}
OP(memoryStats) {
  auto o = Napi::Object::New(env);
  o.Set("tensors", Napi::Number::New(env, static_cast<double>(topiary::g_live)));
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(topiary::g_bytes)));
  return o;
}
OP(shape) {
  auto s = T(info, 0).sizes();
  auto a = Napi::Array::New(env, s.size());
  for (size_t i = 0; i < s.size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(s[i])));
  return a;
}
OP(dtype) { return Napi::Number::New(env, static_cast<int>(T(info, 0).scalar_type())); }
OP(device) { return Napi::String::New(env, T(info, 0).device().str()); }
OP(numel) { return Napi::Number::New(env, static_cast<double>(T(info, 0).numel())); }
OP(dim) { return Napi::Number::New(env, static_cast<double>(T(info, 0).dim())); }
OP(isContiguous) { return Napi::Boolean::New(env, T(info, 0).is_contiguous()); }
OP(item) {
  const auto& t = T(info, 0);
  if (t.numel() != 1) throw Napi::Error::New(env, "item: a tensor with " + std::to_string(t.numel()) + " elements cannot be converted to a number");
  auto s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
  return Napi::Number::New(env, s.toDouble());
}
OP(sameStorage) { return Napi::Boolean::New(env, T(info, 0).is_alias_of(T(info, 1))); }

// ---- creation and data transfer ----------------------------------------------------------------
// fromBuffer(typedArray, shape, dtype, device): copies the bytes (the JS buffer may move).
OP(fromBuffer) {
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "fromBuffer: argument 0 must be a typed array");
  auto ta = info[0].As<Napi::TypedArray>();
  auto shape = IL(info, 1);
  auto st = static_cast<at::ScalarType>(I(info, 2));
  int64_t n = 1;
  for (auto d : shape) n *= d;
  size_t esz = at::elementSize(st);
  if (static_cast<int64_t>(ta.ByteLength()) != n * static_cast<int64_t>(esz))
    throw Napi::Error::New(env, "fromBuffer: buffer holds " + std::to_string(ta.ByteLength()) + " bytes, shape needs " + std::to_string(n * esz));
  auto ab = ta.ArrayBuffer();
  uint8_t* data = static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset();
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(st));
  if (n) std::memcpy(t.data_ptr(), data, n * esz);
  if (!isNil(info, 3)) {
    at::Device dev(Str(info, 3));
    if (!dev.is_cpu()) t = t.to(dev);
  }
  RET(t);
}
// toBuffer(t) -> ArrayBuffer holding the contiguous CPU bytes.
OP(toBuffer) {
  at::Tensor t = T(info, 0).detach();
  if (!t.device().is_cpu()) t = t.cpu();
  t = t.contiguous();
  size_t nb = t.numel() * t.element_size();
  auto ab = Napi::ArrayBuffer::New(env, nb);
  if (nb) std::memcpy(ab.Data(), t.data_ptr(), nb);
  return ab;
}
OP(scalarTensor) { RET(at::scalar_tensor(S(info, 0), Opts(info, 1, 2))); }
OP(zeros) { RET(at::zeros(IL(info, 0), Opts(info, 1, 2))); }
OP(ones) { RET(at::ones(IL(info, 0), Opts(info, 1, 2))); }
OP(empty) { RET(at::empty(IL(info, 0), Opts(info, 1, 2))); }
OP(full) { RET(at::full(IL(info, 0), S(info, 1), Opts(info, 2, 3))); }
OP(arange) { RET(at::arange(S(info, 0), S(info, 1), S(info, 2), Opts(info, 3, 4))); }
OP(eye) { RET(at::eye(I(info, 0), I(info, 1), Opts(info, 2, 3))); }
OP(linspace) { RET(at::linspace(S(info, 0), S(info, 1), I(info, 2), Opts(info, 3, 4))); }
OP(rand) { RET(at::rand(IL(info, 0), Opts(info, 1, 2))); }
OP(randn) { RET(at::randn(IL(info, 0), Opts(info, 1, 2))); }
OP(randint) { RET(at::randint(I(info, 0), I(info, 1), IL(info, 2), Opts(info, 3, 4))); }
OP(randperm) { RET(at::randperm(I(info, 0), Opts(info, 1, 2))); }
OP(bernoulli) {
  if (isNil(info, 1)) RET(at::bernoulli(T(info, 0)));
  RET(at::bernoulli(T(info, 0), D(info, 1)));
}
OP(multinomial) { RET(at::multinomial(T(info, 0), I(info, 1), B(info, 2))); }
OP(uniform_) { T(info, 0).uniform_(D(info, 1), D(info, 2)); return info[0]; }
OP(normal_) { T(info, 0).normal_(D(info, 1), D(info, 2)); return info[0]; }
OP(to) {
  const auto& t = T(info, 0);
  at::Tensor r = t;
  if (!isNil(info, 2)) r = r.to(at::Device(Str(info, 2)));
  if (!isNil(info, 1)) r = r.to(static_cast<at::ScalarType>(I(info, 1)));
  RET(r);
}
OP(clone) { RET(T(info, 0).clone()); }
OP(contiguous) { RET(T(info, 0).contiguous()); }
OP(detach) { RET(T(info, 0).detach()); }
OP(alias) { RET(T(info, 0)); }
OP(equal) { return Napi::Boolean::New(env, T(info, 0).equal(T(info, 1))); }
OP(allclose) { return Napi::Boolean::New(env, T(info, 0).allclose(T(info, 1), D(info, 2), D(info, 3))); }

// ---- autograd -----------------------------------------------------------------------------------
OP(requiresGrad) { return Napi::Boolean::New(env, T(info, 0).requires_grad()); }
OP(setRequiresGrad) { T(info, 0).requires_grad_(B(info, 1, true)); return info[0]; }
OP(isLeaf) { return Napi::Boolean::New(env, T(info, 0).is_leaf()); }
OP(grad) { RET(T(info, 0).grad()); }
OP(setGrad) {
  at::Tensor t = T(info, 0);
  if (isNil(info, 1)) t.mutable_grad() = at::Tensor();
  else t.mutable_grad() = T(info, 1);
  return env.Undefined();
}
OP(gradFnName) {
  const auto& fn = T(info, 0).grad_fn();
  if (!fn) return env.Null();
  return Napi::String::New(env, fn->name());
}
OP(backward) {
  at::Tensor t = T(info, 0);
  c10::optional<at::Tensor> g = OptT(info, 1);
  bool retain = B(info, 2), create = B(info, 3);
  t.backward(g.has_value() ? *g : at::Tensor(), retain, create);
  return env.Undefined();
}
// grad(outputs, inputs, gradOutputs|null, retainGraph, createGraph, allowUnused)
OP(autogradGrad) {
  auto outs = TL(info, 0), ins = TL(info, 1);
  std::vector<at::Tensor> gos;
  if (!isNil(info, 2)) gos = TL(info, 2);
  bool create = B(info, 4);
  c10::optional<bool> retain;
  if (!isNil(info, 3)) retain = B(info, 3);
  auto res = torch::autograd::grad(outs, ins, gos, retain, create, B(info, 5));
  return wrapList(env, res);
}
OP(setGradEnabled) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(B(info, 0, true));
  return Napi::Boolean::New(env, prev);
}
OP(isGradEnabled) { return Napi::Boolean::New(env, at::GradMode::is_enabled()); }

// ---- global state -------------------------------------------------------------------------------
OP(manualSeed) {
  at::manual_seed(static_cast<uint64_t>(I(info, 0)));
  return env.Undefined();
}
// Debian's OpenBLAS keeps its own thread pool, which at::set_num_threads does not reach.
static void setBlasThreads(int n) {
  using Fn = void (*)(int);
  if (auto f = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
}
OP(setNumThreads) {
  int n = static_cast<int>(I(info, 0));
  at::set_num_threads(n);
  setBlasThreads(n);
  return env.Undefined();
}
OP(setScopeDepth) { g_scope_depth = static_cast<int>(I(info, 0)); return env.Undefined(); }
// A tensor that outlives the scopes (kept, or returned from the outermost tidy) is reported to V8 now.
OP(reportExternal) {
  if (!info[0].IsExternal()) return env.Undefined();
  Box* b = info[0].As<Napi::External<Box>>().Data();
  if (b->t.defined() && !b->reported && b->bytes) {
    adjustExternal(env, b->bytes);
    b->reported = true;
  }
  return env.Undefined();
}
OP(getNumThreads) { return Napi::Number::New(env, at::get_num_threads()); }
OP(cudaAvailable) { return Napi::Boolean::New(env, at::hasCUDA()); }
OP(version) { return Napi::String::New(env, TORCH_VERSION); }
OP(setDeterministic) { at::globalContext().setDeterministicAlgorithms(B(info, 0, true), false); return env.Undefined(); }

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
#if defined(__GLIBC__)
  // A training step frees its whole scope at once; with glibc's defaults that memory goes back to the
  // OS and is faulted in again next step (4x PyTorch's page faults on ResNet-20). Keep it mapped.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
#endif
  for (const auto& e : registry()) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  return exports;
}
NODE_API_MODULE(topiary_native, Init)
