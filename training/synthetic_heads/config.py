"""The dataset command's configuration (a frozen dataclass that tyro turns into the CLI) and its checks."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# 2: the evaluation views go round the head in 45-degree steps (cameras.EVAL_VIEWS); --full-yaw-fraction.
FORMAT_VERSION = 2
MIN_RESOLUTION, MAX_RESOLUTION = 16, 2048


@dataclass(frozen=True)
class DatasetConfig:
    """Make an EG3D/CGS-GAN-format multi-view dataset of synthetic heads (see README "Synthetic heads dataset").

    Attributes:
        out: output folder (or ``.zip`` file with ``--zip``).
        num_identities: how many different heads (train and test together).
        views_per_identity: random FFHQ-like views rendered of each training head.
        extra_side_views: additional views per training head at |yaw| 55-100 deg (0 = none).
        full_yaw_fraction: share of the random views whose yaw is drawn uniformly from the whole circle
            (-180, 180) deg instead of the FFHQ-like frontal distribution (0 = FFHQ-like only; see cameras.py).
        resolution: image width = height in pixels.
        seed: master seed; identity i gets its own seeds from (seed, i).
        zip: write a single uncompressed zip instead of a folder.
        test_fraction: share of identities held out (the last ones): no training images, but their
            ground-truth .ply and renders from the fixed evaluation views under ``test/``.
        workers: processes rendering identities in parallel (1 = in this process).
        exact: render training images without back-face culling (about 1.4x slower; the held-out
            evaluation renders are always exact).
        held_out_only: make only the held-out split (``test/``: ground truth and evaluation views of the last
            identities, the same files as in the full dataset), no training images: what evaluating a model
            needs, in seconds (needs ``--test-fraction``).
        device: where training images are rendered: "cuda" (gsplat, one CUDA context per worker), "cpu"
            (the torch reference renderer), or "auto" (cuda when a CUDA device and gsplat are usable). Both
            give the same images within the rendering tolerance stated in docs/synthetic-heads.md; the
            held-out ground truth is always rendered with the torch reference on the CPU.
    """

    out: Path
    num_identities: int = 1000
    views_per_identity: int = 5
    extra_side_views: int = 0
    resolution: int = 128
    seed: int = 0
    zip: bool = False
    test_fraction: float = 0.0
    workers: int = 2
    exact: bool = False
    full_yaw_fraction: float = 0.0
    held_out_only: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        problems = []
        for name in ("num_identities", "views_per_identity"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                problems.append(f"--{_flag(name)} must be a positive integer, got {v!r}")
        for name in ("extra_side_views", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                problems.append(f"--{_flag(name)} must be a non-negative integer, got {v!r}")
        if not isinstance(self.workers, int) or not 1 <= self.workers <= 64:
            problems.append(f"--workers must be an integer in 1..64, got {self.workers!r}")
        if not isinstance(self.resolution, int) or not MIN_RESOLUTION <= self.resolution <= MAX_RESOLUTION:
            problems.append(f"--resolution must be an integer in {MIN_RESOLUTION}..{MAX_RESOLUTION}, "
                            f"got {self.resolution!r}")
        if not isinstance(self.test_fraction, (int, float)) or not 0.0 <= self.test_fraction < 1.0 \
                or math.isnan(self.test_fraction):
            problems.append(f"--test-fraction must be in [0, 1), got {self.test_fraction!r}")
        elif not problems and self.num_test >= self.num_identities:
            problems.append(f"--test-fraction {self.test_fraction} leaves no training identity out of "
                            f"{self.num_identities}; lower it or add identities")
        if not isinstance(self.full_yaw_fraction, (int, float)) or isinstance(self.full_yaw_fraction, bool) \
                or not 0.0 <= self.full_yaw_fraction <= 1.0 or math.isnan(self.full_yaw_fraction):
            problems.append(f"--full-yaw-fraction must be in [0, 1], got {self.full_yaw_fraction!r}")
        if self.held_out_only and not self.test_fraction:
            problems.append("--held-out-only needs --test-fraction > 0 (the held-out split it makes)")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if self.zip and self.out.suffix.lower() != ".zip":
            problems.append(f"with --zip, --out must name a .zip file, got {str(self.out)!r}")
        if not self.zip and self.out.suffix.lower() == ".zip":
            problems.append(f"--out {str(self.out)!r} ends in .zip: add --zip, or pick a folder name")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def num_test(self) -> int:
        """Held-out identities: ``round(num_identities * test_fraction)``, at least 1 if the fraction > 0."""
        if self.test_fraction <= 0:
            return 0
        return max(1, int(math.floor(self.num_identities * self.test_fraction + 0.5)))

    @property
    def num_train(self) -> int:
        return self.num_identities - self.num_test

    @property
    def identities(self) -> range:
        """The identities this dataset renders: all of them, or the held-out ones with ``held_out_only``."""
        return range(self.num_train if self.held_out_only else 0, self.num_identities)

    @property
    def images_per_identity(self) -> int:
        return self.views_per_identity + self.extra_side_views

    @property
    def num_images(self) -> int:
        """Training images (the held-out evaluation renders not counted; none with ``held_out_only``)."""
        return 0 if self.held_out_only else self.num_train * self.images_per_identity

    def content_dict(self) -> dict:
        """What determines the dataset's content (not how it is computed or packed): a restart must match."""
        d = dataclasses.asdict(self)
        for key in ("out", "workers", "zip", "device"):
            d.pop(key)
        d["format_version"] = FORMAT_VERSION
        return d


def _flag(name: str) -> str:
    return name.replace("_", "-")
