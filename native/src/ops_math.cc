// Elementwise, comparison, logical, reductions, sorting; in-place arithmetic.
#include "common.h"
using namespace topiary;

// Binary ops take a tensor or a JS number as the second operand (PyTorch's scalar rules).
#define BINARY(NAME, FN)                                      \
  OP(NAME) {                                                  \
    const auto& a = T(info, 0);                               \
    if (isTensor(info[1])) RET(at::FN(a, T(info, 1)));        \
    RET(at::FN(a, S(info, 1)));                               \
  }
#define UNARY(NAME, FN) OP(NAME) { RET(at::FN(T(info, 0))); }

OP(add) {
  const auto& a = T(info, 0);
  at::Scalar alpha = isNil(info, 2) ? at::Scalar(1) : S(info, 2);
  if (isTensor(info[1])) RET(at::add(a, T(info, 1), alpha));
  RET(at::add(a, S(info, 1), alpha));
}
OP(sub) {
  const auto& a = T(info, 0);
  at::Scalar alpha = isNil(info, 2) ? at::Scalar(1) : S(info, 2);
  if (isTensor(info[1])) RET(at::sub(a, T(info, 1), alpha));
  RET(at::sub(a, S(info, 1), alpha));
}
OP(rsub) { RET(at::rsub(T(info, 0), S(info, 1))); }  // scalar - tensor
OP(rdiv) { RET(at::reciprocal(T(info, 0)).mul(S(info, 1))); }
BINARY(mul, mul)
BINARY(div, div)
BINARY(pow, pow)
BINARY(remainder, remainder)
BINARY(eq, eq)
BINARY(ne, ne)
BINARY(lt, lt)
BINARY(le, le)
BINARY(gt, gt)
BINARY(ge, ge)
OP(maximum) { RET(at::maximum(T(info, 0), T(info, 1))); }
OP(minimum) { RET(at::minimum(T(info, 0), T(info, 1))); }
OP(logicalAnd) { RET(at::logical_and(T(info, 0), T(info, 1))); }
OP(logicalOr) { RET(at::logical_or(T(info, 0), T(info, 1))); }
OP(logicalXor) { RET(at::logical_xor(T(info, 0), T(info, 1))); }
UNARY(logicalNot, logical_not)
UNARY(neg, neg)
UNARY(abs, abs)
UNARY(sign, sign)
UNARY(exp, exp)
UNARY(log, log)
UNARY(sqrt, sqrt)
UNARY(rsqrt, rsqrt)
UNARY(square, square)
UNARY(reciprocal, reciprocal)
UNARY(sin, sin)
UNARY(cos, cos)
UNARY(floor, floor)
UNARY(ceil, ceil)
UNARY(round, round)
UNARY(relu, relu)
UNARY(sigmoid, sigmoid)
UNARY(tanh, tanh)
UNARY(isnan, isnan)
UNARY(isfinite, isfinite)
OP(clamp) { RET(at::clamp(T(info, 0), OptS(info, 1), OptS(info, 2))); }
OP(where) {
  const auto& c = T(info, 0);
  // A number branch follows torch.where's scalar overloads: where(c, intTensor, 0.5) is float,
  // where(c, 1, 0) is int64 (building the scalar with the other branch's dtype truncated 0.5 to 0).
  bool ta = isTensor(info[1]), tb = isTensor(info[2]);
  if (ta && tb) RET(at::where(c, T(info, 1), T(info, 2)));
  if (ta) RET(at::where(c, T(info, 1), S(info, 2)));
  if (tb) RET(at::where(c, S(info, 1), T(info, 2)));
  RET(at::where(c, S(info, 1), S(info, 2)));
}

// ---- reductions ------------------------------------------------------------------------------------
// dims: null (all) or an array; keepdim flag.
OP(sum) {
  const auto& t = T(info, 0);
  if (isNil(info, 1)) RET(at::sum(t));
  RET(at::sum(t, IL(info, 1), B(info, 2)));
}
OP(mean) {
  const auto& t = T(info, 0);
  if (isNil(info, 1)) RET(at::mean(t));
  RET(at::mean(t, IL(info, 1), B(info, 2)));
}
OP(varOp) {
  const auto& t = T(info, 0);
  bool unbiased = B(info, 3, true);
  if (isNil(info, 1)) RET(at::var(t, unbiased));
  RET(at::var(t, at::IntArrayRef(IL(info, 1)), unbiased, B(info, 2)));
}
OP(stdOp) {
  const auto& t = T(info, 0);
  bool unbiased = B(info, 3, true);
  if (isNil(info, 1)) RET(at::std(t, unbiased));
  RET(at::std(t, at::IntArrayRef(IL(info, 1)), unbiased, B(info, 2)));
}
OP(prod) { RET(at::prod(T(info, 0))); }
// max/min: no dim -> value; with dim -> [values, indices].
OP(max) {
  const auto& t = T(info, 0);
  if (isNil(info, 1)) RET(at::max(t));
  auto r = at::max(t, I(info, 1), B(info, 2));
  return wrapList(env, {std::get<0>(r), std::get<1>(r)});
}
OP(min) {
  const auto& t = T(info, 0);
  if (isNil(info, 1)) RET(at::min(t));
  auto r = at::min(t, I(info, 1), B(info, 2));
  return wrapList(env, {std::get<0>(r), std::get<1>(r)});
}
OP(argmax) { RET(at::argmax(T(info, 0), OptI(info, 1), B(info, 2))); }
OP(argmin) { RET(at::argmin(T(info, 0), OptI(info, 1), B(info, 2))); }
OP(norm) {
  const auto& t = T(info, 0);
  at::Scalar p = isNil(info, 1) ? at::Scalar(2) : S(info, 1);
  if (isNil(info, 2)) RET(at::norm(t, p));
  RET(at::norm(t, p, IL(info, 2), B(info, 3)));
}
OP(topk) {
  auto r = at::topk(T(info, 0), I(info, 1), isNil(info, 2) ? -1 : I(info, 2), B(info, 3, true), B(info, 4, true));
  return wrapList(env, {std::get<0>(r), std::get<1>(r)});
}
OP(sort) {
  // Stable, so that ties keep index order: pruning thresholds break ties deterministically.
  auto r = at::sort(T(info, 0), c10::optional<bool>(true), isNil(info, 1) ? -1 : I(info, 1), B(info, 2));
  return wrapList(env, {std::get<0>(r), std::get<1>(r)});
}
OP(argsort) {
  auto r = at::sort(T(info, 0), c10::optional<bool>(true), isNil(info, 1) ? -1 : I(info, 1), B(info, 2));
  RET(std::get<1>(r));
}
OP(kthvalue) {
  auto r = at::kthvalue(T(info, 0), I(info, 1), isNil(info, 2) ? -1 : I(info, 2), B(info, 3));
  return wrapList(env, {std::get<0>(r), std::get<1>(r)});
}
OP(quantile) {
  const auto& t = T(info, 0);
  std::string interp = isNil(info, 4) ? "linear" : Str(info, 4);
  if (isTensor(info[1])) RET(at::quantile(t, T(info, 1), OptI(info, 2), B(info, 3), interp));
  RET(at::quantile(t, D(info, 1), OptI(info, 2), B(info, 3), interp));
}
OP(cumsum) { RET(at::cumsum(T(info, 0), I(info, 1))); }
OP(countNonzero) { RET(at::count_nonzero(T(info, 0))); }
OP(all) { RET(at::all(T(info, 0))); }
OP(any) { RET(at::any(T(info, 0))); }

// ---- in place (return the same handle) -----------------------------------------------------------
OP(add_) {
  at::Tensor t = T(info, 0);
  at::Scalar alpha = isNil(info, 2) ? at::Scalar(1) : S(info, 2);
  if (isTensor(info[1])) t.add_(T(info, 1), alpha);
  else t.add_(S(info, 1), alpha);
  return info[0];
}
OP(sub_) {
  at::Tensor t = T(info, 0);
  if (isTensor(info[1])) t.sub_(T(info, 1));
  else t.sub_(S(info, 1));
  return info[0];
}
OP(mul_) {
  at::Tensor t = T(info, 0);
  if (isTensor(info[1])) t.mul_(T(info, 1));
  else t.mul_(S(info, 1));
  return info[0];
}
OP(div_) {
  at::Tensor t = T(info, 0);
  if (isTensor(info[1])) t.div_(T(info, 1));
  else t.div_(S(info, 1));
  return info[0];
}
OP(addcmul_) { at::Tensor t = T(info, 0); t.addcmul_(T(info, 1), T(info, 2), S(info, 3)); return info[0]; }
OP(addcdiv_) { at::Tensor t = T(info, 0); t.addcdiv_(T(info, 1), T(info, 2), S(info, 3)); return info[0]; }
OP(lerp_) { at::Tensor t = T(info, 0); t.lerp_(T(info, 1), S(info, 2)); return info[0]; }
OP(copy_) { at::Tensor t = T(info, 0); t.copy_(T(info, 1)); return info[0]; }
OP(zero_) { at::Tensor t = T(info, 0); t.zero_(); return info[0]; }
OP(fill_) { at::Tensor t = T(info, 0); t.fill_(S(info, 1)); return info[0]; }
OP(clamp_) { at::Tensor t = T(info, 0); t.clamp_(OptS(info, 1), OptS(info, 2)); return info[0]; }
OP(sqrt_) { at::Tensor t = T(info, 0); t.sqrt_(); return info[0]; }
OP(maskedFill_) {
  at::Tensor t = T(info, 0);
  if (isTensor(info[2])) t.masked_fill_(T(info, 1), T(info, 2));
  else t.masked_fill_(T(info, 1), S(info, 2));
  return info[0];
}
OP(maskedScatter_) { at::Tensor t = T(info, 0); t.masked_scatter_(T(info, 1), T(info, 2)); return info[0]; }
OP(indexPut_) {
  at::Tensor t = T(info, 0);
  c10::List<c10::optional<at::Tensor>> idx;
  for (auto& x : TL(info, 1)) idx.push_back(x);
  t.index_put_(idx, T(info, 2), B(info, 3));
  return info[0];
}
OP(bernoulli_) { at::Tensor t = T(info, 0); t.bernoulli_(D(info, 1)); return info[0]; }

// Fused SGD over a parameter list, in one native call per step (PyTorch's algorithm, incl. Nesterov).
// sgdStep(params, grads, bufs|null entries via [] , lr, momentum, dampening, weightDecay, nesterov, first)
OP(sgdStep) {
  at::NoGradGuard ng;
  auto ps = TL(info, 0), gs = TL(info, 1), bufs = TL(info, 2);
  double lr = D(info, 3), mom = D(info, 4), damp = D(info, 5), wd = D(info, 6);
  bool nesterov = B(info, 7), first = B(info, 8);
  for (size_t i = 0; i < ps.size(); i++) {
    at::Tensor p = ps[i], d = gs[i];
    if (wd != 0) d = d.add(p, wd);
    if (mom != 0) {
      at::Tensor b = bufs[i];
      if (first) b.copy_(d);
      else b.mul_(mom).add_(d, 1 - damp);
      d = nesterov ? d.add(b, mom) : b;
    }
    p.add_(d, -lr);
  }
  return env.Undefined();
}
