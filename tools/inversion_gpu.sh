#!/usr/bin/env bash
# The inversion issue's GPU runs (docs/inversion.md), from the worktree copy's root on the device machine,
# after the wheel install of HELPERS.md. Figures go to $BENCH_RESULTS (merge them here with
# `python -m bench.results merge FILE`), logs and data to $OUT.
#
#   tools/inversion_gpu.sh speed         # inversion_s_512: cgs512, 500 + 300 steps, CUDA graphs (recorded);
#                                        # then 10 + 10 steps graphed and eager with a profile of both
#   tools/inversion_gpu.sh groundtruth   # the decomposition on 16 held-out heads of data/heldout128, recorded
#   tools/inversion_gpu.sh variants      # stage-1 / stage-2 knobs on 8 heads (the experiments behind the preset)
#
# MODEL defaults to the default model; DATA to data/heldout128, made with
#   python -m training.synthetic_heads --out data/heldout128 --num-identities 17 --test-fraction 0.95 \
#       --resolution 128 --seed 1
set -euo pipefail
OUT=${OUT:-out/inversion_gpu}
mkdir -p "$OUT"
MODEL=${MODEL:-$( (ls assets/default_model.* 2>/dev/null | grep -v directions | head -1) || true)}
DATA=${DATA:-data/heldout128}
case "${1:-}" in
  speed)
    python3 -m bench.inversion --preset cgs512 --recipe thorough --tf32
    python3 -m bench.inversion --preset cgs512 --recipe thorough --tf32 --steps 10 --tune-steps 10 \
      --compare-eager --profile 3 --no-record ;;
  groundtruth)
    python3 -m bench.inversion_groundtruth --model "$MODEL" --dataset "$DATA" --heads 16 --record \
      --json "$OUT/groundtruth.json" --figure-dir "$OUT" "${@:2}" ;;
  variants)
    python3 -m bench.inversion_groundtruth --model "$MODEL" --dataset "$DATA" --heads 8 --tune-heads 0 \
      --bound-steps 0 --no-self-consistency --spaces w w+ --json "$OUT/variants1.json" \
      --variant "latent.lr=0.01" --variant "latent.lr=0.1" --variant "latent.losses.ssim=0" \
      --variant "preprocess.background_weight=1" --variant "latent.camera_lr=0.006" \
      --variant "latent.steps=500"
    python3 -m bench.inversion_groundtruth --model "$MODEL" --dataset "$DATA" --heads 8 --tune-heads 3 \
      --bound-steps 0 --no-self-consistency --spaces w --json "$OUT/variants2.json" \
      --variant "tuning.geometry_weight=0 tuning.view_weight=0" --variant "tuning.geometry_weight=10" \
      --variant "tuning.view_weight=10" --variant "tuning.lr=0.001" ;;
  *)
    echo "usage: $0 speed|groundtruth|variants" >&2; exit 2 ;;
esac
