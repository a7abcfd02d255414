"""Linear boundaries in W (InterFaceGAN) and directions from yes/no marks.

Shen et al., "Interpreting the Latent Space of GANs for Semantic Face Editing", CVPR 2020: label generated
samples for an attribute, fit a linear boundary ``n . w + b = 0`` in W, and move along its unit normal ``n``.
Binary attributes use a logistic regression (InterFaceGAN uses a linear SVM on the most confident samples;
the normal is nearly the same); continuous scores use a ridge regression of the score on w. Both are
fitted in float64 on w centred by its mean.

Conditional editing: moving along ``n_i`` also moves every other attribute j by ``n_j . n_i``.
:func:`orthogonalize` projects each normal onto the orthogonal complement of the others, so that moving one
slider leaves the other boundaries' signed distances unchanged (to first order).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch

from core.editing.directions import Direction, DirectionKind, DirectionSet


@dataclass(frozen=True, eq=False)
class Boundary:
    """A fitted linear boundary or regression in W.

    Attributes:
        normal: ``[w_dim]`` unit normal, pointing toward "more of the attribute".
        offset: ``b`` of ``n . (w - mean) + b`` in W units (0 for a regression).
        train_score: accuracy (binary) or R^2 (regression) on the samples it was fitted to.
        num_samples: samples used (binary: positives + negatives).
    """

    normal: np.ndarray
    offset: float
    train_score: float
    num_samples: int


def _as_w(ws: torch.Tensor | np.ndarray) -> torch.Tensor:
    x = (ws.detach().to("cpu", torch.float64) if isinstance(ws, torch.Tensor)
         else torch.tensor(np.array(ws), dtype=torch.float64))
    if x.dim() == 3:  # [N, num_ws, w_dim]: the mapping broadcasts one w; use the first slot
        x = x[:, 0]
    if x.dim() != 2:
        raise ValueError(f"ws must be [N, w_dim] or [N, num_ws, w_dim], got {list(x.shape)}")
    return x


def fit_binary_boundary(ws: torch.Tensor | np.ndarray, labels: Sequence[bool] | np.ndarray, l2: float = 1e-3,
                        center: np.ndarray | None = None, max_iter: int = 200) -> Boundary:
    """Logistic regression of ``labels [N]`` (True = has the attribute) on ``ws [N, w_dim]``.

    ``l2`` is the weight of ``|weights|^2`` against the mean log-loss (keeps few, separable samples finite);
    ``center`` (``[w_dim]``, default: the samples' mean) is subtracted first. Needs at least one sample of
    each class; raises ``ValueError`` otherwise.
    """
    x = _as_w(ws)
    y = torch.as_tensor(np.asarray(labels, dtype=np.float64))
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must be [N] = [{x.shape[0]}], got {list(y.shape)}")
    pos, neg = int(y.sum()), int((1 - y).sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"a boundary needs samples of both classes; got {pos} yes and {neg} no")
    c = x.mean(0) if center is None else torch.tensor(np.array(center), dtype=torch.float64)
    xc = x - c
    scale = xc.norm(dim=1).mean().clamp_min(1e-12)  # unit-free regularisation
    xc = xc / scale
    weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    pos_weight = torch.tensor(neg / pos, dtype=torch.float64)  # balance the classes
    opt = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = xc @ weight + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
        loss = loss + l2 * weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    w = weight.detach()
    norm = float(w.norm())
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("the boundary fit failed (zero or non-finite normal)")
    acc = float((((xc @ w + bias.detach()) > 0).double() == y).double().mean())
    return Boundary((w / norm).numpy(), float(bias.detach()) * float(scale) / norm, acc, int(x.shape[0]))


def fit_regression_direction(ws: torch.Tensor | np.ndarray, scores: Sequence[float] | np.ndarray,
                             ridge: float = 1e-3) -> Boundary:
    """Ridge regression of ``scores [N]`` on ``ws [N, w_dim]``; the normal points toward higher scores.

    ``ridge`` is relative to the mean eigenvalue of the samples' covariance."""
    x = _as_w(ws)
    s = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    if s.shape != (x.shape[0],):
        raise ValueError(f"scores must be [N] = [{x.shape[0]}], got {list(s.shape)}")
    if float(s.std()) == 0:
        raise ValueError("scores are all equal: nothing to regress")
    xc, sc = x - x.mean(0), s - s.mean()
    gram = xc.T @ xc
    lam = ridge * float(gram.diagonal().mean())
    w = torch.linalg.solve(gram + lam * torch.eye(x.shape[1], dtype=torch.float64), xc.T @ sc)
    norm = float(w.norm())
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("the regression failed (zero or non-finite normal)")
    pred = xc @ w
    r2 = 1.0 - float((sc - pred).square().sum() / sc.square().sum())
    return Boundary((w / norm).numpy(), 0.0, r2, int(x.shape[0]))


def orthogonalize(directions: Sequence[Direction], stats_directions: DirectionSet | None = None
                  ) -> tuple[Direction, ...]:
    """Each direction projected onto the orthogonal complement of all the others (then re-normalised).

    With ``stats_directions`` the slider unit (``scale``) is recomputed for the new vector from its
    statistics; otherwise each keeps its scale. Raises ``ValueError`` if a direction lies (almost) in the
    span of the others.
    """
    dirs = list(directions)
    if len(dirs) < 2:
        return tuple(dirs)
    V = np.stack([d.vector for d in dirs])  # [K, w_dim]
    out = []
    for i, d in enumerate(dirs):
        others = np.delete(V, i, axis=0)
        q, _ = np.linalg.qr(others.T)  # [w_dim, K-1] orthonormal basis of the others' span
        u = d.vector - q @ (q.T @ d.vector)
        kept = float(np.linalg.norm(u))
        if kept < 1e-3:
            raise ValueError(f"direction {d.name!r} lies in the span of the others; cannot orthogonalise it")
        u = u / kept
        scale = stats_directions.stats.std_along(u) if stats_directions is not None else d.scale
        note = (d.note + "; " if d.note else "") + f"orthogonalised (cos to original {kept:.3f})"
        out.append(replace(d, vector=u, scale=scale, note=note))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class Marks:
    """Yes/no marks a user gave generated samples for one named attribute (immutable; add returns a new one).

    Attributes:
        name: the attribute (becomes the slider name).
        ws: ``[M, w_dim]`` float64 the marked samples' w (first slot).
        labels: ``[M]`` bool, True = yes.
    """

    name: str
    ws: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def add(self, w: torch.Tensor | np.ndarray, yes: bool) -> Marks:
        """Mark one sample: ``w`` is ``[w_dim]`` or ``[num_ws, w_dim]`` (the first slot is used)."""
        a = w.detach().cpu().double().numpy() if isinstance(w, torch.Tensor) else np.asarray(w, dtype=np.float64)
        v = a.reshape(-1, a.shape[-1])[0]
        ws = v[None] if self.ws.size == 0 else np.concatenate([self.ws, v[None]])
        return Marks(self.name, ws, np.concatenate([self.labels, [bool(yes)]]))

    @property
    def counts(self) -> tuple[int, int]:
        """(yes, no)."""
        return int(self.labels.sum()), int((~self.labels).sum())

    def undo(self) -> Marks:
        return Marks(self.name, self.ws[:-1], self.labels[:-1]) if len(self.labels) else self


def teach_direction(marks: Marks, directions: DirectionSet, kind: DirectionKind = "user", l2: float = 1e-2,
                    subspace: int | None = 32) -> Direction:
    """A slider from yes/no marks: a logistic boundary through the marked w (centred on the model's mean w),
    scaled to the model's std along it. Needs at least one yes and one no.

    With a handful of marks in a 256-512 dimensional W a boundary fitted in the full space mostly follows the
    samples' individual noise; ``subspace`` fits it within the top principal axes of the model's w
    covariance instead (where the model's variation is; None or >= w_dim: the full space).
    """
    yes, no = marks.counts
    if yes == 0 or no == 0:
        raise ValueError(f"teaching {marks.name!r} needs at least one 'yes' and one 'no' sample "
                         f"(have {yes} yes, {no} no)")
    mean = directions.stats.mean
    x = marks.ws - mean
    basis = None
    if subspace is not None and subspace < directions.w_dim:
        _, vecs = np.linalg.eigh(directions.stats.cov)
        basis = vecs[:, ::-1][:, :subspace]  # [w_dim, k], largest variance first
        x = x @ basis
    b = fit_binary_boundary(x, marks.labels, l2=l2, center=np.zeros(x.shape[1]))
    normal = basis @ b.normal if basis is not None else b.normal
    where = f" in the top {subspace} principal axes" if basis is not None else ""
    return directions.make_direction(marks.name, kind, normal, note=f"taught from {yes} yes / {no} no marks"
                                     f"{where} (train acc {b.train_score:.2f})")
