#!/usr/bin/env bash
# The default model v2 (docs/default-model-v2.md): 360-degree synthetic heads at 256 px, preset cpu256.
# Run from the repository root on a GPU machine; every step ends well inside one 10-minute device call:
#
#   tools/train_default_model_v2.sh data                  # the dataset, made on the GPU (resumable: rerun it)
#   tools/train_default_model_v2.sh train 8               # start the run; snapshot and exit after 8 minutes
#   tools/train_default_model_v2.sh resume 8 [SOURCE]     # continue for 8 more minutes: SOURCE is a run
#                                                         # directory or a snapshot copied from another
#                                                         # machine; default: the newest run here
#   tools/train_default_model_v2.sh lease MINUTES         # one device call: the data unless there, then train
#                                                         # or resume (a run here, else a snapshot gathered
#                                                         # into $HANDOVER, else the compact hand-over in
#                                                         # $COMPACT, expanded), MINUTES in all, then `out 0`
#   tools/train_default_model_v2.sh out K                 # part K of the newest snapshot's compact hand-over
#                                                         # form into $OUT (tools/snapshot_handover.py; K = 0,
#                                                         # 1, ... until it says it was the last: 2 calls)
#   tools/train_default_model_v2.sh unpack                # HERE, not on the GPU: the newest hand-over committed
#                                                         # under handover/v2 into carry folders .handover/in/NN
#   tools/train_default_model_v2.sh export FILE           # the EMA generator of the newest run, float16
#   tools/train_default_model_v2.sh report                # into $OUT: the newest run's log, losses, newest grid
#                                                         # and its EMA generator in 15 MiB pieces (cat them here)
#   tools/train_default_model_v2.sh metrics MODEL         # gt_fit, consistency, floaters (held-out split)
#   tools/train_default_model_v2.sh grids V1 V2 OUT.png   # v1 beside v2, yaw 0-180, psi 0.7 and 1.0
#   tools/train_default_model_v2.sh directions MODEL      # the slider file beside MODEL (PCA, 3D-measured and
#                                                         # attribute sliders; the classifier trained on $DATA)
#   tools/train_default_model_v2.sh editing MODEL REPORT  # the latent-editing tables (docs/latent-editing.md)
#   tools/train_default_model_v2.sh ship MODEL REPORT     # HERE, on the CPU: MODEL becomes the embedded default
#                                                         # (assets/default_model.safetensors), then its directions
#                                                         # and editing tables from a small labelled set made on
#                                                         # the CPU ($LABELS, 5,000 images at 128 px; 25-45 min
#                                                         # on 2 cores) and the sliders picture (REPORT's stem
#                                                         # .sliders.png); DIRECTIONS_DEVICE=cuda on a GPU machine
#
# DRY_RUN=1 prints each command instead of running it (tests/training/test_default_model_v2.py parses them).
# GPUS=N trains with torchrun on N GPUs of one host (batch 32 split evenly; the same run, faster).
# A fresh machine regenerates the data (`data`, GPU) rather than receiving it; runs continue from the newest
# snapshot of the run directory (training/run_dir.py; snapshots are portable safetensors files, training/snapshots.py).
#
# Recipe (docs/default-model-v2.md, "Recipe" and "Budget"): 8,000 identities (the last 64 held out) x 6
# random views, half of them from the whole circle, at 256 px; then the cpu256 recipe of training/recipes.py
# (`python -m training.recipes cpu256`): generator cpu256 (21,760 Gaussians); batch 32 with 4 multi-view
# renders; discriminator channel_base 16384 (StyleGAN2-ADA's 256 px size, a third of the FLOPs of the 32768 D
# the v1 recipe used at 128 px) with the cpu128 recipe's arithmetic (4 bf16 blocks, NHWC, batched calls);
# R1 gamma 0.4 (0.0002 * 256^2 / 32, StyleGAN2-ADA's heuristic); D-input blur fading over 100 kimg; EMA
# half-life 10 kimg; TF32. 2,000 kimg is the ceiling; each call ends through --stop-after-minutes with a
# snapshot. EXTRA_ARGS adds training options (e.g. EXTRA_ARGS="--seed 3").
set -euo pipefail
PY=${PY:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # tools/*.py import the packages of this checkout
DATA=${DATA:-out/heads256}
OUTDIR=${OUTDIR:-runs}
GPUS=${GPUS:-1}
DESC=default-v2
read -r -a EXTRA <<< "${EXTRA_ARGS:-}"
RECIPE=$("$PY" -m training.recipes cpu256)
mapfile -t RECIPE_ARGS <<< "$RECIPE"
DATA_ARGS=(--out "$DATA" --num-identities 8000 --views-per-identity 6 --full-yaw-fraction 0.5 --resolution 256
           --test-fraction 0.008 --seed 0 --device "${DATA_DEVICE:-cuda}" --workers "${WORKERS:-16}")
BATCH_GPU=()  # the recipe's --batch-gpu is the whole batch; with several GPUs each takes its share
(( GPUS > 1 )) && BATCH_GPU=(--batch-gpu $((32 / GPUS)))
TRAIN_ARGS=(--data "$DATA" --outdir "$OUTDIR" "${RECIPE_ARGS[@]}" "${BATCH_GPU[@]}"
            --kimg 2000 --tick-kimg 4 --snap-kimg 40 --image-snap-kimg 40 --snapshot-max-part-mib 15
            --workers 6 --seed 0
            --desc "$DESC" "${EXTRA[@]}")

run() {
  if [[ -n "${DRY_RUN:-}" ]]; then printf '%q ' "$@"; echo; else "$@"; fi
}
train() {
  if (( GPUS > 1 )); then run torchrun --standalone --nproc_per_node "$GPUS" -m training "$@"
  else run "$PY" -m training "$@"; fi
}
LABELS=${LABELS:-out/labels128}  # `ship`'s labelled set for the attribute classifier (the CPU path)
SHIPPED=assets/default_model.safetensors  # viewer/config.py DEFAULT_MODEL
LABEL_ARGS=(--out "$LABELS" --num-identities 2500 --views-per-identity 2 --full-yaw-fraction 0.0 --resolution 128
            --seed 7 --device "${DIRECTIONS_DEVICE:-cpu}")
# the attribute classifier trained for MODEL is kept beside it (MODEL.classifier.pt; `ship`: beside the file
# shipped, not in assets/): `directions` / `ship` write it, `editing` / `ship` read it
classifier_of() { echo "${1%.*}.classifier.pt"; }
fit_directions() {  # fit_directions MODEL CLASSIFIER DATA DEVICE EPOCHS [OPTION ...]: the slider file beside MODEL
  local model=$1 classifier=$2 data=$3 device=$4 epochs=$5
  run "$PY" -m training.directions --model "$model" --data "$data" --classifier-resolution 128 --epochs "$epochs" \
    --yaws 0 45 -45 --device "$device" "${@:6}" --classifier-out "$classifier"
}
editing_tables() {  # editing_tables MODEL CLASSIFIER DEVICE REPORT [OPTION ...]: the latent-editing tables of MODEL
  local model=$1 classifier=$2 device=$3 report=$4
  run "$PY" -m training.directions.evaluate --model "$model" --classifier "$classifier" "${@:5}" \
    --device "$device" --out "$report"
}
HANDOVER=${HANDOVER:-.handover/snap}     # full snapshots to resume from (gathered or expanded here)
COMPACT=${COMPACT:-.handover/compact}     # a compact hand-over carried in from the repository (training/handover.py)
COMPACT_OUT=${COMPACT_OUT:-.handover/out} # the compact form of the newest snapshot, written for `out`
latest_run() {  # the newest run directory that holds a snapshot (one killed before its first is skipped)
  local d
  for d in $({ ls -d "$OUTDIR"/*-cpu256-*-"$DESC" 2>/dev/null || true; } | sort -r); do
    if compgen -G "$d/network-snapshot-*" > /dev/null; then echo "$d"; return; fi
  done
}

train_for() {  # train_for MINUTES [SOURCE]: the recipe for MINUTES, resuming SOURCE when given
  train "${TRAIN_ARGS[@]}" --stop-after-minutes "$1" ${2:+--resume "$2"}
}

handover_out() {  # handover_out K: part K of the newest run's newest snapshot into $OUT
  local run_dir
  run_dir=$(latest_run)
  [[ -n "$run_dir" ]] || { echo "no run in $OUTDIR to hand over" >&2; exit 2; }
  run "$PY" tools/snapshot_handover.py out "$run_dir" "${OUT:?set OUT to the folder that comes back}" --call "$1" \
    --compact-dir "$COMPACT_OUT"
}

case "${1:-}" in
  data)
    run "$PY" -m training.synthetic_heads "${DATA_ARGS[@]}" ;;
  train)
    train_for "${2:?minutes}" ;;
  resume)
    source=${3:-$(latest_run)}
    [[ -n "$source" ]] || { echo "no run in $OUTDIR to resume; give a run directory or snapshot" >&2; exit 2; }
    train_for "${2:?minutes}" "$source" ;;
  lease)
    budget=${2:?minutes for the whole call}
    t0=$SECONDS
    [[ -f "$DATA/dataset.json" ]] || run "$PY" -m training.synthetic_heads "${DATA_ARGS[@]}"
    left=$("$PY" -c "import sys; print(f'{max(1.0, float(sys.argv[1]) - float(sys.argv[2]) / 60):.2f}')" \
           "$budget" $((SECONDS - t0)))
    source=$(latest_run)
    [[ -n "$source" ]] || source=$({ ls "$HANDOVER"/network-snapshot-*.index.json 2>/dev/null || true; } | sort | tail -1)
    if [[ -z "$source" ]]; then  # a new session: expand the hand-over that came from the repository, if any
      compact=$({ ls "$COMPACT"/network-snapshot-*.index.json 2>/dev/null || true; } | sort | tail -1)
      if [[ -n "$compact" ]]; then
        run "$PY" tools/snapshot_handover.py expand "$compact" "$HANDOVER"
        source=$HANDOVER/$(basename "$compact")
      fi
    fi
    train_for "$left" "$source"
    handover_out 0 ;;
  out)
    handover_out "${2:?call number}" ;;
  unpack)  # the hand-over lives in the commit that added it (the next commit takes it out of the tree again)
    sha=$(git log --diff-filter=A -1 --format=%H -- handover/v2)
    [[ -n "$sha" ]] || { echo "no hand-over was ever committed under handover/v2" >&2; exit 2; }
    [[ ! -e .handover/repo && ! -e .handover/in ]] || { echo ".handover/repo or .handover/in exists: remove it first" >&2; exit 2; }
    mkdir -p .handover/repo
    git archive "$sha" handover/v2 | tar -x -C .handover/repo
    run "$PY" tools/snapshot_handover.py stage "$(ls .handover/repo/handover/v2/*.index.json | sort | tail -1)" \
      .handover/in --max-mib "${CARRY_MIB:-30}" ;;
  export)
    run_dir=$(latest_run)
    [[ -n "$run_dir" ]] || { echo "no run in $OUTDIR to export" >&2; exit 2; }
    run "$PY" tools/export_generator.py "$run_dir" "${2:?output file}" --dtype float16 ;;
  report)  # into $OUT: the newest run's log, losses and newest grid, and its EMA generator (float16, ~20 MiB)
           # in pieces of 15 MiB (the device returns files of 16 MiB at most); here: cat ema.safetensors.part-* > F
    run_dir=$(latest_run)
    [[ -n "$run_dir" ]] || { echo "no run in $OUTDIR to report" >&2; exit 2; }
    out=${OUT:?set OUT to the folder that comes back}
    run "$PY" tools/snapshot_handover.py report "$run_dir" "$out"
    run "$PY" tools/export_generator.py "$run_dir" "$COMPACT_OUT/ema.safetensors" --dtype float16 --overwrite
    run split -b 15m "$COMPACT_OUT/ema.safetensors" "$out/ema.safetensors.part-" ;;
  metrics)
    run "$PY" -m training.metrics --network "${2:?generator file}" --data "$DATA" \
      --metrics gt_fit,consistency,floaters --resolution 256 --consistency-scenes 32 --out "${3:-metrics.jsonl}" ;;
  grids)
    run "$PY" tools/default_model_grid.py "${2:?v1 file}" "${3:?v2 file}" "${4:?output .png}" \
      --yaws 0 45 90 135 180 --psi 0.7 1.0 --resolution 256 ;;
  directions)
    model=${2:?generator file}
    fit_directions "$model" "$(classifier_of "$model")" "$DATA" "${DIRECTIONS_DEVICE:-cuda}" 30 ;;
  editing)
    model=${2:?generator file}
    editing_tables "$model" "$(classifier_of "$model")" "${DIRECTIONS_DEVICE:-cuda}" "${3:?report .md}" \
      --num-heads 32 --values -3 0 3 --resolution 128 ;;
  ship)  # the sixth session's CPU path (docs/latent-editing.md "Measured on the default model v2")
    model=${2:?generator file}; report=${3:?report .md}
    [[ -f "$model" ]] || { echo "$model: no such generator file; $SHIPPED left as it is" >&2; exit 2; }
    [[ "$model" -ef "$SHIPPED" ]] || run cp "$model" "$SHIPPED"
    [[ -f "$LABELS/dataset.json" ]] || run "$PY" -m training.synthetic_heads "${LABEL_ARGS[@]}"
    classifier=$(classifier_of "$model")
    fit_directions "$SHIPPED" "$classifier" "$LABELS" "${DIRECTIONS_DEVICE:-cpu}" 15 --attribute-samples 1000 \
      --measured-samples 600
    editing_tables "$SHIPPED" "$classifier" "${DIRECTIONS_DEVICE:-cpu}" "$report" --num-heads 16 --drift-heads 4 \
      --values -3 0 3
    # the sliders picture and the target-matching cases of docs/latent-editing.md, beside the report
    run "$PY" tools/slider_figure.py "$SHIPPED" "${report%.md}.sliders.png" --match ;;
  *)
    echo "usage: $0 data | train MINUTES | resume MINUTES [SOURCE] | lease MINUTES | out K | unpack | export FILE" \
         "| report" \
         "| metrics MODEL [OUT.jsonl]" \
         "| grids V1 V2 OUT.png | directions MODEL | editing MODEL REPORT | ship MODEL REPORT" >&2; exit 2 ;;
esac
