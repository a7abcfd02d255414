"""Images of a synthetic heads dataset with their attribute targets (``attributes.jsonl``), in memory.

Reads a folder or zip written by ``python -m training.synthetic_heads`` (training split): every line of
``attributes.jsonl`` names an image under ``images/``. Images are composited on white with their mask when
there is one (as the generator's renders for labelling are), resized to ``resolution`` (area filter).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from training.directions.attribute_specs import ATTRIBUTES, AttributeSpec, targets


@dataclass(frozen=True, eq=False)
class LabelledImages:
    """Attributes:
        images: ``[N, 3, R, R]`` uint8 RGB on white.
        values: ``[N, A]`` float32 targets in the order of ``specs``; known: ``[N, A]`` bool.
        identities: ``[N]`` int64 identity of each image (for an identity-disjoint validation split).
        specs: the attributes.
    """

    images: torch.Tensor
    values: torch.Tensor
    known: torch.Tensor
    identities: torch.Tensor
    specs: tuple[AttributeSpec, ...]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, mask: torch.Tensor) -> LabelledImages:
        return LabelledImages(self.images[mask], self.values[mask], self.known[mask], self.identities[mask],
                              self.specs)


class _Reader:
    def __init__(self, root: Path) -> None:
        self.zip = None
        if root.is_file():
            try:
                self.zip = zipfile.ZipFile(root)
            except zipfile.BadZipFile:
                raise ValueError(f"{root}: not a folder or zip of a synthetic heads dataset") from None
        elif not root.is_dir():
            raise FileNotFoundError(f"{root}: no such dataset")
        self.root = root

    def read(self, name: str) -> bytes | None:
        if self.zip is not None:
            try:
                return self.zip.read(name)
            except KeyError:
                return None
        p = self.root / name
        return p.read_bytes() if p.is_file() else None  # is_file: a FIFO is not read (issue 19)


def load_labelled_images(root: str | Path, resolution: int = 64, limit: int | None = None,
                         specs: tuple[AttributeSpec, ...] = ATTRIBUTES, progress: bool = True) -> LabelledImages:
    """Load up to ``limit`` images (all when None) of the dataset at ``root`` with their targets.

    Raises ``ValueError`` naming the file when ``attributes.jsonl`` is missing or an image cannot be read.
    """
    root = Path(root)
    reader = _Reader(root)
    raw = reader.read("attributes.jsonl")
    if raw is None:
        raise ValueError(f"{root}: no attributes.jsonl; --data must be a dataset made by "
                         "`python -m training.synthetic_heads` (it writes the attribute labels)")
    lines = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
    if limit is not None:
        lines = lines[:limit]
    if not lines:
        raise ValueError(f"{root}/attributes.jsonl lists no images")
    images, values, known, ids = [], [], [], []
    for rec in tqdm(lines, desc="reading labelled images", unit="img", disable=not progress):
        data = reader.read(f"images/{rec['file']}")
        if data is None:
            raise ValueError(f"{root}: images/{rec['file']} is listed in attributes.jsonl but missing")
        img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
        mask = reader.read(f"mask/{rec['file']}")
        if mask is not None:
            m = np.asarray(Image.open(io.BytesIO(mask)).convert("L"), dtype=np.float32)[..., None] / 255.0
            img = img * m + 255.0 * (1 - m)
        pil = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))
        if pil.size != (resolution, resolution):
            pil = pil.resize((resolution, resolution), Image.BOX)
        images.append(torch.from_numpy(np.array(pil)).permute(2, 0, 1))
        v, k = targets(rec["attributes"], specs)
        values.append(v)
        known.append(k)
        ids.append(int(rec.get("identity", len(ids))))
    return LabelledImages(torch.stack(images), torch.from_numpy(np.stack(values)), torch.from_numpy(np.stack(known)),
                          torch.tensor(ids, dtype=torch.int64), specs)
