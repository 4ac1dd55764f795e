#!/usr/bin/env bash
# `npm run bench`: every benchmark against PyTorch, one after another (never two at once: they
# would share the cores). Each prints one JSON summary line on stdout and rewrites its own block of
# docs/benchmarks.md. Extra arguments go to every benchmark (e.g. --reps 5, --no-doc).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TOPIARY_DATA:-}" ] && [ -d ../shared/datasets ]; then export TOPIARY_DATA="$(cd ../shared/datasets && pwd)"; fi
py="${TOPIARY_BENCH_PYTHON:-/usr/bin/python3}"
"$py" -c 'import torch, numpy' 2>/dev/null || { echo "bench: $py cannot import torch and numpy (apt-get install python3-torch)" >&2; exit 1; }
bash bench/cpp/build.sh || echo "bench: the C++ floor did not build; going on without it" >&2
for b in bench/mlp-epoch.ts bench/lenet5-epoch.ts bench/prune-overhead.ts bench/evo-pop.ts bench/hier-moea.ts bench/export.ts; do
  [ -f "$b" ] || continue
  echo "bench: $b" >&2
  node --import tsx "$b" "$@"
done
