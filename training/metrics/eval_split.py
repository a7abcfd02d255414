"""The held-out split of a synthetic-heads dataset (``python -m training.synthetic_heads --test-fraction``):
identities with their ground-truth Gaussians, evaluation cameras, images and masks, from a folder or a zip.
Used by :func:`training.metrics.consistency.gt_consistency` callers and training/metrics/groundtruth.py.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.camera import Cameras
from core.gaussians import GaussianSet
from core.ply import read_ply


@dataclass(frozen=True)
class EvalIdentity:
    """One held-out identity of a synthetic dataset: ground truth and its evaluation views."""

    identity: int
    gt: GaussianSet
    cameras: Cameras          # [V]
    images: np.ndarray        # [V, H, W, 3] uint8
    masks: np.ndarray | None  # [V, H, W] uint8, or None if the dataset has none


_EVAL_NAME = re.compile(r"^(\d+)_(\d+)\.png$")


def load_eval_split(root: str | Path, limit: int | None = None) -> list[EvalIdentity]:
    """The held-out split of a dataset written by ``python -m training.synthetic_heads`` (folder or zip):
    ``test/dataset.json``, ``test/images``, ``test/mask`` and ``test/gt/IIIII.ply``. ``limit``: first identities."""
    root = Path(root)
    with _open_reader(root) as reader:
        return _load_identities(root, reader, _held_out_labels(root, reader), limit)


def _load_identities(root: Path, reader, labels: list[tuple[str, list[float]]],
                     limit: int | None) -> list[EvalIdentity]:
    from PIL import Image

    groups: dict[int, list[tuple[str, list[float]]]] = {}
    for name, label in labels:
        m = _EVAL_NAME.match(name)
        if m is None:
            raise ValueError(f"{root}: unexpected held-out image name {name!r} (expected IIIII_VV.png)")
        groups.setdefault(int(m.group(1)), []).append((name, label))
    out = []
    for identity in sorted(groups)[:limit]:
        items = sorted(groups[identity])
        cams = Cameras.from_label(torch.tensor([lab for _, lab in items], dtype=torch.float32))
        images = np.stack([np.asarray(Image.open(io.BytesIO(reader.read(f"test/images/{n}"))).convert("RGB"))
                           for n, _ in items])
        masks = None
        if reader.exists(f"test/mask/{items[0][0]}"):
            masks = np.stack([np.asarray(Image.open(io.BytesIO(reader.read(f"test/mask/{n}"))).convert("L"))
                              for n, _ in items])
        gt = reader.ply(f"test/gt/{identity:05d}.ply")
        out.append(EvalIdentity(identity, gt, cams, images, masks))
    return out


def held_out_labels(root: str | Path) -> list[tuple[str, list[float]]]:
    """The held-out split's ``(image name, camera label)`` pairs (``test/dataset.json`` of a folder or zip);
    ``ValueError`` naming the command that writes one when the dataset has none. Cheap: a caller can check
    a dataset with it before loading a model."""
    root = Path(root)
    with _open_reader(root) as reader:
        return _held_out_labels(root, reader)


def _open_reader(root: Path) -> "_DirReader | _ZipReader":
    """The dataset's reader (a context manager: a zip is closed on leaving); ``ValueError`` for a file that
    is no zip."""
    if not root.is_file():
        return _DirReader(root)
    try:
        return _ZipReader(root)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{root} is neither a dataset folder nor a zip ({exc})") from None


def _held_out_labels(root: Path, reader) -> list[tuple[str, list[float]]]:
    try:
        return json.loads(reader.read("test/dataset.json"))["labels"]
    except (KeyError, FileNotFoundError, json.JSONDecodeError) as exc:
        raise ValueError(f"{root} has no held-out split (test/dataset.json: {exc}); write the dataset with "
                         "python -m training.synthetic_heads --test-fraction > 0 (or --held-out-only)"
                         ) from None


class _DirReader:
    def __init__(self, root: Path):
        self.root = root

    def __enter__(self) -> "_DirReader":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    def ply(self, name: str) -> GaussianSet:
        return read_ply(self.root / name)


class _ZipReader:
    def __init__(self, path: Path):
        self.zf = zipfile.ZipFile(path)
        self.names = set(self.zf.namelist())

    def __enter__(self) -> "_ZipReader":
        return self

    def __exit__(self, *exc) -> None:
        self.zf.close()

    def read(self, name: str) -> bytes:
        if name not in self.names:
            raise FileNotFoundError(name)
        return self.zf.read(name)

    def exists(self, name: str) -> bool:
        return name in self.names

    def ply(self, name: str) -> GaussianSet:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(name).name
            path.write_bytes(self.read(name))
            return read_ply(path)
