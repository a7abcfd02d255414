"""Child process of the bad-input suite: runs a batch of cases against the real loaders, under limits.

    python tests/security/hostile_child.py plan.json

``plan.json``: ``{"warm": [...], "cases": [{"name", "action", "path", "kwargs"}, ...]}``. The child imports
every module the actions need and warms them up (``warm``), then limits its address space to what it uses
after that plus :data:`AS_HEADROOM` (``resource.RLIMIT_AS``: an attempt to allocate gigabytes fails at once
instead of swapping the machine) and runs the cases one by one. For each it resets the peak-RSS counter
(``/proc/self/clear_refs``), arms a SIGALRM watchdog (a case that blocks, e.g. on opening a FIFO, is
interrupted and reported as ``timeout``), calls the action and prints one JSON line: the outcome
(``raised`` / ``returned`` / ``timeout``), the exception's class hierarchy and message or the returned
summary, the wall time, and the peak RSS during the case. ``{"start": name}`` is printed (and flushed)
before each case, so a crash of the whole process (exit 139) names the case that caused it.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

AS_HEADROOM = 1 << 30  # bytes of address space a case may add to what the loaded modules use
WATCHDOG_S = 30


class CaseTimeout(BaseException):
    """Raised in the child by the watchdog: the case blocked or ran too long."""


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------- actions


def _load_generator(path, **kw):
    from core.model_files import load_generator

    return f"loaded {load_generator(path).source_format}"


def _load_snapshot(path, **kw):
    from core.checkpoint import load_snapshot

    return f"loaded a {load_snapshot(path).kind} snapshot"


def _load_official(path, **kw):
    from core.legacy_cgsgan import load_official_pickle

    G, info = load_official_pickle(path)
    return f"loaded {info.config.num_points} points"


def _read_ply(path, **kw):
    from core.ply import read_ply

    return f"loaded {read_ply(path).num_gaussians} Gaussians"


def _load_directions(path, **kw):
    from core.editing.direction_file import load_directions

    return f"loaded {len(load_directions(path, **kw).directions)} directions"


def _read_latent(path, **kw):
    from core.editing.latent_file import read_latent_file

    return f"loaded {list(read_latent_file(path, **kw).shape)}"


def _load_library(path, **kw):
    from core.editing.saved_latents import load_library

    return f"loaded {len(load_library(path, **kw).entries)} saved latents"


def _load_photo(path, **kw):
    from inversion.photos import load_photo

    return f"loaded {list(load_photo(path).pixels.shape)}"


def _preprocess(path, **kw):
    from inversion.preprocess import PreprocessConfig, preprocess_photos

    r = preprocess_photos([path], PreprocessConfig(resolution=64))
    return f"aligned {len(r.aligned)}; problems: {' | '.join(r.problems)}"


def _open_dataset(path, **kw):
    from training.dataset import DatasetOptions, ImageLabelDataset

    ds = ImageLabelDataset(DatasetOptions(path))
    ds[0]
    return f"opened {len(ds)} entries"


ACTIONS = {
    "load_generator": _load_generator, "load_snapshot": _load_snapshot, "load_official": _load_official,
    "read_ply": _read_ply, "load_directions": _load_directions, "read_latent": _read_latent,
    "load_library": _load_library, "load_photo": _load_photo, "preprocess": _preprocess,
    "open_dataset": _open_dataset,
}
IMPORTS = {  # what each action needs imported (and warmed) before the limits are set
    "load_generator": ["core.model_files", "core.legacy_cgsgan"], "load_snapshot": ["core.checkpoint"],
    "load_official": ["core.legacy_cgsgan"], "read_ply": ["core.ply"],
    "load_directions": ["core.editing.direction_file"], "read_latent": ["core.editing.latent_file"],
    "load_library": ["core.editing.saved_latents"], "load_photo": ["inversion.photos"],
    "preprocess": ["inversion.preprocess"], "open_dataset": ["training.dataset"],
}


def _warm(actions: set[str]) -> None:
    import importlib

    import torch

    torch.set_num_threads(1)
    for a in sorted(actions):
        for m in IMPORTS[a]:
            importlib.import_module(m)
    if "preprocess" in actions:  # MTCNN's weights and first forward
        import numpy as np

        from inversion.detection import mtcnn

        mtcnn().detect(np.full((64, 64, 3), 128, np.uint8), landmarks=True)
    if {"load_generator", "load_official"} & actions:  # one small build: torch's lazy one-time set-up
        from core.generator import PRESETS, Generator

        Generator(PRESETS["tiny"])


def _on_alarm(signum, frame):
    raise CaseTimeout(f"no answer within {WATCHDOG_S} s")


def main() -> int:
    plan = json.loads(Path(sys.argv[1]).read_text())
    _warm({c["action"] for c in plan["cases"]})
    base_vm, base_rss = _status("VmSize"), _status("VmRSS")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = base_vm + AS_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    signal.signal(signal.SIGALRM, _on_alarm)
    print(json.dumps({"setup": {"vm_mb": base_vm / 1e6, "rss_mb": base_rss / 1e6, "as_limit_mb": limit / 1e6}}),
          flush=True)
    for case in plan["cases"]:
        print(json.dumps({"start": case["name"]}), flush=True)
        exact = _reset_peak()
        before = _status("VmRSS")
        t0 = time.perf_counter()
        result: dict = {"name": case["name"]}
        signal.alarm(WATCHDOG_S)
        try:
            summary = ACTIONS[case["action"]](case["path"], **case.get("kwargs", {}))
            result.update(outcome="returned", message=str(summary)[:2000])
        except CaseTimeout as e:
            result.update(outcome="timeout", message=str(e))
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which judges it
            mro = [f"{k.__module__}.{k.__qualname__}" for k in type(e).__mro__]
            result.update(outcome="raised", type=mro[0], mro=mro, message=str(e)[:2000])
        finally:
            signal.alarm(0)
        result["seconds"] = time.perf_counter() - t0
        peak = _status("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        result.update(peak_rss_mb=peak / 1e6, rss_before_mb=before / 1e6, exact_peak=exact)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.chdir(Path(__file__).resolve().parents[2])
    sys.exit(main())
