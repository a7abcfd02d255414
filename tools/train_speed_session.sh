#!/usr/bin/env bash
# The GPU calls behind docs/training.md, "Training speed" (one H200). Run from this checkout's root on the
# device machine with $OUT set; BEFORE may point at a checkout of the code before the speed work (only
# training/, core/, bench/ are needed, plus this checkout's bench/train_profile.py, train_variants.py,
# train_quality.py, train_flops.py and training/recipes.py copied in), which is timed and profiled with the same scripts.
#
#   BEFORE=../speed-before tools/train_speed_session.sh speed   # gpu tests; before/after variants, profiles
#   KIMG=8 tools/train_speed_session.sh final                     # quality runs, then the recorded figures
#   tools/train_speed_session.sh blur           # the D's blurs without depthwise convs (TrainOptions.d_blur):
#                                               # D-only step times, then the recipes with matmul / slices (~9 min)
#   tools/train_speed_session.sh profile512     # the cgs512 step's phases and kernels (bf16 D, matmul blurs),
#                                               # then cgs512 as before and cpu256's blur fade (~7 min)
#   KIMG=8 tools/train_speed_session.sh blur-quality   # the same short quality run, conv vs matmul blur
#   tools/train_speed_session.sh graphs         # --g-cuda-graphs: its GPU tests; cgs512 (bf16 D) with the D step's
#                                               # G forward from a CUDA graph; which phase grows as cgs512's ticks
#                                               # slow down (phases per tick, 12 ticks); cpu256 with graphs (~6 min)
set -uo pipefail
PY=${PY:-python3}
BEFORE=${BEFORE:-}
KIMG=${KIMG:-8}
RES=${RES:-/tmp/speed_results}   # everything lands here and is packed into $OUT/results.tgz after each stage
mkdir -p "$RES"
step() {  # step SECONDS NAME COMMAND...: one stage, its own time limit, failures logged and survived
  local limit=$1 name=$2; shift 2
  echo "=== $name ($(date +%T), limit ${limit}s)"
  # SIGKILL: a SIGTERM would reach the training loop's stop handler (and kill the data workers), which ends a
  # run cleanly instead of stopping the stage.
  timeout -s KILL "$limit" "$@" || echo "=== $name FAILED or timed out (status $?)"
  tar czf "$OUT/results.tgz" -C "$(dirname "$RES")" "$(basename "$RES")"
}
case "${1:-}" in
  speed)  # call 1: where the time goes, before and after, variant by variant
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv
    step 50 "gpu tests" "$PY" -m pytest -q -x tests/training/test_fast_step.py tests/training/test_discriminator.py -k "cuda or gpu"
    if [ -n "$BEFORE" ]; then
      step 80 "before: cpu128" bash -c "cd $BEFORE && PYTHONPATH=$BEFORE:\$PYTHONPATH $PY -m bench.train_profile --recipe cpu128 \
        --stages variants profile --variants legacy --profile-variants legacy --out $RES/before --tag before"
      step 50 "before: cgs512" bash -c "cd $BEFORE && PYTHONPATH=$BEFORE:\$PYTHONPATH $PY -m bench.train_profile --recipe cgs512 \
        --stages variants --variants legacy --ticks 3 --out $RES/before --tag before"
    fi
    step 150 "after: cpu128" "$PY" -m bench.train_profile --recipe cpu128 --stages peak variants profile \
      --variants legacy batched nhwc bf16 bf16-cb16k --profile-variants bf16 bf16-cb16k --out "$RES/after"
    step 60 "after: cgs512" "$PY" -m bench.train_profile --recipe cgs512 --stages variants profile \
      --variants bf16 --profile-variants bf16 --ticks 3 --out "$RES/after"
    ;;
  final)  # call 2: the same short run per variant on synthetic heads, then the recorded figures
    step "${QUALITY_LIMIT:-330}" "quality" "$PY" -m bench.train_profile --recipe cpu128 --stages quality \
      --variants ${QUALITY_VARIANTS:-batched bf16-cb16k bf16-cb16k-matmul} --heads /tmp/heads128 --heads-identities "${IDS:-1000}" \
      --heads-views 3 --quality-kimg "$KIMG" --out "$RES/quality"
    step 80 "cpu128 figure" env BENCH_RESULTS="$RES/results.json" "$PY" -m bench.train_speed --recipe cpu128 ${CPU128_ARGS:-}
    step 70 "cgs512 figure" env BENCH_RESULTS="$RES/results.json" "$PY" -m bench.train_speed --resolutions 512 ${CGS512_ARGS:-}
    ;;
  blur)  # docs/training.md "The blurs as banded-matrix products": d_blur=matmul / slices against the conv (~8 min)
    step 45 "gpu tests" "$PY" -m pytest -q -x tests/training/test_blur_impls.py
    step 60 "D step per blur, cpu128" "$PY" -m bench.d_blur_step --recipe cpu128 --device cuda --batch 128 --autocast --repeats 5
    step 60 "D step per blur, cpu256" "$PY" -m bench.d_blur_step --recipe cpu256 --device cuda --batch 128 --autocast --repeats 5
    step 100 "cpu128 figure, matmul blur" env BENCH_RESULTS="$RES/results.json" "$PY" -m bench.train_speed --recipe cpu128 --ticks 8 --d-blur matmul
    step 100 "cpu128 figure, slices blur" env BENCH_RESULTS="$RES/results.json" "$PY" -m bench.train_speed --recipe cpu128 --ticks 8 --d-blur slices
    step 110 "cgs512 figure, matmul blur" env BENCH_RESULTS="$RES/results.json" "$PY" -m bench.train_speed --resolutions 512 \
      --d-bf16-blocks 4 --channels-last --d-blur matmul --ticks 6
    step 80 "cpu256 figure, matmul blur" env BENCH_RESULTS="$RES/results.json" "$PY" -m bench.train_speed --recipe cpu256 --ticks 5 --d-blur matmul
    ;;
  profile512)  # where a cgs512 step goes now (4 bf16 D blocks, NHWC, matmul blurs), cgs512 as before (float32
               # D) with matmul blurs, and the v2 recipe's blur fade with the banded D-input blur (~7 min)
    step 200 "cgs512 profile" "$PY" -m bench.train_profile --recipe cgs512 --stages variants profile \
      --variants bf16-matmul --profile-variants bf16-matmul --ticks 3 --out "$RES/profile512"
    step 110 "cgs512 figure, float32 D" env BENCH_RESULTS="$RES/results.json" "$PY" -m bench.train_speed --resolutions 512 --ticks 6
    step 110 "cpu256 figure, blur fade" env BENCH_RESULTS="$RES/results.json" "$PY" -m bench.train_speed --recipe cpu256 --ticks 6 --blur-fade
    ;;
  graphs)  # the D step's generator forward replayed from a CUDA graph (TrainOptions.g_cuda_graphs)
    step 90 "gpu tests" "$PY" -m pytest -q tests/core/test_generator_gpu.py tests/training/test_fast_step.py -k "graph"
    step 110 "cgs512 figure, graphs" env BENCH_RESULTS="$RES/results.json" "$PY" -m bench.train_speed --resolutions 512 \
      --d-bf16-blocks 4 --channels-last --d-blur matmul --g-cuda-graphs --ticks 12
    step 120 "cgs512 phases per tick" "$PY" -m bench.train_profile --recipe cgs512 --stages variants \
      --variants bf16-matmul --ticks 12 --out "$RES/growth512"
    step 80 "cpu256 figure, graphs" env BENCH_RESULTS="$RES/results.json" "$PY" -m bench.train_speed --recipe cpu256 --ticks 6 --g-cuda-graphs
    ;;
  blur-quality)  # the same-seed short run, the recipe's D with the conv and the matmul blur
    step "${QUALITY_LIMIT:-330}" "quality" "$PY" -m bench.train_profile --recipe cpu128 --stages quality \
      --variants bf16-cb16k ${BLUR_VARIANT:-bf16-cb16k-matmul} --heads /tmp/heads128 --heads-identities "${IDS:-1000}" \
      --heads-views 3 --quality-kimg "$KIMG" --out "$RES/blur-quality"
    ;;
  *)
    echo "usage: $0 speed | final | blur | profile512 | graphs | blur-quality" >&2; exit 2 ;;
esac
