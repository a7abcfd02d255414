"""Import torchvision even when its compiled ops cannot load (CUDA torchvision wheel on a CPU-only torch).

PyPI only carries the CUDA build of torchvision 0.28.0. Its ``_C.so`` links ``libtorch_cuda.so``, which the
CPU build of torch 2.13.0 does not ship, so ``torchvision/extension.py`` silently fails to load the ops, and
the import then dies in ``torchvision/_meta_registrations.py`` with::

    RuntimeError: operator torchvision::nms does not exist

(pytorch/pytorch#122494). lpips and facenet-pytorch import torchvision, so they fail the same way.

:func:`ensure_torchvision` imports torchvision normally; only on that exact failure it defines the
``torchvision::nms`` and ``torchvision::qnms`` schemas, gives ``nms`` a pure-torch CPU kernel, imports again
and marks the extension ops present. What works afterwards: ``ops.nms``/``batched_nms``, ``roi_align``
(torchvision's Python fallback), ``transforms``, ``models``. What still fails: ``ops.deform_conv2d``,
``ops.roi_pool`` and ``io.decode_*``/``read_image`` (use PIL for images).

Call it before importing lpips or facenet_pytorch. It is idempotent, thread-safe, and never runs on ``import
core``: import this module where torchvision is needed.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

__all__ = ["TorchvisionInfo", "ensure_torchvision", "import_torchvision", "nms_reference"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TorchvisionInfo:
    """Outcome of :func:`ensure_torchvision`.

    Attributes:
        module: the imported ``torchvision`` package.
        shim_used: True when the plain import failed because the compiled ops were missing and the pure-torch
            ``nms`` was registered.
        first_error: the message of that failed plain import, else None.
    """

    module: ModuleType
    shim_used: bool
    first_error: str | None = None


_lock = threading.Lock()
_info: TorchvisionInfo | None = None
_library: torch.library.Library | None = None  # must stay referenced: registrations die with the object


def ensure_torchvision() -> TorchvisionInfo:
    """Import torchvision, with the CPU ``nms`` shim only if the plain import fails for want of compiled ops.

    Returns:
        The module and whether the shim was needed; the same object on every call.

    Raises:
        ImportError: torchvision is not installed.
        RuntimeError: torchvision failed to import for any other reason (that error, unchanged), or still
            failed after the shim was registered.
    """
    global _info
    with _lock:
        if _info is None:
            _info = _import()
        return _info


def import_torchvision() -> ModuleType:
    """Return the ``torchvision`` module, working around missing compiled ops (see ``ensure_torchvision``)."""
    return ensure_torchvision().module


def _import() -> TorchvisionInfo:
    try:
        return TorchvisionInfo(importlib.import_module("torchvision"), shim_used=False)
    except ModuleNotFoundError as e:
        if e.name != "torchvision":
            raise
        raise ImportError(
            "torchvision is not installed in this environment; run `make setup` (tools/setup_env.sh), "
            "which installs torchvision==0.28.0 with --no-deps"
        ) from e
    except RuntimeError as e:
        if not _is_missing_ops_error(e):
            raise
        first_error = str(e)

    _forget_partial_import()
    _register_cpu_ops()
    try:
        module = importlib.import_module("torchvision")
    except Exception as e:
        _forget_partial_import()
        raise RuntimeError(f"torchvision still fails to import after registering CPU nms: {e}") from e
    module.extension._has_ops = lambda: True  # ops.nms and friends check this before dispatching
    log.info("torchvision %s: compiled ops unavailable (%s); using pure-torch CPU nms", module.__version__,
             first_error)
    return TorchvisionInfo(module, shim_used=True, first_error=first_error)


def _is_missing_ops_error(e: BaseException) -> bool:
    msg = str(e)
    return "torchvision::" in msg and "does not exist" in msg


def _forget_partial_import() -> None:
    """Drop the half-initialised modules a failed ``import torchvision`` leaves in ``sys.modules``."""
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]


def _schema_exists(name: str) -> bool:
    try:
        torch._C._get_schema(f"torchvision::{name}", "")
        return True
    except RuntimeError:
        return False


def _register_cpu_ops() -> None:
    global _library
    if _library is not None:
        return
    lib = torch.library.Library("torchvision", "FRAGMENT")
    if not _schema_exists("nms"):
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.impl("nms", _nms_cpu, "CPU")
    if not _schema_exists("qnms"):
        # Schema only: torchvision registers a fake kernel for it at import; quantized boxes stay unsupported.
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _library = lib


def _nms_cpu(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    if dets.dim() != 2 or dets.shape[-1] != 4:
        raise RuntimeError(f"boxes should be a [N, 4] tensor, got {list(dets.shape)}")
    if scores.dim() != 1 or scores.shape[0] != dets.shape[0]:
        raise RuntimeError(f"scores should be a [{dets.shape[0]}] tensor, got {list(scores.shape)}")
    if dets.dtype != scores.dtype:
        raise RuntimeError(f"dets ({dets.dtype}) and scores ({scores.dtype}) should have the same dtype")
    return nms_reference(dets, scores, iou_threshold)


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
                  block: int = 1024) -> torch.Tensor:
    """Greedy non-maximum suppression in plain torch (the semantics of ``torchvision.ops.nms``).

    Args:
        boxes: [N, 4] (x1, y1, x2, y2).
        scores: [N].
        iou_threshold: a box is dropped when its IoU with a kept, higher-scoring box is > this.
        block: rows of the IoU matrix computed at once (bounds memory at ``block * N``).

    Returns:
        [K] int64 indices of the kept boxes, by decreasing score; equal scores keep their input order.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    suppressed = np.zeros(n, dtype=bool)
    keep: list[int] = []
    for start in range(0, n, block):
        rows = b[start:start + block]
        wh = (torch.minimum(rows[:, None, 2:], b[None, :, 2:])
              - torch.maximum(rows[:, None, :2], b[None, :, :2])).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        # NaN IoU (two empty boxes) compares False, so such boxes are kept, as in torchvision's kernel.
        iou = inter / (area[start:start + block, None] + area[None, :] - inter)
        over = (iou > iou_threshold).cpu().numpy()
        for r in range(rows.shape[0]):  # the greedy pass is sequential; numpy keeps each step ~1 us
            if not suppressed[start + r]:
                keep.append(start + r)
                suppressed |= over[r]
    return order[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]
