"""What a checkpoint holds in memory (:class:`Snapshot`) and the errors every checkpoint reader raises.

The files themselves:

- ``core.tensor_files`` / ``core.tensor_file_reader``: the safetensors + JSON-manifest layout (one file, or
  parts with an index) and its checked reader; the only format written (generator files and training
  snapshots alike);
- ``core.snapshots``: :class:`Snapshot` <-> that layout (``save_snapshot`` / ``load_snapshot``);
- ``core.snapshot_pickle``: the data-only ``.pkl`` format of format_version 1, read-only;
- ``core.legacy_cgsgan`` / ``core.legacy_pickle``: official CGS-GAN pickles, read-only, nothing executed.
"""

from __future__ import annotations

import datetime
import os
import pickle
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

KINDS = ("generator", "training")


# ---------------------------------------------------------------------------------------------- errors


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message starts with the file's path (or ``<bytes>``)."""

    def __init__(self, source: str | os.PathLike, problem: str) -> None:
        super().__init__(f"{os.fspath(source)}: {problem}")
        self.source, self.problem = os.fspath(source), problem

    def __reduce__(self) -> tuple:  # picklable across worker processes
        return (type(self), (self.source, self.problem))


class CorruptCheckpointError(CheckpointError):
    """Empty, truncated or corrupt, a header that does not fit the file or the config, or not ours at all."""


class CheckpointVersionError(CheckpointError):
    """A checkpoint of a ``format_version`` this code cannot read (written by a newer version)."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A pickle that imports something our files never contain (or uses persistent ids); nothing was run."""


class ForeignCheckpointError(UnsafeCheckpointError):
    """A recognised other format (official CGS-GAN/StyleGAN pickle, ``torch.save`` file); nothing was run."""


# ---------------------------------------------------------------------------------------------- contents


@dataclass(frozen=True, kw_only=True, eq=False)
class Snapshot:
    """The contents of a checkpoint, format-independent.

    Attributes:
        kind: ``"generator"`` (weights only; needs ``"G_ema"`` or ``"G"``) or ``"training"`` (everything a
            resumed run needs).
        generator_config: the generator's config as ``GeneratorConfig.to_dict`` gives it (plain values).
        modules: state dicts by name (``"G"``, ``"G_ema"``, ``"D"``): ``{key: tensor}``.
        optimizers: ``optimizer.state_dict()`` by name (nested dicts/lists with tensors and numbers).
        training: options, counters, RNG states; nested dicts/lists/tuples with tensors and plain values.
        metadata: free-form plain values (see :func:`default_metadata`), no tensors.
    """

    kind: Literal["generator", "training"]
    generator_config: dict[str, Any]
    modules: dict[str, dict[str, torch.Tensor]]
    optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("generator_config", "modules", "optimizers", "training", "metadata"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"Snapshot.{name} must be a dict, got {type(getattr(self, name)).__name__}")
        for name, sd in self.modules.items():
            if type(name) is not str or not name or "/" in name or not isinstance(sd, dict):
                raise TypeError(f"Snapshot.modules maps names (str without '/') to state dicts, got {name!r}: "
                                f"{type(sd).__name__}")
            bad = next((k for k, v in sd.items() if type(k) is not str or not isinstance(v, torch.Tensor)),
                       None)
            if bad is not None:
                raise TypeError(f"Snapshot.modules[{name!r}][{bad!r}] must be a str key to a tensor, "
                                f"got a {type(sd[bad]).__name__}")
        if self.kind == "generator" and not ({"G_ema", "G"} & set(self.modules)):
            raise ValueError(f"a generator snapshot needs modules 'G_ema' or 'G', got {sorted(self.modules)}")

    @property
    def generator_module(self) -> str:
        """``"G_ema"`` when present, else ``"G"`` (the weights a viewer shows)."""
        for name in ("G_ema", "G"):
            if name in self.modules:
                return name
        raise KeyError(f"snapshot has no generator weights (modules: {sorted(self.modules)})")

    def generator_state(self) -> dict[str, torch.Tensor]:
        """The generator's state dict: ``modules["G_ema"]``, else ``modules["G"]``."""
        return self.modules[self.generator_module]


def default_metadata(**extra: Any) -> dict[str, Any]:
    """``{"created": UTC ISO time, "code_version": ..., "torch_version": ...}`` plus ``extra``."""
    from importlib import metadata as importlib_metadata

    try:
        code_version = importlib_metadata.version("splathead-studio")
    except importlib_metadata.PackageNotFoundError:
        code_version = "unknown"
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"created": created, "code_version": code_version, "torch_version": str(torch.__version__),
            **extra}


def __getattr__(name: str) -> Any:
    """``core.checkpoint.TensorData``: the name every format-1 ``.pkl`` file records for its tensor records
    (the class now lives in :mod:`core.snapshot_pickle`); resolved lazily to avoid an import cycle."""
    if name == "TensorData":
        from core.snapshot_pickle import TensorData

        return TensorData
    raise AttributeError(f"module 'core.checkpoint' has no attribute {name!r}")
