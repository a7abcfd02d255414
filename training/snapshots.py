"""Training snapshots: the whole state of a run, in the safetensors + JSON layout of ``core.snapshots``.

A snapshot holds (tensor names in brackets; everything float32 as trained, nothing recomputable):

- the networks: ``G/...``, ``G_ema/...``, ``D/...`` (state dicts);
- both Adam states (``optimizers/G/state/<i>/...``): ``step`` and ``exp_avg_sq`` per parameter. ``exp_avg`` is
  left out while beta1 = 0 (the recipe's Adam (0, 0.99)): Adam then sets ``exp_avg`` to the new gradient
  (``lerp`` with weight 1) before using it, so the stored value never reaches the weights, and a resumed run
  starts from zeros with bit-identical results. This saves a third of the snapshot;
- ``training``: the options, the discriminator config, the progress (images shown, optimizer steps, this
  rank's position in its data stream), the EMA and D-input blur settings at that point (both are functions
  of the options and the image count; recorded for reading, not needed to resume), the dataset size, and
  the RNG states of every rank (torch CPU and CUDA, NumPy, Python; nothing in a step draws from them, since
  per-step randomness comes from (seed, rank, step), but a resume restores them).

Before anything is read on resume, the file's tensor table is checked against the networks this run built:
every name, shape and dtype of G, G_ema, D and every optimizer state (``check_fits``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from core.checkpoint import CorruptCheckpointError, Snapshot, default_metadata
from core.config_dict import config_from_dict, config_to_dict
from core.snapshots import SnapshotFile, encode_snapshot, open_snapshot, save_snapshot
from core.tensor_file_reader import TensorInfo

if TYPE_CHECKING:
    from training.trainer import Models
    from training.options import TrainOptions


@dataclass(frozen=True)
class TrainingProgress:
    """Where a run is, saved in every training snapshot (``Snapshot.training["progress"]``).

    Attributes:
        cur_nimg: real images shown to D so far (all ranks); step: optimizer steps taken;
        samples_drawn: images this rank has taken from its data stream; world_size: ranks that ran.
    """

    cur_nimg: int
    step: int
    samples_drawn: int
    world_size: int = 1

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainingProgress:
        return config_from_dict(cls, d, "training progress")


class UnsafeToSave(ValueError):
    """The weights hold NaN or Inf: a snapshot of them would replace a good one with a useless one."""


# ---------------------------------------------------------------------------------------------- RNG


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's global RNG states: torch CPU (and CUDA on ``device``), NumPy, Python."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
             "python": {"version": py_version, "internal": torch.tensor(py_internal, dtype=torch.int64),
                        "gauss_next": py_gauss}}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"].to(torch.uint8))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss_next"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].to(torch.uint8), device)


# ---------------------------------------------------------------------------------------------- saving


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def compact_optimizer_state(sd: dict[str, Any]) -> dict[str, Any]:
    """``optimizer.state_dict()`` without ``exp_avg`` when every group has beta1 = 0 (see the module
    docstring); tensors copied to the CPU."""
    drop = all(float(g.get("betas", (1.0,))[0]) == 0.0 for g in sd["param_groups"])
    state = {i: {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in s.items()
                 if not (drop and k == "exp_avg")} for i, s in sd["state"].items()}
    return {"state": state, "param_groups": sd["param_groups"]}


def expand_optimizer_state(sd: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`compact_optimizer_state`: a missing ``exp_avg`` becomes zeros."""
    state = {}
    for i, s in sd["state"].items():
        s = dict(s)
        if "exp_avg_sq" in s and "exp_avg" not in s:
            s["exp_avg"] = torch.zeros_like(s["exp_avg_sq"])
        state[i] = s
    return {"state": state, "param_groups": sd["param_groups"]}


def build_snapshot(m: Models, opts: TrainOptions, progress: TrainingProgress, rng: list[dict[str, Any]],
                   dataset_size: int) -> Snapshot:
    """The in-memory snapshot (tensors copied to the CPU). Raises :class:`UnsafeToSave` on NaN/Inf weights."""
    from training.blur import blur_sigma

    for name, module in (("G", m.G), ("G_ema", m.G_ema), ("D", m.D)):
        for pname, p in module.state_dict().items():
            if p.is_floating_point() and not bool(torch.isfinite(p).all()):
                raise UnsafeToSave(f"{name}.{pname} holds NaN/Inf at {progress.cur_nimg / 1000:.3f} kimg; not "
                                   "saved, the last snapshot is intact")
    sigma = blur_sigma(progress.cur_nimg, opts.blur_fade_kimg_value, opts.blur_sigma)
    return Snapshot(
        kind="training",
        generator_config=m.G.config.to_dict(),
        modules={"G": _cpu_state(m.G), "G_ema": _cpu_state(m.G_ema), "D": _cpu_state(m.D)},
        optimizers={"G": compact_optimizer_state(m.opt_G.state_dict()),
                    "D": compact_optimizer_state(m.opt_D.state_dict())},
        training={"options": opts.to_dict(), "d_config": m.D.config.to_dict(), "progress": progress.to_dict(),
                  "state": {"ema": {"half_life_kimg": opts.ema_kimg_value, "rampup": opts.ema_rampup},
                            "blur": {"sigma": sigma, "initial_sigma": opts.blur_sigma,
                                     "fade_kimg": opts.blur_fade_kimg_value},
                            "augment": None},
                  "data": {"images": dataset_size, "seed": opts.seed},
                  "rng": rng},
        metadata=default_metadata(kimg=progress.cur_nimg / 1000),
    )


def save_training_snapshot(path: Path, snapshot: Snapshot, max_part_mib: float | None) -> Path:
    """Write ``snapshot`` (one file, or parts of at most ``max_part_mib`` MiB); returns the file to resume from.
    OSError (e.g. ENOSPC) leaves nothing of this write behind and the previous snapshots intact."""
    max_bytes = None if max_part_mib is None else int(max_part_mib * 2**20)
    return save_snapshot(path, snapshot, max_part_bytes=max_bytes)


# ---------------------------------------------------------------------------------------------- resuming


def open_training_snapshot(path: str | Path) -> SnapshotFile:
    """Check a training snapshot's headers and manifest (no tensor read). ValueError for a generator file."""
    sf = open_snapshot(path)
    if sf.kind != "training":
        raise ValueError(f"{path}: a {sf.kind!r} file has no training state to resume from")
    return sf


def saved_options(sf: SnapshotFile) -> dict[str, Any]:
    """The TrainOptions the snapshot's run used (as a dict), from the manifest."""
    opts = sf.peek("training").get("options")
    if not isinstance(opts, dict):
        raise CorruptCheckpointError(sf.path, "training snapshot without options")
    return opts


def check_fits(sf: SnapshotFile, m: Models) -> None:
    """Compare the file's tensor table with the networks and optimizers of this run, before reading.

    Raises CorruptCheckpointError naming the first tensor that does not fit (a snapshot of another
    discriminator size, say)."""
    for name, module in (("G", m.G), ("G_ema", m.G_ema), ("D", m.D)):
        if name not in sf.modules:
            raise CorruptCheckpointError(sf.path, f"no {name} in this training snapshot")
        sf.check_module(name, {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()})
    optimizers = sf.peek("optimizers")
    for name, opt in (("G", m.opt_G), ("D", m.opt_D)):
        saved = optimizers.get(name) if isinstance(optimizers, dict) else None
        if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
            raise CorruptCheckpointError(sf.path, f"no optimizer state for {name}")
        params = [p for g in opt.param_groups for p in g["params"]]
        for i, s in saved["state"].items():
            if type(i) is not int or not 0 <= i < len(params) or not isinstance(s, dict):
                raise CorruptCheckpointError(sf.path, f"optimizer {name}: state for parameter {i!r} of "
                                                      f"{len(params)}")
            for key in ("exp_avg", "exp_avg_sq"):
                info = s.get(key)
                if isinstance(info, TensorInfo) and info.shape != tuple(params[i].shape):
                    raise CorruptCheckpointError(sf.path, (
                        f"optimizer {name}: {key} of parameter {i} has shape {list(info.shape)}, the parameter "
                        f"{list(params[i].shape)}"))


def restore(m: Models, snapshot: Snapshot, opts: TrainOptions) -> tuple[int, int, int]:
    """Load models and optimizer states from a training snapshot; returns (cur_nimg, step, samples_drawn).

    Learning rates and betas come from the *current* options (the saved optimizer states carry the old
    ones), so a run can be resumed with, e.g., a lower learning rate."""
    from training.trainer import build_hyperparameters

    try:
        m.G.load_state_dict(snapshot.modules["G"])
        m.G_ema.load_state_dict(snapshot.modules["G_ema"])
        m.D.load_state_dict(snapshot.modules["D"])
        m.opt_G.load_state_dict(expand_optimizer_state(snapshot.optimizers["G"]))
        m.opt_D.load_state_dict(expand_optimizer_state(snapshot.optimizers["D"]))
        p = TrainingProgress.from_dict(snapshot.training["progress"])
        progress = p.cur_nimg, p.step, p.samples_drawn
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"the snapshot does not fit this training setup: {exc}") from None
    fresh = build_hyperparameters(opts)
    for opt, groups in ((m.opt_G, fresh["G"]), (m.opt_D, fresh["D"])):
        for group, (lr, betas) in zip(opt.param_groups, groups):
            group["lr"], group["betas"] = lr, betas
    return progress


# ---------------------------------------------------------------------------------------------- in train()


# d_blur: the same maths, but another rounding, so a switch ends bit-exactness (listed, still allowed).
EXACT_RESUME_FIELDS = ("batch", "batch_gpu", "seed", "num_views", "multiview", "mirror", "data", "d_blur")
# What runs saved before a field existed used (their options lack it).
SAVED_BEFORE_FIELD = {"d_blur": "conv"}


def resume_differences(saved: dict, opts: TrainOptions, world_size: int, saved_world: int | None) -> list[str]:
    """Options whose change makes a resumed run differ from an uninterrupted one (it still runs)."""
    saved = {**SAVED_BEFORE_FIELD, **saved}
    diffs = [f"{k}: {saved.get(k)!r} -> {getattr(opts, k)!r}" for k in EXACT_RESUME_FIELDS
             if k in saved and saved[k] != getattr(opts, k) and not (k == "data" and Path(saved[k]) == Path(opts.data))]
    if saved_world is not None and saved_world != world_size:
        diffs.append(f"GPUs: {saved_world} -> {world_size}")
    return diffs


PER_INVOCATION_FIELDS = ("resume", "stop_after_minutes")  # never inherited from the snapshot's run


@dataclass(frozen=True, eq=False)
class ResumePoint:
    """Where ``--resume`` points: the snapshot, the run directory to continue in (None: a new one), and what
    the manifest says (generator config, the run's options). No tensor has been read yet."""

    path: Path
    run_dir: Path | None
    generator_config: dict[str, Any]
    options: dict[str, Any]
    file: SnapshotFile | None = None
    legacy: Snapshot | None = None

    def load(self, m: Models) -> Snapshot:
        """Check the file against the run's networks (:func:`check_fits`), then read everything."""
        if self.file is not None:
            check_fits(self.file, m)
            return self.file.read(map_location="cpu")
        return self.legacy


def find_resume_point(resume: str | Path) -> ResumePoint:
    """Locate the snapshot of ``--resume`` (a run directory: its newest snapshot; or a snapshot file) and
    check its headers. FileNotFoundError / ValueError (CheckpointError) with the reason otherwise."""
    from core.runs import is_run_dir, latest_snapshot
    from core.tensor_file_reader import sniff

    source = Path(resume)
    if source.is_dir() and not is_run_dir(source):
        raise FileNotFoundError(f"{source}: a folder but not a run directory (no options.json or status.json); "
                                "name the snapshot file to resume from it, e.g. its .safetensors.index.json")
    if source.is_dir():
        path = latest_snapshot(source)
        if path is None:
            raise FileNotFoundError(f"{source}: no network-snapshot-* to resume from")
        run_dir: Path | None = source
    elif source.exists():
        path, run_dir = source, (source.parent if is_run_dir(source.parent) else None)
    else:
        raise FileNotFoundError(f"{source}: no such run directory or snapshot")
    if path.is_file() and sniff(path) == "pickle":  # a run from before safetensors: format 1, read-only
        from core.snapshot_pickle import load_pickle_snapshot

        legacy = load_pickle_snapshot(path)
        if legacy.kind != "training":
            raise ValueError(f"{path}: a {legacy.kind!r} snapshot has no training state to resume from")
        return ResumePoint(path, run_dir, legacy.generator_config, dict(legacy.training.get("options", {})),
                           legacy=legacy)
    sf = open_training_snapshot(path)
    return ResumePoint(path, run_dir, sf.generator_config, saved_options(sf), file=sf)


def gather_rng(info) -> list[dict[str, Any]]:
    """Every rank's RNG states, in rank order (a collective: all ranks call it)."""
    mine = rng_state(info.device)
    if info.world_size <= 1:
        return [mine]
    import torch.distributed as dist

    every: list[Any] = [None] * info.world_size
    dist.all_gather_object(every, mine)
    return every


def write_training_snapshot(run_dir: Path, m: Models, opts: TrainOptions, progress: TrainingProgress, info,
                            dataset_size: int) -> Path | None:
    """All ranks call this at a snapshot point (the RNG states are gathered); rank 0 writes and returns the
    file to resume from. A write the file system refuses (full disk, ...) or non-finite weights stop the run
    with :class:`training.stopping.TrainingStopped`, keeping the previous snapshots."""
    from core.runs import latest_snapshot, snapshot_path
    from training.stopping import TrainingStopped

    rng = gather_rng(info)
    if not info.is_main:
        return None
    try:
        snapshot = build_snapshot(m, opts, progress, rng, dataset_size)
    except UnsafeToSave as exc:
        raise TrainingStopped(str(exc)) from None
    path = snapshot_path(run_dir, progress.cur_nimg)
    try:
        return save_training_snapshot(path, snapshot, opts.snapshot_max_part_mib)
    except OSError as exc:
        previous = latest_snapshot(run_dir)
        needed = sum(t.numel() * t.element_size() for t in encode_snapshot(snapshot)[0].values()) / 2**20
        raise TrainingStopped(
            f"could not write snapshot {path.name} at {progress.cur_nimg / 1000:.3f} kimg: {exc.strerror or exc} "
            f"(errno {exc.errno}, {exc.filename or run_dir}); nothing of it was kept. The newest complete "
            f"snapshot is {previous.name if previous else 'none'}. Free space on that disk (a snapshot of "
            f"this run needs {needed:.0f} MiB), then continue with --resume {run_dir}") from exc
