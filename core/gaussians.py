"""The 3D Gaussian scene, stored pre-activation exactly as standard 3DGS stores it.

World space: metres-free "scene units"; the CGS-GAN heads live in the unit cube centred at the origin,
+y up, the face looking toward +z.

Activations (applied by the renderer, never stored):
    scale    = exp(log_scales)                    [..., N, 3]  scene units, one std-dev per local axis
    opacity  = sigmoid(opacity_logits)            [..., N]     in (0, 1)
    rotation = normalize(quats)                   [..., N, 4]  (w, x, y, z), rotates local -> world
    colour   = max(0, 0.5 + sum_k SH_k(dir) sh_k)  [..., N, 3]  RGB in [0, 1] (not clamped above);
               degree 0 gives 0.5 + C0 * sh[..., 0, :] for every view direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import torch

from core.sh import C0 as SH_C0  # noqa: F401  (1 / (2 sqrt(pi)), the degree-0 SH constant; re-exported)
from core.shapes import check_finite, check_tensor, check_trailing_shape


FIELD_NAMES = ("means", "quats", "log_scales", "opacity_logits", "sh")


def sh_coeff_count(degree: int) -> int:
    """Number of SH coefficients per colour channel for ``degree`` (0..3): 1, 4, 9, 16."""
    if degree not in (0, 1, 2, 3):
        raise ValueError(f"SH degree must be 0, 1, 2 or 3, got {degree}")
    return (degree + 1) ** 2


def sh_degree_for_count(k: int) -> int:
    """Inverse of :func:`sh_coeff_count`; raises ``ValueError`` for counts that are not 1, 4, 9 or 16."""
    degree = math.isqrt(k) - 1
    if k not in (1, 4, 9, 16):
        raise ValueError(f"SH coefficient count must be 1, 4, 9 or 16 (degree 0-3), got {k}")
    return degree


def rgb_to_sh_dc(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> the degree-0 SH coefficient that renders as that colour: ``(rgb - 0.5) / C0``."""
    return (rgb - 0.5) / SH_C0


def sh_dc_to_rgb(dc: torch.Tensor) -> torch.Tensor:
    """Degree-0 SH coefficient -> view-independent RGB (before the renderer's clamp at 0)."""
    return dc * SH_C0 + 0.5


@dataclass(frozen=True, eq=False)
class GaussianSet:
    """One scene (``[N, ...]``) or a batch of scenes with equal counts (``[B, N, ...]`` or more leading dims).

    Attributes:
        means: ``[..., N, 3]`` centres, world space.
        quats: ``[..., N, 4]`` rotations as quaternions (w, x, y, z), not necessarily normalised.
        log_scales: ``[..., N, 3]`` natural log of the per-axis standard deviations.
        opacity_logits: ``[..., N]`` logit of opacity.
        sh: ``[..., N, K, 3]`` spherical-harmonic coefficients, K = 1, 4, 9 or 16 (degree 0..3);
            ``sh[..., 0, :]`` is the DC term (3DGS's ``f_dc``), ``sh[..., 1:, :]`` is ``f_rest``.

    Construction checks shapes, dtypes and devices (cheap, no GPU sync). :meth:`validate` also checks
    for NaN/Inf. Scenes of different sizes are kept as a Python list of ``GaussianSet``.
    """

    means: torch.Tensor
    quats: torch.Tensor
    log_scales: torch.Tensor
    opacity_logits: torch.Tensor
    sh: torch.Tensor

    def __post_init__(self) -> None:
        for name in FIELD_NAMES:
            check_tensor(getattr(self, name), name)
        check_trailing_shape(self.means, (None, 3), "means")
        check_trailing_shape(self.quats, (None, 4), "quats")
        check_trailing_shape(self.log_scales, (None, 3), "log_scales")
        check_trailing_shape(self.opacity_logits, (None,), "opacity_logits")
        check_trailing_shape(self.sh, (None, None, 3), "sh")
        sh_degree_for_count(self.sh.shape[-2])
        lead = self.means.shape[:-1]  # [..., N]
        expected = {
            "quats": lead + (4,),
            "log_scales": lead + (3,),
            "opacity_logits": lead,
            "sh": lead + (self.sh.shape[-2], 3),
        }
        for name, shape in expected.items():
            got = getattr(self, name).shape
            if got != shape:
                raise ValueError(
                    f"{name} has shape {list(got)} but means {list(self.means.shape)} implies {list(shape)}"
                )
        for name in FIELD_NAMES[1:]:
            t = getattr(self, name)
            if t.dtype != self.means.dtype:
                raise TypeError(f"{name} has dtype {t.dtype} but means has {self.means.dtype}")
            if t.device != self.means.device:
                raise ValueError(f"{name} is on {t.device} but means is on {self.means.device}")

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_activated(
        cls,
        means: torch.Tensor,
        rgb: torch.Tensor,
        opacities: torch.Tensor,
        scales: torch.Tensor,
        quats: torch.Tensor | None = None,
        sh_degree: int = 0,
    ) -> GaussianSet:
        """Build from activated values: rgb ``[..., N, 3]`` in [0, 1], opacities ``[..., N]`` in (0, 1),
        scales ``[..., N, 3]`` > 0, quats ``[..., N, 4]`` (identity if omitted). Higher SH bands are zero."""
        eps = torch.finfo(means.dtype).eps
        if quats is None:
            quats = torch.zeros(means.shape[:-1] + (4,), dtype=means.dtype, device=means.device)
            quats[..., 0] = 1.0
        sh = torch.zeros(means.shape[:-1] + (sh_coeff_count(sh_degree), 3), dtype=means.dtype, device=means.device)
        sh[..., 0, :] = rgb_to_sh_dc(rgb)
        opacities = opacities.clamp(eps, 1 - eps)
        return cls(means, quats, torch.log(scales), torch.logit(opacities), sh)

    @classmethod
    def empty(cls, sh_degree: int = 0, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> GaussianSet:
        """A scene with no Gaussians."""
        z = lambda *s: torch.zeros(s, dtype=dtype, device=device)  # noqa: E731
        return cls(z(0, 3), z(0, 4), z(0, 3), z(0), z(0, sh_coeff_count(sh_degree), 3))

    # ------------------------------------------------------------------ properties

    @property
    def batch_shape(self) -> torch.Size:
        """Leading dims before N: ``()`` for one scene, ``(B,)`` for a batch."""
        return self.means.shape[:-2]

    @property
    def num_gaussians(self) -> int:
        return self.means.shape[-2]

    def __len__(self) -> int:
        """Number of Gaussians (per scene, for a batch)."""
        return self.num_gaussians

    @property
    def sh_degree(self) -> int:
        return sh_degree_for_count(self.sh.shape[-2])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    def scales(self) -> torch.Tensor:
        """``[..., N, 3]`` activated standard deviations, ``exp(log_scales)``."""
        return torch.exp(self.log_scales)

    def opacities(self) -> torch.Tensor:
        """``[..., N]`` activated opacities, ``sigmoid(opacity_logits)``."""
        return torch.sigmoid(self.opacity_logits)

    def rotations(self) -> torch.Tensor:
        """``[..., N, 4]`` unit quaternions (w, x, y, z)."""
        return torch.nn.functional.normalize(self.quats, dim=-1)

    def base_rgb(self) -> torch.Tensor:
        """``[..., N, 3]`` view-independent colour from the DC term, clamped at 0 like the renderer."""
        return sh_dc_to_rgb(self.sh[..., 0, :]).clamp_min(0.0)

    # ------------------------------------------------------------------ transforms

    def map(self, fn) -> GaussianSet:
        """Apply ``fn(tensor) -> tensor`` to every field (e.g. ``.map(lambda t: t.to('cuda'))``)."""
        return GaussianSet(*(fn(getattr(self, n)) for n in FIELD_NAMES))

    def to(self, *args, **kwargs) -> GaussianSet:
        return self.map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> GaussianSet:
        return self.map(torch.Tensor.detach)

    def clone(self) -> GaussianSet:
        return self.map(torch.Tensor.clone)

    def select(self, index: torch.Tensor | slice) -> GaussianSet:
        """Subset of Gaussians along N (boolean mask ``[N]`` or integer indices), for every scene in a batch."""
        idx = (Ellipsis, index)
        return GaussianSet(
            self.means[idx + (slice(None),)],
            self.quats[idx + (slice(None),)],
            self.log_scales[idx + (slice(None),)],
            self.opacity_logits[idx],
            self.sh[idx + (slice(None), slice(None))],
        )

    def __getitem__(self, b: int | slice) -> GaussianSet:
        """Index the batch dimension: ``batch[i]`` is scene i."""
        if len(self.batch_shape) == 0:
            raise IndexError("a single GaussianSet has no batch dimension; use select() to pick Gaussians")
        return self.map(lambda t: t[b])

    def unbind(self) -> list[GaussianSet]:
        """Split a ``[B, N, ...]`` batch into B single scenes."""
        return [self[i] for i in range(self.batch_shape[0])]

    def with_sh_degree(self, degree: int) -> GaussianSet:
        """Truncate or zero-pad the SH coefficients to ``degree``."""
        k = sh_coeff_count(degree)
        sh = self.sh[..., :k, :]
        if sh.shape[-2] < k:
            pad = torch.zeros(sh.shape[:-2] + (k - sh.shape[-2], 3), dtype=sh.dtype, device=sh.device)
            sh = torch.cat([sh, pad], dim=-2)
        return replace(self, sh=sh)

    @staticmethod
    def cat(sets: Sequence[GaussianSet]) -> GaussianSet:
        """Concatenate scenes along N (all must share batch shape, SH degree, dtype and device)."""
        if not sets:
            raise ValueError("cat() needs at least one GaussianSet")
        degree = max(s.sh_degree for s in sets)
        sets = [s.with_sh_degree(degree) for s in sets]
        dims = {"opacity_logits": -1, "sh": -3}
        return GaussianSet(*(torch.cat([getattr(s, n) for s in sets], dim=dims.get(n, -2)) for n in FIELD_NAMES))

    @staticmethod
    def stack(sets: Sequence[GaussianSet]) -> GaussianSet:
        """Stack single scenes of equal N and SH degree into a ``[B, N, ...]`` batch."""
        if not sets:
            raise ValueError("stack() needs at least one GaussianSet")
        counts = {s.num_gaussians for s in sets}
        if len(counts) != 1:
            raise ValueError(f"stack() needs equal Gaussian counts, got {sorted(counts)}; keep a list instead")
        return GaussianSet(*(torch.stack([getattr(s, n) for s in sets]) for n in FIELD_NAMES))

    # ------------------------------------------------------------------ checks

    def validate(self) -> GaussianSet:
        """Raise ``ValueError`` if any field holds NaN or Inf (syncs with the GPU). Returns ``self``."""
        for name in FIELD_NAMES:
            check_finite(getattr(self, name), name)
        return self

    def equal(self, other: GaussianSet) -> bool:
        """Bit-exact equality of every field: shapes, dtypes and the raw bits (so NaN == NaN, 0.0 != -0.0)."""
        return all(_same_bits(getattr(self, n), getattr(other, n)) for n in FIELD_NAMES)

    def __repr__(self) -> str:
        return (
            f"GaussianSet(batch={tuple(self.batch_shape)}, N={self.num_gaussians}, sh_degree={self.sh_degree}, "
            f"dtype={self.dtype}, device={self.device})"
        )


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    as_int = {torch.float64: torch.int64, torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}
    return torch.equal(a.detach().cpu().contiguous().view(as_int[a.dtype]), b.detach().cpu().contiguous().view(as_int[b.dtype]))

