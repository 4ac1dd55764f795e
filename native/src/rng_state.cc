// The CPU generator's state, so a checkpoint can restore every random draw exactly on resume.
#include "common.h"
#include <ATen/CPUGeneratorImpl.h>
using namespace topiary;

OP(getRngState) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  RET(gen.get_state());
}
OP(setRngState) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(T(info, 0));
  return env.Undefined();
}
