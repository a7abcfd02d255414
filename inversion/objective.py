"""The reconstruction loss shared by both stages: weighted MSE + LPIPS + identity (facenet cosine).

Images are ``[B, 3, R, R]`` RGB in [0, 1] and per-pixel weights ``[B, 1, R, R]`` in [0, 1]. The weight map
focuses every term on the face: MSE is the weighted mean of squared errors; LPIPS and the ID network see both
images composited onto white with the weight as opacity (so the backgrounds agree where the weight is 0).

ID term (the pSp/e4e recipe with facenet, fact sheet 4.4): crop the face box of the framing's template
(every aligned image has its face there), resize to 160 x 160, standardise to about [-1, 1], embed with
InceptionResnetV1 (VGGFace2) and take ``1 - cosine`` against the target's embedding.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.image_metrics import ssim
from inversion.alignment import ffhq_quad
from inversion.framing import FaceFraming
from inversion.pretrained import load_facenet, load_lpips

LPIPS_MIN, LPIPS_MAX = 64, 256  # LPIPS runs at a side in this range (PTI uses 256)
ID_SIZE = 160


@dataclass(frozen=True)
class LossWeights:
    """User weights of the loss terms (0 switches a term off and skips loading its network). ``ssim`` weighs
    ``1 - SSIM`` (core.image_metrics; no download)."""

    id: float = 0.1
    mse: float = 0.1
    lpips: float = 1.0
    ssim: float = 0.0

    def __post_init__(self) -> None:
        for k in ("id", "mse", "lpips", "ssim"):
            if getattr(self, k) < 0:
                raise ValueError(f"loss weight {k} must be >= 0, got {getattr(self, k)}")


@dataclass(frozen=True)
class LossNetworks:
    """Where the pretrained loss networks come from (see :mod:`inversion.pretrained`).

    Attributes:
        weights_dir: an extra folder searched before the torch caches.
        allow_random: use random stand-in weights for missing files instead of downloading or raising (tests,
            benchmarks).
        lpips_net: ``"alex"`` (PTI's choice for tuning) or ``"vgg"``.
        offline: never download a missing file (raise :class:`inversion.pretrained.MissingWeightsError`).
    """

    weights_dir: str | None = None
    allow_random: bool = False
    lpips_net: str = "alex"
    offline: bool = False


def id_box(framing: FaceFraming) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` normalised face box of aligned images (about MTCNN's box: brows to chin)."""
    centre, x = ffhq_quad(framing.template())
    half = 0.55 * float(np.hypot(*x))
    return (centre[0] - half, centre[1] - 0.9 * half, centre[0] + half, centre[1] + 1.1 * half)


class Objective(nn.Module):
    """``(pred, target, weight) -> {"mse", "ssim", "lpips", "id", "total"}`` (scalars; unused terms are 0;
    ``ssim`` is reported as ``1 - SSIM``).

    Build it once per run; :meth:`embed` precomputes target embeddings for the ID term.
    """

    def __init__(self, weights: LossWeights, framing: FaceFraming,
                 networks: LossNetworks = LossNetworks()) -> None:
        super().__init__()
        self.weights = weights
        self.box = id_box(framing)
        self.sources: dict[str, str] = {}
        self.lpips: nn.Module | None = None
        self.facenet: nn.Module | None = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if weights.lpips > 0:
                net = load_lpips(networks.lpips_net, networks.weights_dir, networks.allow_random, networks.offline)
                self.lpips, self.sources["lpips"] = net.module, net.source
            if weights.id > 0:
                net = load_facenet(networks.weights_dir, networks.allow_random, networks.offline)
                self.facenet, self.sources["id"] = net.module, net.source

    def face_crop(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, R, R]`` in [0, 1] -> ``[B, 3, 160, 160]`` standardised face crops ((x*255 - 127.5) / 128)."""
        R = images.shape[-1]
        x0, y0, x1, y1 = (int(round(v * R)) for v in self.box)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(max(x1, x0 + 1), R), min(max(y1, y0 + 1), R)
        crop = F.interpolate(images[..., y0:y1, x0:x1], size=(ID_SIZE, ID_SIZE), mode="bilinear",
                             align_corners=False)
        return (crop * 255.0 - 127.5) / 128.0

    def embed(self, images: torch.Tensor, weight: torch.Tensor) -> torch.Tensor | None:
        """``[B, 512]`` unit ID embeddings of the weighted images, or None without an ID term."""
        if self.facenet is None:
            return None
        return F.normalize(self.facenet(self.face_crop(composite(images, weight))), dim=-1)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                target_embedding: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        terms = self.perceptual(pred, target, weight, target_embedding)
        w = self.weights
        if w.mse > 0:
            terms["mse"] = (weight * (pred - target) ** 2).sum() / (weight.sum() * 3).clamp(min=1e-8)
        if w.ssim > 0:
            terms["ssim"] = 1.0 - ssim(pred, target, weight).mean()
        terms["total"] = terms["total"] + w.mse * terms["mse"] + w.ssim * terms["ssim"]
        return terms

    def perceptual(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                   target_embedding: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The network terms only: ``{"lpips", "id", "total": weighted sum}`` (plus zero ``mse``/``ssim``),
        each a mean over the batch ``[B, 3, R, R]``."""
        zero = pred.new_zeros(())
        terms = {"mse": zero, "ssim": zero, "lpips": zero, "id": zero}
        if self.lpips is not None or self.facenet is not None:
            p, t = composite(pred, weight), composite(target, weight)
            if self.lpips is not None:
                terms["lpips"] = self.lpips(lpips_size(p) * 2 - 1, lpips_size(t) * 2 - 1).mean()
            if self.facenet is not None:
                te = target_embedding if target_embedding is not None else self.embed(target, weight)
                pe = F.normalize(self.facenet(self.face_crop(p)), dim=-1)
                terms["id"] = (1.0 - (pe * te).sum(-1)).mean()
        w = self.weights
        terms["total"] = w.lpips * terms["lpips"] + w.id * terms["id"]
        return terms


def composite(images: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``images`` over white with ``weight`` as opacity (same shapes as in the module docstring)."""
    return images * weight + (1.0 - weight)


def lpips_size(images: torch.Tensor) -> torch.Tensor:
    """Resize ``[B, 3, R, R]`` into LPIPS's working range (area-downsample above 256, bilinear up below 64)."""
    R = images.shape[-1]
    if R > LPIPS_MAX:
        return F.interpolate(images, size=(LPIPS_MAX, LPIPS_MAX), mode="area")
    if R < LPIPS_MIN:
        return F.interpolate(images, size=(LPIPS_MIN, LPIPS_MIN), mode="bilinear", align_corners=False)
    return images



class GraphedLoss:
    """``fn(pred, *inputs) -> {term: tensor}``, replayed from CUDA graphs when ``enabled`` (one capture per
    distinct input shapes; see :func:`core.cuda_graphs.graphed_loss`), else called as is. The loss networks are
    hundreds of small kernels per pass (facenet alone ~1,000 forward and backward), so on a GPU graphs cut the
    step's host time several-fold. Call it at most once per backward pass (outputs are static buffers)."""

    def __init__(self, fn, enabled: bool) -> None:
        import os

        from core.cuda_graphs import ENV_SWITCH

        self.fn = fn
        self.enabled = enabled and os.environ.get(ENV_SWITCH, "1") != "0"
        self._graphs: dict[tuple, object] = {}

    def __call__(self, pred: torch.Tensor, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.enabled:
            return self.fn(pred, *inputs)
        key = tuple(tuple(t.shape) for t in (pred, *inputs))
        graphed = self._graphs.get(key)
        if graphed is None:
            from core.cuda_graphs import graphed_loss

            graphed = self._graphs[key] = graphed_loss(self.fn, tuple(pred.shape), *inputs)
        return graphed(pred, *inputs)
