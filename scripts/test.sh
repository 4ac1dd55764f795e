#!/usr/bin/env bash
# The README's test command: sets up what is missing (system libtorch, npm packages, the addon), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${TOPIARY_DATA:-}" ] && [ -d ../shared/datasets ]; then export TOPIARY_DATA="$(cd ../shared/datasets && pwd)"; fi
files=$(find test src -name '*.test.ts' | sort)
if [ "$#" -gt 0 ]; then files="$*"; fi
# One test file at a time keeps memory and the two cores of small machines for libtorch.
exec node --import tsx --test --test-concurrency=1 $files
