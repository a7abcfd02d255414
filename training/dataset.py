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

Modules: this one (the options and :class:`ImageLabelDataset`), ``training.dataset_store`` (reading the folder or
zip, dataset.json and image headers), ``training.data_stream`` (the shuffled stream of batches); the names of
both are importable from here as well.

Example::

    ds = ImageLabelDataset(DatasetOptions("data/heads", index_list="custom_dist/smile_pose_rebalancing.json"))
    for images, labels in infinite_batches(ds, 32, rank=rank, world_size=gpus, seed=seed, start_index=done):
        ...   # images uint8 [32, 3, H, W], labels float32 [32, 25]
    fake_c = sample_labels(ds, 32, generator)   # labels for the generator, same distribution
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from core.camera import mirror_label
from training.data_stream import (  # noqa: F401  (re-exported: the stream's public names)
    BACKGROUND_HIGH, epoch_order, infinite_batches, rank_stream, sample_labels, stream_background,
)
from training.dataset_store import (  # noqa: F401  (re-exported: DatasetError's public home, the limits)
    ALPHA_MODES, IMAGE_EXTENSIONS, IMAGE_MODES, MASK_MODES, MAX_RESOLUTION, ZIP_LIMITS, DatasetError, FolderStore,
    clean_name, image_header, index_of_stem, open_store, read_json, read_labels,
)

WHITE = (255, 255, 255)


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


class ImageLabelDataset(torch.utils.data.Dataset):
    """Images and labels of an EG3D/CGS-GAN dataset; everything is checked when it is built.

    ``dataset[i]`` is ``(image uint8 [3, H, W], label float32 [25])``: entry ``i`` composited on a background
    (see :meth:`load`), flipped with a mirrored label for ``i >= len/2`` when ``xflip`` is on.
    """

    def __init__(self, options: DatasetOptions) -> None:
        self.options = options
        root = Path(os.path.abspath(Path(options.path).expanduser()))  # symlinks kept
        self._store, base = open_store(root)
        store = self._store
        labels = read_labels(store)
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
            size, _ = image_header(store, mask, MASK_MODES, "mask")
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
            (w, h), mode = image_header(store, rel, IMAGE_MODES, "image")
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
        inside = "" if os.path.isabs(rel) else clean_name(rel)
        if inside and store.is_file(inside):
            where, data = store.where(inside), read_json(store, inside)
        else:
            path = Path(rel).expanduser().absolute()
            if not path.is_file():
                looked = f"{store.where(inside)} and " if inside else ""
                raise DatasetError(f"index list {rel} not found (looked for {looked}{path})")
            where, data = str(path), read_json(FolderStore(path.parent), path.name)
        if not isinstance(data, list):
            raise DatasetError(f"{where}: the index list must be a JSON list of image indices or names")
        if not data:
            raise DatasetError(f"{where}: the index list is empty")
        by_name = {n: k for k, n in enumerate(files)}
        by_index: dict[int, int] = {}
        for k, n in enumerate(files):
            i = index_of_stem(n)
            if i is not None:
                by_index[i] = -1 if i in by_index else k  # -1: ambiguous
        order = []
        for pos, item in enumerate(data):
            if isinstance(item, str):
                k = by_name.get(clean_name(item))
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

    def labels_at(self, idx: torch.Tensor) -> torch.Tensor:
        """``[n, 25]`` float32 labels of the entries ``idx`` (``[n]`` int64); a new tensor."""
        return self._labels[idx]

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
