"""A tiny CNN that scores the synthetic attributes from an image, trained from scratch on the CPU.

Input ``[B, 3, R, R]`` uint8 RGB on white (R = 64 by default; any R divisible by 16 works). Five stride-2
conv blocks (16..128 channels, leaky ReLU, batch norm), global average pool, one linear layer with one output
per attribute. Binary outputs are logits (BCE), continuous outputs predict the attribute standardised by its
training mean/std (MSE); :meth:`AttributeClassifier.scores` returns probabilities / attribute units.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from training.directions.labelled_images import LabelledImages

FORMAT = "splathead-attribute-classifier"


class AttributeClassifier(nn.Module):
    """See the module docstring. ``names``/``kinds`` follow the attribute specs it was trained for."""

    def __init__(self, names: tuple[str, ...], kinds: tuple[str, ...], resolution: int = 64,
                 channels: tuple[int, ...] = (16, 32, 64, 96, 128)) -> None:
        super().__init__()
        self.names, self.kinds, self.resolution, self.channels = tuple(names), tuple(kinds), resolution, channels
        layers: list[nn.Module] = []
        c_in = 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, len(names))
        self.register_buffer("mean", torch.zeros(len(names)))
        self.register_buffer("std", torch.ones(len(names)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B, 3, R, R]`` uint8 (or float in [0, 255]) -> raw outputs ``[B, A]``."""
        x = images.float() / 127.5 - 1.0
        if x.shape[-1] != self.resolution:
            x = nn.functional.interpolate(x, size=(self.resolution, self.resolution), mode="area")
        return self.head(self.features(x).mean(dim=(2, 3)))

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, A]``: probabilities for binary attributes, attribute units for continuous ones."""
        raw = self(images)
        binary = torch.tensor([k == "binary" for k in self.kinds], device=raw.device)
        return torch.where(binary, torch.sigmoid(raw), raw * self.std + self.mean)

    def config(self) -> dict:
        return {"names": list(self.names), "kinds": list(self.kinds), "resolution": self.resolution,
                "channels": list(self.channels)}


@dataclass(frozen=True)
class TrainReport:
    """Per-epoch progress of :func:`train_classifier`: training loss, validation accuracy of the binary
    attributes and mean absolute error of the continuous ones (attribute units), by name."""

    epoch: int
    loss: float
    val_accuracy: tuple[tuple[str, float], ...]
    val_mae: tuple[tuple[str, float], ...]

    def summary(self) -> str:
        acc = ", ".join(f"{n} acc {v:.3f}" for n, v in self.val_accuracy)
        mae = ", ".join(f"{n} mae {v:.3f}" for n, v in self.val_mae)
        return f"epoch {self.epoch}: loss {self.loss:.4f}; {acc}; {mae}"


def _loss(model: AttributeClassifier, raw: torch.Tensor, values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    binary = torch.tensor([k == "binary" for k in model.kinds])
    std_values = (values - model.mean) / model.std
    bce = nn.functional.binary_cross_entropy_with_logits(raw, values, reduction="none")
    mse = (raw - std_values).square()
    per = torch.where(binary, bce, mse) * known
    return per.sum() / known.sum().clamp_min(1)


def _augment(images: torch.Tensor, gen: torch.Generator, shift: int = 3) -> torch.Tensor:
    """Random horizontal flips and translations of up to ``shift`` px (white padding)."""
    flip = torch.rand(images.shape[0], generator=gen) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    padded = nn.functional.pad(images.float(), (shift,) * 4, value=255.0)
    dx, dy = (int(v) for v in torch.randint(0, 2 * shift + 1, (2,), generator=gen))
    return padded[..., dy:dy + images.shape[-2], dx:dx + images.shape[-1]]


def train_classifier(data: LabelledImages, epochs: int = 15, batch: int = 64, lr: float = 2e-3,
                     val_fraction: float = 0.1, seed: int = 0) -> Iterator[tuple[AttributeClassifier, TrainReport]]:
    """Train on ``data`` (identity-disjoint validation split of ``val_fraction``); yields after each epoch."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ids = data.identities.unique()
    val_ids = ids[torch.randperm(len(ids), generator=gen)[: max(1, int(len(ids) * val_fraction))]]
    is_val = torch.isin(data.identities, val_ids)
    train, val = data.subset(~is_val), data.subset(is_val)
    if len(train) < 8:
        raise ValueError(f"only {len(train)} training images after the validation split; make a larger dataset")
    specs = data.specs
    model = AttributeClassifier(tuple(s.name for s in specs), tuple(s.kind for s in specs),
                                resolution=int(data.images.shape[-1]))
    for j, s in enumerate(specs):
        if s.kind == "continuous":
            v = train.values[train.known[:, j], j]
            model.mean[j], model.std[j] = float(v.mean()), float(v.std().clamp_min(1e-3))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(train) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=gen)
        total, count = 0.0, 0
        for start in range(0, len(train), batch):
            idx = order[start:start + batch]
            raw = model(_augment(train.images[idx], gen))
            loss = _loss(model, raw, train.values[idx], train.known[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, count = total + float(loss.detach()) * len(idx), count + len(idx)
        yield model.eval(), _evaluate(model, val, epoch, total / max(count, 1))


@torch.no_grad()
def _evaluate(model: AttributeClassifier, val: LabelledImages, epoch: int, loss: float) -> TrainReport:
    model.eval()
    scores = torch.cat([model.scores(val.images[i:i + 256]) for i in range(0, len(val), 256)]) if len(val) else None
    acc, mae = [], []
    for j, (name, kind) in enumerate(zip(model.names, model.kinds)):
        if scores is None or not val.known[:, j].any():
            continue
        k = val.known[:, j]
        if kind == "binary":
            acc.append((name, float(((scores[k, j] > 0.5).float() == val.values[k, j]).float().mean())))
        else:
            mae.append((name, float((scores[k, j] - val.values[k, j]).abs().mean())))
    return TrainReport(epoch, loss, tuple(acc), tuple(mae))


def save_classifier(model: AttributeClassifier, path: str | os.PathLike) -> None:
    """``torch.save`` of tensors, strings and numbers only (loads with ``weights_only=True``)."""
    torch.save({"format": FORMAT, "config": model.config(),
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, path)


def load_classifier(path: str | os.PathLike, device: torch.device | str = "cpu") -> AttributeClassifier:
    """Load a classifier written by :func:`save_classifier`; ``ValueError`` naming the file otherwise."""
    from core.regular_file import require_regular_file  # a FIFO or device is refused, never read (issue 19)

    try:
        require_regular_file(path, "a classifier file")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError("not an attribute classifier file")
        c = blob["config"]
        model = AttributeClassifier(tuple(c["names"]), tuple(c["kinds"]), c["resolution"], tuple(c["channels"]))
        model.load_state_dict(blob["state_dict"])
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises many types for a bad file
        raise ValueError(f"{path}: cannot load the attribute classifier ({type(exc).__name__}: {exc})") from None
    return model.eval().to(device)
