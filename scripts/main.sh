#!/usr/bin/env bash
# The README's main job: set up what is missing, then train the MLP 784-512-256-10 on MNIST and
# evaluate it on the test set. Extra arguments go to `topiary train` (e.g. --epochs 10).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${TOPIARY_DATA:-}" ] && [ -d ../shared/datasets ]; then export TOPIARY_DATA="$(cd ../shared/datasets && pwd)"; fi
exec node bin/topiary.js train --model mlp --dataset mnist --epochs 1 --batch-size 128 --optimizer sgd --lr 0.05 --momentum 0.9 \
  --schedule cosine --seed 0 --out runs/quickstart "$@"
