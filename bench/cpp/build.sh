#!/usr/bin/env bash
# Builds the plain C++ libtorch loops (diagnostics: the floor any binding can reach) into build/bench/.
# Uses the same libtorch as the addon (scripts/torch-paths.mjs). Skips quietly when g++ is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v g++ >/dev/null || { echo "bench/cpp: g++ not found, skipping the C++ floor" >&2; exit 0; }
mkdir -p build/bench
inc=$(node scripts/torch-paths.mjs include | sed 's/[^ ]*/-I&/g')
for src in bench/cpp/*.cc; do
  out=build/bench/$(basename "$src" .cc)
  if [ ! -x "$out" ] || [ "$src" -nt "$out" ]; then
    echo "bench/cpp: building $out" >&2
    g++ -std=c++17 -O2 -D_GLIBCXX_USE_CXX11_ABI=1 $inc "$src" -o "$out" \
      $(node scripts/torch-paths.mjs libdirs) $(node scripts/torch-paths.mjs libs) -lz
  fi
done
