// Shared pieces of the addon: the tensor box, the guard that turns every C++ error into a
// JS exception, argument readers, and the op registry. Each op is `OP(name) { ... }`.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>
#include <string>
#include <vector>

namespace topiary {

// A JS handle owns one Box; dispose() empties it at once, the finalizer is the safety net.
struct Box {
  at::Tensor t;
  int64_t bytes = 0;
  // Whether `bytes` was reported to V8. Tensors born inside a tidy scope are freed by the scope,
  // so V8 need not know them: reporting every one made V8 run full collections several times a step.
  bool reported = false;
};

using Callback = Napi::Value (*)(const Napi::CallbackInfo&);
struct OpEntry { const char* name; Callback fn; };
std::vector<OpEntry>& registry();
struct Registrar { Registrar(const char* name, Callback fn) { registry().push_back({name, fn}); } };

std::string cleanMessage(const std::string& msg);
Napi::Value wrap(Napi::Env env, at::Tensor t);
Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts);

// Argument readers: each throws a JS TypeError naming the argument when it does not fit.
const at::Tensor& T(const Napi::CallbackInfo& info, size_t i);
bool isTensor(const Napi::Value& v);
bool isNil(const Napi::CallbackInfo& info, size_t i);
c10::optional<at::Tensor> OptT(const Napi::CallbackInfo& info, size_t i);
at::Scalar S(const Napi::CallbackInfo& info, size_t i);
at::Scalar toScalar(const Napi::Value& v);
c10::optional<at::Scalar> OptS(const Napi::CallbackInfo& info, size_t i);
double D(const Napi::CallbackInfo& info, size_t i);
int64_t I(const Napi::CallbackInfo& info, size_t i);
c10::optional<int64_t> OptI(const Napi::CallbackInfo& info, size_t i);
bool B(const Napi::CallbackInfo& info, size_t i, bool dflt = false);
std::vector<int64_t> IL(const Napi::CallbackInfo& info, size_t i);
std::vector<at::Tensor> TL(const Napi::CallbackInfo& info, size_t i);
std::string Str(const Napi::CallbackInfo& info, size_t i);
at::TensorOptions Opts(const Napi::CallbackInfo& info, size_t dtypeIdx, size_t deviceIdx);

}  // namespace topiary

#define TOPIARY_CATCH(NAME)                                                                      \
  catch (const Napi::Error&) { throw; }                                                           \
  catch (const c10::Error& e) {                                                                   \
    throw Napi::Error::New(env, std::string(NAME) + ": " + topiary::cleanMessage(e.what_without_backtrace())); \
  }                                                                                               \
  catch (const std::exception& e) {                                                               \
    throw Napi::Error::New(env, std::string(NAME) + ": " + topiary::cleanMessage(e.what()));       \
  }                                                                                               \
  catch (...) { throw Napi::Error::New(env, std::string(NAME) + ": unknown native error"); }

namespace topiary {
// Throws e into JS and swallows any failure to do so. napi_throw fails while a worker thread is
// being terminated (JS can no longer run); node-addon-api's own wrapper would then throw a C++
// Napi::Error out of the callback and std::terminate the whole process.
void throwToJs(Napi::Env env, const Napi::Error& e) noexcept;
}  // namespace topiary

// Every exported function goes through this one guard: nothing native can abort the process,
// and no C++ exception leaves it (not even one raised while turning an error into a JS one).
#define OP(NAME)                                                                                  \
  static Napi::Value NAME##_impl(const Napi::CallbackInfo& info, Napi::Env env);                  \
  static Napi::Value NAME##_entry(const Napi::CallbackInfo& info) {                               \
    Napi::Env env = info.Env();                                                                   \
    try {                                                                                         \
      try { return NAME##_impl(info, env); }                                                      \
      TOPIARY_CATCH(#NAME)                                                                        \
    } catch (const Napi::Error& e) {                                                              \
      topiary::throwToJs(env, e);                                                                 \
    } catch (...) {                                                                               \
    }                                                                                             \
    return Napi::Value();                                                                         \
  }                                                                                               \
  static topiary::Registrar NAME##_reg(#NAME, NAME##_entry);                                      \
  static Napi::Value NAME##_impl(const Napi::CallbackInfo& info, Napi::Env env)

#define RET(expr) return topiary::wrap(env, (expr))
