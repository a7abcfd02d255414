#!/usr/bin/env bash
# Create (or update) the project's virtual environment.  Idempotent: a second run installs nothing new.
#
#   tools/setup_env.sh [VENV_DIR]        (default: .venv)
#
# Order matters (see docs/setup.md, "Dependencies and pins"):
#   1. torch==2.13.0 on its own.  On a CPU-only machine whose pip is set up with a local CPU wheel this takes
#      the CPU build; on a Linux machine with the default index it takes the CUDA build.  Installing torch
#      first means nothing later can drag in another torch (several GB of CUDA wheels).
#   2. torchvision==0.28.0 with --no-deps (the only build on the registry is CUDA 13; on CPU torch its ops fail
#      to load, and core/torchvision_compat.py patches that at import time).
#   3. everything else from pyproject.toml, constrained by requirements/constraints.txt.
#   4. lpips and facenet-pytorch last, with --no-deps.  facenet-pytorch pins torch<2.3, numpy<2 and
#      pillow<10.3, which the rest of the stack has outgrown (it works with the newer ones); --no-deps keeps
#      pip from downgrading them, and installing it last means no later install step checks those pins, so
#      pip's resolver has nothing to print in red on a fresh set-up.
set -euo pipefail
VENV=${1:-.venv}
HERE=$(cd "$(dirname "$0")/.." && pwd)
C="$HERE/requirements/constraints.txt"
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

have() { "$VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import importlib.metadata as m, sys
name, _, want = sys.argv[1].partition("==")
v = m.version(name)
sys.exit(0 if (not want or v.split("+")[0] == want) else 1)
PY
}

have torch==2.13.0 || { echo "setup: installing torch 2.13.0"; "${PIP[@]}" torch==2.13.0; }
have torchvision==0.28.0 || "${PIP[@]}" --no-deps torchvision==0.28.0

stamp="$VENV/.deps-stamp"
sum=$(cat "$HERE/pyproject.toml" "$C" | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    echo "setup: installing project dependencies"
    "${PIP[@]}" -c "$C" -e "$HERE[dev]"
    echo "$sum" > "$stamp"
fi
have lpips==0.1.4 || "${PIP[@]}" --no-deps lpips==0.1.4
have facenet-pytorch==2.6.0 || "${PIP[@]}" --no-deps facenet-pytorch==2.6.0
"$VENV/bin/python" -c "import torch; print(f'setup: torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}')"
# Compile the CPU splat rasterizer's numba kernels once (about 10 s; numba caches them beside the source), so
# the first window on a machine without CUDA does not wait for them.
(cd "$HERE" && "$VENV/bin/python" -c "from viewer.viewport.cpu_splats import unavailable; print('setup:', unavailable() or 'CPU splat rasterizer ready')")
