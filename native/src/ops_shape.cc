// Shape and indexing ops.
#include "common.h"
using namespace topiary;

OP(reshape) { RET(T(info, 0).reshape(IL(info, 1))); }
OP(view) { RET(T(info, 0).view(IL(info, 1))); }
OP(flatten) { RET(T(info, 0).flatten(I(info, 1), I(info, 2))); }
OP(permute) { RET(T(info, 0).permute(IL(info, 1))); }
OP(transpose) { RET(T(info, 0).transpose(I(info, 1), I(info, 2))); }
OP(squeeze) {
  if (isNil(info, 1)) RET(T(info, 0).squeeze());
  RET(T(info, 0).squeeze(I(info, 1)));
}
OP(unsqueeze) { RET(T(info, 0).unsqueeze(I(info, 1))); }
OP(expand) { RET(T(info, 0).expand(IL(info, 1))); }
OP(repeat) { RET(T(info, 0).repeat(IL(info, 1))); }
OP(cat) { RET(at::cat(TL(info, 0), I(info, 1))); }
OP(stack) { RET(at::stack(TL(info, 0), I(info, 1))); }
OP(narrow) { RET(T(info, 0).narrow(I(info, 1), I(info, 2), I(info, 3))); }
OP(slice) { RET(T(info, 0).slice(I(info, 1), OptI(info, 2), OptI(info, 3), isNil(info, 4) ? 1 : I(info, 4))); }
OP(select) { RET(T(info, 0).select(I(info, 1), I(info, 2))); }
OP(indexSelect) { RET(at::index_select(T(info, 0), I(info, 1), T(info, 2))); }
OP(gather) { RET(at::gather(T(info, 0), I(info, 1), T(info, 2))); }
OP(scatter) {
  const auto& t = T(info, 0);
  if (isTensor(info[3])) RET(at::scatter(t, I(info, 1), T(info, 2), T(info, 3)));
  RET(at::scatter(t, I(info, 1), T(info, 2), S(info, 3)));
}
OP(scatterAdd) { RET(at::scatter_add(T(info, 0), I(info, 1), T(info, 2), T(info, 3))); }
OP(maskedFill) {
  const auto& t = T(info, 0);
  if (isTensor(info[2])) RET(at::masked_fill(t, T(info, 1), T(info, 2)));
  RET(at::masked_fill(t, T(info, 1), S(info, 2)));
}
OP(maskedSelect) { RET(at::masked_select(T(info, 0), T(info, 1))); }
OP(nonzero) { RET(at::nonzero(T(info, 0))); }
OP(tril) { RET(at::tril(T(info, 0), isNil(info, 1) ? 0 : I(info, 1))); }
OP(flip) { RET(at::flip(T(info, 0), IL(info, 1))); }
OP(roll) { RET(at::roll(T(info, 0), IL(info, 1), IL(info, 2))); }
OP(pad) { RET(at::constant_pad_nd(T(info, 0), IL(info, 1), isNil(info, 2) ? at::Scalar(0) : S(info, 2))); }
OP(bincount) { RET(at::bincount(T(info, 0), OptT(info, 1), isNil(info, 2) ? 0 : I(info, 2))); }
OP(chunk) { return wrapList(env, at::chunk(T(info, 0), I(info, 1), I(info, 2))); }
// contiguousFormat(t, 0 = contiguous | 1 = channels_last): the layout oneDNN's CPU convolutions prefer.
OP(contiguousFormat) {
  auto f = I(info, 1) == 1 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  RET(T(info, 0).contiguous(f));
}
OP(isChannelsLast) { return Napi::Boolean::New(env, T(info, 0).is_contiguous(at::MemoryFormat::ChannelsLast)); }
