"""A dataset's files: the folder or zip store, the ``dataset.json`` labels, image headers, and the limits.

training/dataset.py states the layout and the rules; :class:`training.dataset.ImageLabelDataset` applies them
with the readers here. Every problem raises :class:`DatasetError` naming the file.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.camera import LABEL_SIZE, Cameras
from core.regular_file import open_regular
from core.zip_limits import ZipLimits, zip_entry_count, zip_problems

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
IMAGE_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr")  # 8 bits per channel
ALPHA_MODES = ("LA", "PA", "RGBA")
MASK_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")
MAX_RESOLUTION = 4096  # px; larger images are refused when the dataset is opened
# Dataset zips: entries (images, masks, dataset.json) each up to 512 MiB, and an entry above 1 MiB may not
# inflate more than 100-fold (images are compressed already; dataset.json deflates ~4-fold).
ZIP_LIMITS = ZipLimits(max_entries=2_000_000, max_entry_bytes=512 << 20, max_ratio=100.0)


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file and what is wrong with it."""



# ---------------------------------------------------------------------------------------------- storage


class FolderStore:
    """Files below a folder, by relative posix name."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def where(self, rel: str) -> str:
        return str(self.root / rel)

    def is_file(self, rel: str) -> bool:  # a FIFO or device "is a file" here, and is refused when opened
        p = self.root / rel
        return p.exists() and not p.is_dir()

    def is_dir(self, rel: str) -> bool:
        return (self.root / rel).is_dir()

    def read(self, rel: str) -> bytes:
        with self.open(rel) as f:
            return f.read()

    def open(self, rel: str):
        return open_regular(self.root / rel, "a dataset file")  # a FIFO or device raises, never blocks

    def files(self, prefix: str) -> set[str]:
        """Every non-hidden file below ``prefix`` (a folder name ending in "/" or "")."""
        out = set()
        for dirpath, dirnames, filenames in os.walk(self.root / prefix):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            rel = "" if rel == "." else rel + "/"
            out.update(rel + f for f in filenames if not f.startswith("."))
        return out


class ZipStore:
    """Members of a zip under ``prefix``. A handle is opened lazily per process and thread, so the store can be
    pickled into DataLoader workers and used from several threads."""

    def __init__(self, path: Path, prefix: str, names: set[str]) -> None:
        self.path, self.prefix, self.names = path, prefix, names
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {"path": self.path, "prefix": self.prefix, "names": self.names}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _zip(self) -> zipfile.ZipFile:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.zf, local.pid = zipfile.ZipFile(self.path), os.getpid()
        return local.zf

    def where(self, rel: str) -> str:
        return f"{self.path}:{self.prefix}{rel}"

    def is_file(self, rel: str) -> bool:
        return self.prefix + rel in self.names

    def is_dir(self, rel: str) -> bool:
        start = self.prefix + rel.rstrip("/") + "/"
        return any(n.startswith(start) for n in self.names)

    def read(self, rel: str) -> bytes:
        return self._zip().read(self.prefix + rel)

    def open(self, rel: str):
        return self._zip().open(self.prefix + rel)

    def files(self, prefix: str) -> set[str]:
        start = self.prefix + prefix
        cut = len(self.prefix)
        return {n[cut:] for n in self.names if n.startswith(start) and not n.endswith("/")
                and not any(part.startswith(".") for part in n[len(start):].split("/"))}


def open_store(path: Path) -> tuple[FolderStore | ZipStore, str]:
    """The store whose top holds dataset.json, and the image folder's prefix in it ("" when still to be found:
    the top or ``images/``; ``"<name>/"`` when ``path`` is the image folder, CGS-GAN style)."""
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist")
    if not path.is_dir():
        names = _zip_names(path)
        if "dataset.json" in names:
            return ZipStore(path, "", names), ""
        tops = {n.split("/", 1)[0] for n in names if not n.startswith("__MACOSX/")}
        if len(tops) == 1 and f"{next(iter(tops))}/dataset.json" in names:
            return ZipStore(path, next(iter(tops)) + "/", names), ""
        raise DatasetError(f"{path}: no dataset.json at the top of the zip or inside its single top folder")
    parent = path.parent
    parent_layout = (parent / "dataset.json").is_file() and path != parent
    if (path / "dataset.json").is_file() and not (parent_layout and (parent / "mask").is_dir()
                                                 and not (path / "mask").is_dir()):
        return FolderStore(path), ""
    if parent_layout:  # CGS-GAN: --data is the image folder, dataset.json and mask/ beside it
        return FolderStore(parent), path.name + "/"
    hint = ""
    config = path / "config.json"
    if config.is_file() and '"complete": false' in config.read_text(errors="replace"):
        hint = " (a synthetic-heads dataset that is not finished: rerun the writer to complete it)"
    raise DatasetError(f"missing {path / 'dataset.json'}{hint}")


def _zip_names(path: Path) -> set[str]:
    """The entry names of a dataset zip whose declared sizes and compression ratios are all within
    :data:`ZIP_LIMITS` (checked before anything is inflated: a 1 MB entry claiming 1 GiB is refused here,
    naming it, instead of costing gigabytes on every read)."""
    try:
        with open_regular(path, "a folder or a .zip file", error=lambda p: DatasetError(f"{path} {p}")) as f:
            count = zip_entry_count(f)
            if count is None:
                raise DatasetError(f"{path} is neither a folder nor a readable zip file (no zip directory)")
            if count > ZIP_LIMITS.max_entries:
                raise DatasetError(f"{path}: {count:,} entries, more than {ZIP_LIMITS.max_entries:,}")
            with zipfile.ZipFile(f) as zf:
                infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{path} is neither a folder nor a readable zip file ({e})") from None
    problems = zip_problems(infos, ZIP_LIMITS)
    if problems:
        raise DatasetError(f"{path}: refused: {'; '.join(problems[:5])}")
    return {i.filename for i in infos}


# ---------------------------------------------------------------------------------------------- checks


def read_json(store, rel: str):
    try:
        return json.loads(store.read(rel))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{store.where(rel)}: not readable JSON ({e})") from None


def read_labels(store) -> dict[str, np.ndarray]:
    where = store.where("dataset.json")
    data = read_json(store, "dataset.json")
    raw = data.get("labels") if isinstance(data, dict) else None
    if isinstance(raw, dict):
        raw = list(raw.items())
    if not isinstance(raw, list):
        raise DatasetError(f"{where}: no \"labels\" list (expected {{\"labels\": [[name, [25 numbers]], ...]}})")
    if not raw:
        raise DatasetError(f"{where}: \"labels\" is empty: the dataset has no images")
    labels: dict[str, np.ndarray] = {}
    for k, item in enumerate(raw):
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
            raise DatasetError(f"{where}: labels[{k}] is not a [name, [25 numbers]] pair: {str(item)[:80]}")
        name, value = clean_name(item[0]), item[1]
        if not name:
            raise DatasetError(f"{where}: labels[{k}] has an unusable file name {item[0]!r}")
        ok = isinstance(value, list) and len(value) == LABEL_SIZE and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
        if not ok:
            got = (f"{len(value)} values" if isinstance(value, list) and len(value) != LABEL_SIZE
                   else "a non-number in it" if isinstance(value, list) else type(value).__name__)
            raise DatasetError(f"{where}: the label of {name} must be {LABEL_SIZE} numbers, got {got}")
        if not all(math.isfinite(x) for x in value):
            raise DatasetError(f"{where}: the label of {name} holds NaN or Inf")
        if name in labels:
            raise DatasetError(f"{where}: {name} is labelled twice")
        labels[name] = np.asarray(value, dtype=np.float64)
    names = sorted(labels)
    stacked = torch.from_numpy(np.stack([labels[n] for n in names]))
    try:
        Cameras.from_label(stacked, validate=True)
    except ValueError:
        for name in names:  # name the first bad one
            try:
                Cameras.from_label(torch.from_numpy(labels[name]), validate=True)
            except ValueError as e:
                raise DatasetError(f"{where}: the label of {name} is not a camera: {e}") from None
    return labels


def clean_name(name: str) -> str:
    """Posix, relative, no '.' or '..' parts; '' if unusable."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or name.startswith("/"):
        return ""
    return "/".join(parts)


def image_header(store, rel: str, modes: tuple[str, ...], what: str) -> tuple[tuple[int, int], str]:
    """``(size, mode)`` from the file's header, or DatasetError naming it."""
    try:
        with store.open(rel) as f, Image.open(f) as im:
            size, mode = im.size, im.mode
    except Image.UnidentifiedImageError:
        raise DatasetError(f"{store.where(rel)}: cannot read this {what}: not an image format PIL knows, "
                           "or corrupt") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{store.where(rel)}: cannot read this {what} ({type(e).__name__}: {e})") from None
    if mode not in modes:
        raise DatasetError(f"{store.where(rel)}: {what} mode {mode} is not supported (8-bit "
                           f"{', '.join(modes)} only)")
    return size, mode


def index_of_stem(name: str) -> int | None:
    m = re.fullmatch(r"\D*(\d+)", name.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    return int(m.group(1)) if m else None
