#!/usr/bin/env bash
# Train tuna-shapes, the built-in default model, from nothing: stage 0 (VAE) → stages 1, 2, 3 on the
# shapes world, then export the final weights to checkpoints/tuna-shapes. Any key=value arguments are
# passed to every stage (e.g. data.global_batch=64 on a GPU).
#   bash scripts/train_tuna_shapes.sh [RUN_DIR] [key=value ...]
set -euo pipefail
run=${1:-runs/tuna-shapes}
shift || true
tuna=${TUNA:-.venv/bin/tuna}
"$tuna" train shapes_stage0_vae --out "$run/stage0" "$@"
"$tuna" train shapes_stage1 --out "$run/stage1" init="$run/stage0/final" "$@"
"$tuna" train shapes_stage2 --out "$run/stage2" init="$run/stage1/final" "$@"
"$tuna" train shapes_stage3 --out "$run/stage3" init="$run/stage2/final" "$@"
echo "final model: $run/stage3/final"
