"""Carrying a training run between sessions that share nothing but the repository: a compact snapshot.

Our GPU machines are lent for one session and come back bare; the only thing that outlives a session is what
is committed to the repository. A training snapshot of the v2 recipe is 307 MiB (float32 G, G_ema, D and
Adam's second moments), too large to commit every session. :func:`compact` keeps what a run cannot rebuild
and rounds it, :func:`expand` turns the result back into an ordinary training snapshot that
``python -m training --resume`` reads like any other (nothing in the trainer knows about hand-overs):

- kept: G and D, their large tensors as float16 (any tensor of 65,536 values or more whose values all lie
  within +-8; the rest, e.g. the mapping networks' weights stored at 100x for their lr_mul 0.01, the biases
  and ``xyz_const``, stay float32), the options, the progress counters and data position, the RNG states, the
  optimizers' hyperparameters;
- dropped: G_ema (expanded as a copy of G: the EMA restarts from the current weights and, at the recipe's
  10 kimg half-life, forgets the restart within a few tens of kimg) and Adam's ``exp_avg_sq`` (expanded as
  zeros with ``step`` 0, which is exactly Adam's state before its first step, so the resumed optimizer is a
  fresh one).

What that costs: float16 rounding moves a weight below 8 in magnitude by at most 2^-9 (about one Adam step
at the recipes' learning rates of 0.0019-0.0025; most weights, below 1, by a quarter of that or less); the
EMA restarts from G; and the fresh Adam's first update moves every weight by exactly its learning rate
(``lr * sign(g)``) before its second moments are re-estimated over ~100 steps (beta2 = 0.99). Not measured
against a resume from the full snapshot yet. The expanded snapshot keeps the record (``training["handover"]``)
and a run resumed from it says so in its log (:func:`describe`). Within a lease a run resumes exactly, in
place, from the full snapshots in its run directory.

Shapes: every tensor keeps its shape; the compact file stores, per optimizer state, the parameter's shape
(``exp_avg_sq_shape``) so that :func:`expand` can rebuild the zeros without the networks.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from core.checkpoint import Snapshot

HANDOVER_KEY = "handover"  # Snapshot.training[HANDOVER_KEY]: what compact() dropped (absent in full snapshots)
COMPACT_DTYPE = torch.float16
ROUND_MIN_NUMEL = 65536  # smaller tensors stay float32 (they cost nothing)
ROUND_MAX_ABS = 8.0      # float16's half-ulp below 8 is at most 2^-9, about one Adam step


def _round(t: torch.Tensor) -> torch.Tensor:
    """``t`` as float16 when it is a large float32 tensor whose values all lie within +-ROUND_MAX_ABS; else
    unchanged (module docstring)."""
    if t.dtype != torch.float32 or t.numel() < ROUND_MIN_NUMEL:
        return t
    if not bool(torch.isfinite(t).all()) or float(t.abs().max()) >= ROUND_MAX_ABS:
        return t
    return t.to(COMPACT_DTYPE)


def describe(training: dict) -> str | None:
    """A log line for a run resumed from an expanded hand-over (None for an ordinary snapshot)."""
    record = training.get(HANDOVER_KEY)
    if not isinstance(record, dict):
        return None
    return (f"note: resumed from a compact hand-over made at {record.get('from_kimg')} kimg "
            f"(training/handover.py): G_ema restarted from G, Adam's moments restarted, large weights rounded "
            f"to float16; the run continues, but not exactly as the uninterrupted run would")


def is_compact(snapshot: Snapshot) -> bool:
    """True for a snapshot written by :func:`compact` (an expanded one keeps the record but has G_ema again)."""
    return HANDOVER_KEY in snapshot.training and "G_ema" not in snapshot.modules


def compact(snapshot: Snapshot) -> Snapshot:
    """The hand-over form of a full training snapshot (see the module docstring). ValueError for a generator
    file, a snapshot that is already compact, or one without G and D."""
    if snapshot.kind != "training":
        raise ValueError(f"a {snapshot.kind!r} snapshot has no training state to hand over")
    if is_compact(snapshot):
        raise ValueError("this snapshot is already a compact hand-over")
    missing = [m for m in ("G", "D") if m not in snapshot.modules]
    if missing:
        raise ValueError(f"the snapshot lacks {missing}")
    optimizers: dict[str, Any] = {}
    for name, sd in snapshot.optimizers.items():
        state = {}
        for i, s in sd["state"].items():
            if "exp_avg_sq" not in s or set(s) - {"step", "exp_avg", "exp_avg_sq"}:
                raise ValueError(f"optimizer {name}, parameter {i}: not a plain Adam state ({sorted(s)}); only "
                                 "step, exp_avg and exp_avg_sq can be handed over")
            state[i] = {"exp_avg_sq_shape": list(s["exp_avg_sq"].shape), "step": s["step"]}
        optimizers[name] = {"state": state, "param_groups": copy.deepcopy(sd["param_groups"])}
    progress = snapshot.training.get("progress", {})
    training = {**snapshot.training, HANDOVER_KEY: {
        "weights": "float16", "dropped": ["G_ema", "exp_avg", "exp_avg_sq"],
        "from_kimg": (progress.get("cur_nimg", 0) / 1000) if isinstance(progress, dict) else None}}
    return Snapshot(kind="training", generator_config=snapshot.generator_config,
                    modules={m: {k: _round(v) for k, v in snapshot.modules[m].items()} for m in ("G", "D")},
                    optimizers=optimizers, training=training, metadata=dict(snapshot.metadata))


def expand(snapshot: Snapshot) -> Snapshot:
    """A full training snapshot from a compact one: float32 G and D, G_ema a copy of G, every Adam state at
    ``step`` 0 with zero ``exp_avg_sq`` (a fresh optimizer). ``training["handover"]`` stays, as the record."""
    if not is_compact(snapshot):
        raise ValueError("not a compact hand-over (it has no training['handover'] record)")
    up = {m: {k: (v.float() if v.dtype == COMPACT_DTYPE else v) for k, v in sd.items()}
          for m, sd in snapshot.modules.items()}
    optimizers = {}
    for name, sd in snapshot.optimizers.items():
        state = {i: {"step": torch.zeros((), dtype=torch.float32),
                     "exp_avg_sq": torch.zeros([int(n) for n in s["exp_avg_sq_shape"]], dtype=torch.float32)}
                 for i, s in sd["state"].items()}
        optimizers[name] = {"state": state, "param_groups": copy.deepcopy(sd["param_groups"])}
    modules = {"G": up["G"], "G_ema": {k: v.clone() for k, v in up["G"].items()}, "D": up["D"]}
    return Snapshot(kind="training", generator_config=snapshot.generator_config, modules=modules,
                    optimizers=optimizers, training=dict(snapshot.training), metadata=dict(snapshot.metadata))
