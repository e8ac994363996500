#!/usr/bin/env bash
# Train tuna-shapes, the built-in default model, from nothing: stage 0 (VAE) → stages 1, 2, 3 on the
# shapes world. Any key=value arguments are passed to every stage (e.g. data.global_batch=64 on a GPU).
#   bash scripts/train_tuna_shapes.sh [RUN_DIR] [key=value ...]
# These are exactly the commands that made checkpoints/tuna-shapes on 2 CPU cores. Stage 0 ran in four
# legs (each a fresh cosine schedule continuing the last leg's weights) because it was trained across two
# sessions, and the first three saw images only (`shapes_stage0_vae_images`) until we found that this
# leaves the VAE's temporal weights untrained; on a GPU, one `shapes_stage0_vae` run of its default
# 10,000 steps replaces the four legs.
set -euo pipefail
run=${1:-runs/tuna-shapes}
shift || true
tuna=${TUNA:-.venv/bin/tuna}
"$tuna" train shapes_stage0_vae_images --out "$run/stage0" --steps 1500 "$@"
"$tuna" train shapes_stage0_vae_images --out "$run/stage0b" --steps 2500 init="$run/stage0/final" optim.warmup_steps=10 "$@"
"$tuna" train shapes_stage0_vae_images --out "$run/stage0c" --steps 2500 init="$run/stage0b/final" optim.lr=5e-4 "$@"
"$tuna" train shapes_stage0_vae --out "$run/stage0d" --steps 800 init="$run/stage0c/final" optim.lr=5e-4 optim.warmup_steps=20 "$@"
"$tuna" train shapes_stage1 --out "$run/stage1" init="$run/stage0d/final" "$@"
"$tuna" train shapes_stage2 --out "$run/stage2" init="$run/stage1/final" "$@"
"$tuna" train shapes_stage3 --out "$run/stage3" init="$run/stage2/final" "$@"
echo "final model: $run/stage3/final"
