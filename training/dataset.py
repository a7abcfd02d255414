"""Training images + camera labels in the EG3D / CGS-GAN layout, and the shuffled stream training draws from.

Layout (a folder, or a ``.zip`` holding the same tree at its top or under one top folder)::

    dataset.json     {"labels": [["00000.png", [25 numbers]], ...]}   names relative to the image folder
    00000.png ...    the images, or images/00000.png ... (our synthetic writer, CGS-GAN's parent layout)
    mask/00000.png   optional 8-bit foreground masks, same name (or same stem + .png), same size

``path`` may also be the image folder itself with ``dataset.json`` and ``mask/`` in its parent (how the
official CGS-GAN is called: ``--data FFHQC/512``); the parent's dataset.json is used when ``path`` has none,
or has one but no ``mask/`` while the parent has (our synthetic writer's ``images/`` folder). Otherwise the
image folder is ``path``, else ``path/images``: the first that holds the first labelled name. Masks come from
``<dataset root>/mask``, else ``<image folder>/mask``.

Rules (``ImageLabelDataset`` checks all of them when it is built and raises :class:`DatasetError`, naming
the file, before training starts):

- Every label is 25 finite numbers (cam2world 4x4 row-major, normalised intrinsics 3x3, see core/camera.py)
  whose cam2world is a rigid transform. Every labelled image exists, and every image file in the image folder
  has a label (an unlabelled file is an error, not a warning: it usually means the wrong folder or a stale
  dataset.json). Image headers are opened with PIL up front (size and mode; decoding happens on load): all
  images square and of one size, 8-bit (PNG, JPEG, WebP, ...). Greyscale and palette images are converted to
  RGB; an alpha channel is **ignored** (dropped, with a warning): masks come only from ``mask/``.
- Zips: every entry's declared size and compression ratio are checked against :data:`ZIP_LIMITS` before
  anything is inflated (an entry inflating 1 MB to 1 GiB is refused by name); images above
  :data:`MAX_RESOLUTION` are refused; FIFOs, devices and sockets are refused wherever a file is expected.
- Masks: ``"auto"`` uses them when the mask folder has one for every image (a partial folder is ignored with
  a warning), ``"yes"`` requires them, ``"no"`` never reads them. With masks, an image is composited as
  ``image*m + bg*(1-m)`` in integers with rounding, ``bg`` a random colour (0..254 per channel, as the
  official code) or white (255) when ``random_background`` is off (for metrics).
- Order: the labelled names sorted, or the index list (a JSON list of integers and/or names, repeats allowed:
  rebalancing as CGS-GAN's ``custom_dist/*.json``; an integer i names the file whose stem is i, e.g.
  ``00042.png`` or ``img00000042.png``). ``max_images`` keeps a random subset (by ``seed``) of those entries.
  With ``xflip`` the entries are followed by the same entries flipped horizontally, with mirrored labels
  (:func:`core.camera.mirror_label`).

Example::

    ds = ImageLabelDataset(DatasetOptions("data/heads", index_list="custom_dist/smile_pose_rebalancing.json"))
    for images, labels in infinite_batches(ds, 32, rank=rank, world_size=gpus, seed=seed, start_index=done):
        ...   # images uint8 [32, 3, H, W], labels float32 [32, 25]
    fake_c = sample_labels(ds, 32, generator)   # labels for the generator, same distribution
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import torch
from PIL import Image

from core.camera import LABEL_SIZE, Cameras, mirror_label
from core.regular_file import open_regular
from core.zip_limits import ZipLimits, zip_entry_count, zip_problems

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
IMAGE_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr")  # 8 bits per channel
ALPHA_MODES = ("LA", "PA", "RGBA")
MASK_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")
BACKGROUND_HIGH = 255  # random background colours are integers in [0, BACKGROUND_HIGH), as the official code
WHITE = (255, 255, 255)
MAX_RESOLUTION = 4096  # px; larger images are refused when the dataset is opened
# Dataset zips: entries (images, masks, dataset.json) each up to 512 MiB, and an entry above 1 MiB may not
# inflate more than 100-fold (images are compressed already; dataset.json deflates ~4-fold).
ZIP_LIMITS = ZipLimits(max_entries=2_000_000, max_entry_bytes=512 << 20, max_ratio=100.0)


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file and what is wrong with it."""


@dataclass(frozen=True)
class DatasetOptions:
    """Where the dataset is and how to read it (see the module docstring for the layout and the rules).

    Attributes:
        path: folder or .zip holding images + dataset.json (+ mask/ folder); relative to the cwd or absolute.
        resolution: expected image size in pixels (None: that of the first image); a mismatch is an error.
        xflip: double the dataset with flipped images and mirrored labels.
        masks: "auto" (use mask/<name> when there is one for every image), "yes" (required), "no".
        random_background: composite masked images on a random colour per load, else on white.
        index_list: JSON list of image indices/names, repeats allowed; relative to the dataset, else the cwd.
        max_images: keep a random subset of this many entries (before x-flip).
        seed: for the max_images subset and the backgrounds ``__getitem__`` draws.
    """

    path: str
    resolution: int | None = None
    xflip: bool = True
    masks: Literal["auto", "yes", "no"] = "auto"
    random_background: bool = True
    index_list: str | None = None
    max_images: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.masks not in ("auto", "yes", "no"):
            raise ValueError(f"masks must be 'auto', 'yes' or 'no', got {self.masks!r}")
        for name in ("resolution", "max_images"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {v!r}")


# ---------------------------------------------------------------------------------------------- storage

class _Folder:
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


class _Zip:
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


def _open_store(path: Path) -> tuple[_Folder | _Zip, str]:
    """The store whose top holds dataset.json, and the image folder's prefix in it ("" when still to be found:
    the top or ``images/``; ``"<name>/"`` when ``path`` is the image folder, CGS-GAN style)."""
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist")
    if not path.is_dir():
        names = _zip_names(path)
        if "dataset.json" in names:
            return _Zip(path, "", names), ""
        tops = {n.split("/", 1)[0] for n in names if not n.startswith("__MACOSX/")}
        if len(tops) == 1 and f"{next(iter(tops))}/dataset.json" in names:
            return _Zip(path, next(iter(tops)) + "/", names), ""
        raise DatasetError(f"{path}: no dataset.json at the top of the zip or inside its single top folder")
    parent = path.parent
    parent_layout = (parent / "dataset.json").is_file() and path != parent
    if (path / "dataset.json").is_file() and not (parent_layout and (parent / "mask").is_dir()
                                                 and not (path / "mask").is_dir()):
        return _Folder(path), ""
    if parent_layout:  # CGS-GAN: --data is the image folder, dataset.json and mask/ beside it
        return _Folder(parent), path.name + "/"
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

def _read_json(store, rel: str):
    try:
        return json.loads(store.read(rel))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{store.where(rel)}: not readable JSON ({e})") from None


def _read_labels(store) -> dict[str, np.ndarray]:
    where = store.where("dataset.json")
    data = _read_json(store, "dataset.json")
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
        name, value = _clean_name(item[0]), item[1]
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


def _clean_name(name: str) -> str:
    """Posix, relative, no '.' or '..' parts; '' if unusable."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or name.startswith("/"):
        return ""
    return "/".join(parts)


def _header(store, rel: str, modes: tuple[str, ...], what: str) -> tuple[tuple[int, int], str]:
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


def _index_of_stem(name: str) -> int | None:
    m = re.fullmatch(r"\D*(\d+)", name.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------------- dataset

class ImageLabelDataset(torch.utils.data.Dataset):
    """Images and labels of an EG3D/CGS-GAN dataset; everything is checked when it is built.

    ``dataset[i]`` is ``(image uint8 [3, H, W], label float32 [25])``: entry ``i`` composited on a background
    (see :meth:`load`), flipped with a mirrored label for ``i >= len/2`` when ``xflip`` is on.
    """

    def __init__(self, options: DatasetOptions) -> None:
        self.options = options
        root = Path(os.path.abspath(Path(options.path).expanduser()))  # symlinks kept
        self._store, base = _open_store(root)
        store = self._store
        labels = _read_labels(store)
        files = sorted(labels)
        base = self._find_image_folder(files, base)
        self._base = base
        present = store.files(base)
        mask_dirs = list(dict.fromkeys(["mask", base + "mask"]))
        self._mask_dir = next((d for d in mask_dirs if store.is_dir(d)), None)
        for name in files:
            if base + name not in present:
                raise DatasetError(f"{store.where(base + name)} is listed in {store.where('dataset.json')} "
                                   "but does not exist")
        unlabelled = sorted(p for p in present if p.lower().endswith(IMAGE_EXTENSIONS)
                            and p[len(base):] not in labels and not any(p.startswith(d + "/") for d in mask_dirs))
        if unlabelled:
            shown = ", ".join(store.where(p) for p in unlabelled[:3])
            raise DatasetError(f"{len(unlabelled)} image file(s) have no label in {store.where('dataset.json')}: "
                               f"{shown}{' ...' if len(unlabelled) > 3 else ''} (label them or move them away)")
        self._files = files
        self._resolution = self._check_images(files)
        self._masks = self._find_masks(files)
        order = self._read_index_list(files) if options.index_list else list(range(len(files)))
        if options.max_images is not None and len(order) > options.max_images:
            keep = np.random.default_rng(options.seed).permutation(len(order))[:options.max_images]
            order = [order[k] for k in sorted(keep)]
        self._entry_file = np.asarray(order, dtype=np.int64)
        base_labels = torch.from_numpy(np.stack([labels[files[k]] for k in order])).float()
        self._labels = torch.cat([base_labels, mirror_label(base_labels)]) if options.xflip else base_labels
        self._rng: tuple[int, np.random.Generator] | None = None

    # ------------------------------------------------------------------ layout

    def _find_image_folder(self, files: list[str], base: str) -> str:
        candidates = [base] if base else ["", "images/"]
        for cand in candidates:
            if self._store.is_file(cand + files[0]):
                return cand
        looked = " or ".join(self._store.where(c + files[0]) for c in candidates)
        raise DatasetError(f"{files[0]} is listed in {self._store.where('dataset.json')} but does not exist "
                           f"(looked for {looked})")

    def _find_masks(self, files: list[str]) -> list[str] | None:
        mode, store = self.options.masks, self._store
        if mode == "no":
            return None
        if self._mask_dir is None:
            if mode == "yes":
                raise DatasetError(f"masks='yes' but there is no mask folder {store.where('mask')}")
            return None
        present = store.files(self._mask_dir + "/")
        masks, missing = [], []
        for name in files:
            same, png = f"{self._mask_dir}/{name}", f"{self._mask_dir}/{name.rsplit('.', 1)[0]}.png"
            found = same if same in present else png if png in present else None
            masks.append(found)
            if found is None:
                missing.append(same)
        if missing:
            msg = f"{len(missing)} of {len(files)} images have no mask, e.g. {store.where(missing[0])}"
            if mode == "yes":
                raise DatasetError(msg)
            warnings.warn(f"{msg}: masks are not used", stacklevel=3)
            return None
        for name, mask in zip(files, masks):
            size, _ = _header(store, mask, MASK_MODES, "mask")
            if size != (self._resolution, self._resolution):
                raise DatasetError(f"{store.where(mask)}: mask is {size[0]}x{size[1]}, its image {name} is "
                                   f"{self._resolution}x{self._resolution}")
        return masks

    def _check_images(self, files: list[str]) -> int:
        store, want = self._store, self.options.resolution
        first = None
        with_alpha = 0
        for name in files:
            rel = self._base + name
            (w, h), mode = _header(store, rel, IMAGE_MODES, "image")
            if w != h:
                raise DatasetError(f"{store.where(rel)}: image is {w}x{h}, not square")
            if w > MAX_RESOLUTION:
                raise DatasetError(f"{store.where(rel)}: image is {w}x{h}, above the limit of "
                                   f"{MAX_RESOLUTION} px")
            if first is None:
                first = (w, name)
                if want is not None and w != want:
                    raise DatasetError(f"{store.where(rel)}: image is {w}x{h}, expected resolution {want}")
            elif w != first[0]:
                raise DatasetError(f"{store.where(rel)}: image is {w}x{h}, but {first[1]} is {first[0]}x{first[0]}"
                                   " (all images must have one size)")
            with_alpha += mode in ALPHA_MODES
        if with_alpha:
            warnings.warn(f"{with_alpha} image(s) have an alpha channel; it is ignored (masks come only from "
                          "mask/)", stacklevel=3)
        return first[0]

    def _read_index_list(self, files: list[str]) -> list[int]:
        rel, store = self.options.index_list, self._store
        inside = "" if os.path.isabs(rel) else _clean_name(rel)
        if inside and store.is_file(inside):
            where, data = store.where(inside), _read_json(store, inside)
        else:
            path = Path(rel).expanduser().absolute()
            if not path.is_file():
                looked = f"{store.where(inside)} and " if inside else ""
                raise DatasetError(f"index list {rel} not found (looked for {looked}{path})")
            where, data = str(path), _read_json(_Folder(path.parent), path.name)
        if not isinstance(data, list):
            raise DatasetError(f"{where}: the index list must be a JSON list of image indices or names")
        if not data:
            raise DatasetError(f"{where}: the index list is empty")
        by_name = {n: k for k, n in enumerate(files)}
        by_index: dict[int, int] = {}
        for k, n in enumerate(files):
            i = _index_of_stem(n)
            if i is not None:
                by_index[i] = -1 if i in by_index else k  # -1: ambiguous
        order = []
        for pos, item in enumerate(data):
            if isinstance(item, str):
                k = by_name.get(_clean_name(item))
            elif isinstance(item, int) and not isinstance(item, bool):
                k = by_index.get(item)
                if k == -1:
                    raise DatasetError(f"{where}: entry {pos} ({item}) matches several images; use names")
            else:
                raise DatasetError(f"{where}: entry {pos} is {item!r}, not an image index or name")
            if k is None:
                raise DatasetError(f"{where}: entry {pos} ({item!r}) names no image of the dataset")
            order.append(k)
        return order

    # ------------------------------------------------------------------ public

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def has_masks(self) -> bool:
        return self._masks is not None

    @property
    def num_files(self) -> int:
        """Distinct image files in dataset.json (all were checked; the entries may use only some)."""
        return len(self._files)

    def labels(self) -> torch.Tensor:
        """``[len, 25]`` float32 labels in ``__getitem__`` order (mirrored where flipped); a copy."""
        return self._labels.clone()

    def names(self) -> list[str]:
        """The image name of each entry in ``__getitem__`` order (flipped entries repeat the names)."""
        names = [self._files[k] for k in self._entry_file]
        return names + names if self.options.xflip else names

    def describe(self) -> str:
        """One line for logs: files, entries, size, masks, flip."""
        o = self.options
        masks = f"masks from {self._store.where(self._mask_dir)}" if self.has_masks else "no masks"
        index = f", index list {o.index_list}" if o.index_list else ""
        return (f"{self._store.where(self._base) or o.path}: {self.num_files} images {self.resolution}px, "
                f"{len(self)} entries{index}{', x-flip' if o.xflip else ''}, {masks}")

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.load(i)

    def load(self, i: int, background: tuple[int, int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Entry ``i``: ``(image uint8 [3, H, W], label float32 [25])``.

        With masks the image is composited on ``background`` (RGB 0..255); None draws one from this
        dataset's own generator (seeded from ``options.seed``, and the worker id in a DataLoader worker) when
        ``random_background`` is on, else white. Without masks ``background`` is ignored.
        """
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} entries")
        i %= n
        entries = len(self._entry_file)
        k = int(self._entry_file[i % entries])
        image = self._decode(self._base + self._files[k], "RGB")
        if self._masks is not None:
            if background is None:
                background = self._draw_background() if self.options.random_background else WHITE
            image = composite(image, self._decode(self._masks[k], "L"), background)
        if i >= entries:
            image = image[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), self._labels[i].clone()

    def _decode(self, rel: str, mode: str) -> np.ndarray:
        try:
            with Image.open(io.BytesIO(self._store.read(rel))) as im:
                array = np.asarray(im.convert(mode))
        except (OSError, SyntaxError, ValueError, KeyError, zipfile.BadZipFile,
                Image.DecompressionBombError) as e:
            raise DatasetError(f"{self._store.where(rel)}: cannot decode ({type(e).__name__}: {e})") from None
        if array.shape[:2] != (self._resolution, self._resolution):
            raise DatasetError(f"{self._store.where(rel)}: is now {array.shape[1]}x{array.shape[0]}, was "
                               f"{self._resolution}x{self._resolution} when the dataset was opened")
        return array

    def _draw_background(self) -> tuple[int, int, int]:
        if self._rng is None or self._rng[0] != os.getpid():
            info = torch.utils.data.get_worker_info()
            worker = 0 if info is None else info.id + 1
            self._rng = (os.getpid(), np.random.default_rng([self.options.seed, 0x6267, worker]))
        return tuple(int(c) for c in self._rng[1].integers(0, BACKGROUND_HIGH, 3))


def composite(image: np.ndarray, mask: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """``image [H, W, 3] uint8`` over ``background`` through ``mask [H, W] uint8`` (255 = image), rounded."""
    bg = np.asarray(background)
    if bg.shape != (3,) or not ((0 <= bg) & (bg <= 255)).all():
        raise ValueError(f"background must be 3 integers in 0..255, got {background!r}")
    m = mask.astype(np.uint16)[..., None]
    out = image.astype(np.uint16) * m + bg.astype(np.uint16) * (255 - m)
    return ((out + 127) // 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- streams

def epoch_order(n: int, epoch: int, seed: int) -> np.ndarray:
    """The permutation of ``range(n)`` used for ``epoch`` of the stream (from ``(seed, epoch)``)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def stream_background(seed: int, position: int) -> tuple[int, int, int]:
    """The background colour of the sample at ``position`` of the global stream (0..254 per channel)."""
    return tuple(int(c) for c in np.random.default_rng([seed, 0x6267, position]).integers(0, BACKGROUND_HIGH, 3))


def rank_stream(n: int, *, rank: int = 0, world_size: int = 1, seed: int = 0, start_index: int = 0
                ) -> Iterator[tuple[int, int]]:
    """``(entry, global position)`` pairs this rank draws, forever. Epoch e's permutation is split by stride:
    rank r takes its positions r, r + world_size, ... so ranks are disjoint and together cover each epoch.
    ``start_index`` skips the first samples of this rank's stream (resume)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
    if n < world_size:
        raise ValueError(f"{n} entries cannot be split among {world_size} ranks")
    if start_index < 0:
        raise ValueError(f"start_index must be >= 0, got {start_index}")
    per_epoch = len(range(rank, n, world_size))
    epoch, offset = divmod(start_index, per_epoch)
    while True:
        order = epoch_order(n, epoch, seed)
        for j in range(offset, per_epoch):
            p = rank + j * world_size
            yield int(order[p]), epoch * n + p
        epoch, offset = epoch + 1, 0


class _Batches:
    """Batch sampler of ``(entry, background)`` items for a DataLoader."""

    def __init__(self, stream: Iterator[tuple[int, int]], batch_size: int, seed: int, backgrounds: bool) -> None:
        self.stream, self.batch_size, self.seed, self.backgrounds = stream, batch_size, seed, backgrounds

    def __iter__(self):
        while True:
            batch = []
            for _ in range(self.batch_size):
                i, pos = next(self.stream)
                batch.append((i, stream_background(self.seed, pos) if self.backgrounds else None))
            yield batch


class _Loads(torch.utils.data.Dataset):
    def __init__(self, dataset: ImageLabelDataset) -> None:
        self.dataset = dataset

    def __getitem__(self, item: tuple[int, tuple[int, int, int] | None]):
        return self.dataset.load(*item)


def infinite_batches(dataset: ImageLabelDataset, batch_size: int, *, rank: int = 0, world_size: int = 1,
                     seed: int = 0, num_workers: int = 0, start_index: int = 0
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless ``(images uint8 [B, 3, H, W], labels float32 [B, 25])`` batches for one rank.

    A new permutation per epoch from ``(seed, epoch)``, split among ranks (:func:`rank_stream`); batches run
    across epoch ends. Masked images get the background :func:`stream_background` of their global position
    (white if ``random_background`` is off), so the stream depends only on the arguments, not on
    ``num_workers`` or timing. ``start_index`` = samples this rank already drew: a resumed run continues
    exactly where an uninterrupted one would be.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stream = rank_stream(len(dataset), rank=rank, world_size=world_size, seed=seed, start_index=start_index)
    backgrounds = dataset.has_masks and dataset.options.random_background
    batches = _Batches(stream, batch_size, seed, backgrounds)
    yield from torch.utils.data.DataLoader(_Loads(dataset), batch_sampler=batches, num_workers=num_workers)


def sample_labels(dataset: ImageLabelDataset, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[n, 25]`` labels of uniformly random entries: the generator's pose distribution (rebalanced by the
    index list and flipped, as the official code's fake labels)."""
    idx = torch.randint(len(dataset), (n,), generator=generator)
    return dataset._labels[idx]
