#!/usr/bin/env bash
# The exact commands that made the default 128 px model (docs/training.md, "The default model: a real run").
# Run from the repository root on the GPU machine, one step per call (each ends well inside 10 minutes):
#
#   tools/train_default_model.sh data            # 4000 identities x 5 views = 20,000 images at 128 px
#   tools/train_default_model.sh train 4.03      # start the run, stop with a snapshot after 4.03 minutes
#   tools/train_default_model.sh resume 7.6      # continue the latest run for 7.6 more minutes
#   tools/train_default_model.sh resume 7.4
#   tools/train_default_model.sh export out/default_model.safetensors   # EMA generator, float16 weights
#   tools/train_default_model.sh files           # the newest snapshot's files (index + parts), one per line
#
# Snapshots are written in parts of at most PART_MIB (15) MiB plus an index (--snapshot-max-part-mib, added
# after the 84-kimg run; it changes only how the files are cut, not the training), so that they can leave a
# device call through its 16 MiB-per-file channel: `cp $(tools/train_default_model.sh files) $OUT/`. Put them
# back into a folder named like the run (runs/00000-cpu128-heads128-default/) and `resume` continues there.
#
# These are the calls of the run in docs/training/default_model_log.txt (one H100, 2026-11-21: data and
# "train" in one call, the minutes being what was left of it; 84 kimg in 19.6 minutes). Each device call
# began with the wheel install of shared/gpu/README.md and TQDM_DISABLE=1.
#
# Settings: the cpu128 recipe of training/recipes.py (batch 32 in one micro-batch on one GPU, 4 multi-view
# renders, gamma 0.25, D-input blur fading over 40 kimg, TF32; the rest as fact sheet section 3: Adam (0, 0.99)
# at G 0.0025 / D 0.002, lazy R1 every 16 steps), printed as options by `python -m training.recipes cpu128`.
# Since 2026-12-02 its discriminator is the measured faster one (channel_base 16384, 4 bf16 blocks, NHWC,
# batched calls; docs/training.md "Training speed"); the 84-kimg v1 run used channel_base 32768 in float32/TF32.
# `resume` continues a run with the options it was started with (python -m training --resume takes them from
# the run), so a run started under an older recipe keeps its own discriminator.
# --kimg is only a ceiling: the run ends by --stop-after-minutes.
set -euo pipefail
PY=${PY:-python3}
DATA=${DATA:-out/heads128}
OUTDIR=${OUTDIR:-runs}
DESC=default
RECIPE=$("$PY" -m training.recipes cpu128)
mapfile -t RECIPE_ARGS <<< "$RECIPE"
TRAIN_ARGS=(--data "$DATA" --outdir "$OUTDIR" "${RECIPE_ARGS[@]}" --kimg 1000 --tick-kimg 4 --snap-kimg 40
            --image-snap-kimg 8 --workers 6 --seed 0 --desc "$DESC" --snapshot-max-part-mib "${PART_MIB:-15}")

latest_run() { ls -d "$OUTDIR"/*-cpu128-*-"$DESC" | sort | tail -1; }

case "${1:-}" in
  data)
    "$PY" -m training.synthetic_heads --out "$DATA" --num-identities "${IDENTITIES:-4000}" \
      --views-per-identity 5 --resolution 128 --seed 0 --workers "${WORKERS:-16}" ;;
  train)
    "$PY" -m training "${TRAIN_ARGS[@]}" --stop-after-minutes "${2:?minutes}" "${@:3}" ;;
  resume)
    "$PY" -m training --resume "$(latest_run)" --data "$DATA" --stop-after-minutes "${2:?minutes}" \
      --snapshot-max-part-mib "${PART_MIB:-15}" "${@:3}" ;;
  export)
    "$PY" tools/export_generator.py "$(latest_run)" "${2:?output file}" --dtype float16 ;;
  files)
    "$PY" -c 'import sys; from core.runs import latest_snapshot, snapshot_files
print("\n".join(map(str, snapshot_files(latest_snapshot(sys.argv[1])))))' "$(latest_run)" ;;
  *)
    echo "usage: $0 data | train MINUTES | resume MINUTES | export FILE | files" >&2; exit 2 ;;
esac
