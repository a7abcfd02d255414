#!/usr/bin/env bash
# The two ignored folders that every device call of this project carries (docs/default-model-v2.md, docs/training.md):
#   .gpu/  the wheels and the prebuilt gsplat extension of ../shared/gpu (its README.md says what they are)
#   .whl/  what else the GPU machine's python 3.12 lacks (it has torch, numpy, imageio, scipy, tqdm, pytest, ...):
#          tyro and safetensors (our CLIs and file formats) and hypothesis (the tests), with their dependencies
# Both are rebuilt here, from a fresh clone, in a few seconds (pip reaches the package registry; the GPU machine
# does not). Then carry [".gpu", ".whl"] and start each call with
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/*.whl .whl/*.whl
#   export PYTHONPATH=/tmp/site:$PWD/.gpu:$PWD
set -euo pipefail
SHARED=${SHARED:-../shared/gpu}
[[ -d "$SHARED/wheels" ]] || { echo "$SHARED/wheels not found: set SHARED to the folder with the GPU wheels" >&2; exit 2; }
mkdir -p .gpu
cp -r "$SHARED"/. .gpu/
chmod -R u+w .gpu
mkdir -p .whl
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
  "tyro>=0.8" "safetensors==0.8.0" "hypothesis>=6.100"
du -sh .gpu .whl
