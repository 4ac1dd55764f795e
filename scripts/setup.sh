#!/usr/bin/env bash
# Installs what topiary needs on a Debian machine, skipping what is there already:
# libtorch (unless $LIBTORCH names an official build), OpenBLAS, npm packages, the addon.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
if [ -z "${LIBTORCH:-}" ] && [ ! -f /usr/include/torch/csrc/api/include/torch/torch.h ] && [ ! -f /usr/include/torch/torch.h ]; then need_apt+=(libtorch-dev); fi
if ! ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas*.so* >/dev/null 2>&1 && ! ls /usr/lib/*/openblas-pthread/libopenblas*.so* >/dev/null 2>&1; then need_apt+=(libopenblas0-pthread); fi
[ -f /usr/include/eigen3/Eigen/Sparse ] || need_apt+=(libeigen3-dev)
command -v g++ >/dev/null || need_apt+=(g++)
command -v make >/dev/null || need_apt+=(make)
command -v redis-server >/dev/null || need_apt+=(redis-server)  # the queue tests start their own
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "topiary setup: installing ${need_apt[*]} (apt-get)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
fi
# npm ci builds nothing (the package has no install script): the addon is built here, from source.
if [ ! -f build/Release/topiary_native.node ] || [ -n "$(find native binding.gyp -newer build/Release/topiary_native.node 2>/dev/null | head -1)" ]; then
  node scripts/build-native.mjs
fi
