"""Feature networks for FID: the standard Inception (loaded from a local TorchScript file) and a stand-in for tests.

Every extractor follows one convention (StyleGAN2-ADA / StyleGAN3 / CGS-GAN): it takes **uint8 images
``[B, 3, H, W]`` with values 0..255 at full resolution** and returns features ``[B, D]``; a network that
needs another input size resizes internally. ``name`` identifies the network (and, for a file, its content),
so cached dataset statistics never mix networks.

The standard FID network
------------------------
CGS-GAN's metrics use StyleGAN3's ``inception-2015-12-05.pkl`` (NVIDIA NGC), 2048-d pool features. That
file is a Python pickle: loading it runs whatever code the pickle names, and needs StyleGAN3's
``torch_utils`` on the path. We do not unpickle it. The same network is published by NVIDIA as a plain
**TorchScript** file, ``inception-2015-12-05.pt`` (StyleGAN2-ADA's metrics file; the same file clean-fid
downloads): a "direct TorchScript translation" of TensorFlow's ``inception-2015-12-05.tgz``, called as
``net(images_uint8, return_features=True)`` -> ``[B, 2048]``. :func:`load_inception` reads that file with
``torch.jit.load``, which builds the module from TorchScript IR: it runs TorchScript ops only and imports
no Python code from the file (unlike ``pickle.load`` / ``torch.load(weights_only=False)``). torch marks
``torch.jit`` deprecated (2.10+); loading still works in torch 2.13, and the warning is silenced here.

This program never downloads anything. Get the file once, on a machine with network, e.g.::

    mkdir -p ~/.cache/torch/hub/checkpoints
    curl -L -o ~/.cache/torch/hub/checkpoints/inception-2015-12-05.pt \\
        https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt

then copy it to the same place (or anywhere, and pass its path) on the training machine.

Where :func:`load_inception` looks, in order (the first hit wins):

1. the ``path`` argument (``--inception`` on the CLI); if given it must exist;
2. the environment variable ``SPLATHEAD_INCEPTION`` (a file path);
3. torch's hub cache, ``torch.hub.get_dir()/checkpoints/`` (``$TORCH_HOME/hub/checkpoints``; default
   ``$XDG_CACHE_HOME/torch`` or ``~/.cache/torch``), and ``~/.cache/torch/hub/checkpoints`` if different;
4. StyleGAN's dnnlib download cache, ``$DNNLIB_CACHE_DIR/downloads`` or ``~/.cache/dnnlib/downloads``,
   where dnnlib stores ``<md5 of url>_inception-2015-12-05.pt``.

If nothing is found, :class:`MissingWeightsError` lists the file names and folders it tried and how to
get the file. A StyleGAN3 ``.pkl`` found there is named in the message but not loaded.
"""

from __future__ import annotations

import glob
import hashlib
import os
import warnings
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import nn

INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
INCEPTION_PKL = "inception-2015-12-05.pkl"  # StyleGAN3's pickle: recognised, never unpickled
INCEPTION_DIM = 2048
ENV_VAR = "SPLATHEAD_INCEPTION"


@runtime_checkable
class FeatureExtractor(Protocol):
    """``extractor(images uint8 [B, 3, H, W]) -> features [B, D]`` (float32 or float64), plus ``name``."""

    name: str

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


class MissingWeightsError(FileNotFoundError):
    """The pretrained feature network is not on this machine. The message says what was looked for,
    where, and how to get it. ``searched`` holds the (folder, file pattern) pairs that were tried."""

    def __init__(self, message: str, searched: list[tuple[str, str]]):
        super().__init__(message)
        self.searched = searched


# ---------------------------------------------------------------------------------------------- checks


def check_images(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Validate ``uint8 [B, 3, H, W]`` (grey ``[B, 1, H, W]`` is repeated to 3 channels, as StyleGAN3 does)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(f"{name} must be uint8 in 0..255 (convert with (x * 255 + 0.5).clamp(0, 255).to(torch.uint8)), "
                        f"got {images.dtype}")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{name} must be [B, 3, H, W], got {list(images.shape)}")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images


def _check_features(features: torch.Tensor, batch: int, who: str) -> torch.Tensor:
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or features.shape[0] != batch:
        shape = list(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"{who} returned {shape}, expected features [{batch}, D]")
    return features


# ---------------------------------------------------------------------------------------------- TorchScript


class TorchScriptFeatures:
    """A TorchScript feature network: ``module(images_uint8[, return_features=True]) -> [B, D]``.

    ``return_features=True`` is passed when the module's ``forward`` has that argument (NVIDIA's Inception:
    the 2048-d pool features instead of the logits).
    """

    def __init__(self, module: torch.jit.ScriptModule, name: str, device: torch.device | str = "cpu",
                 expected_dim: int | None = None):
        self.module = module.eval()
        self.name = name
        self.device = torch.device(device)
        self.expected_dim = expected_dim
        try:
            args = [a.name for a in module.forward.schema.arguments]
        except (AttributeError, RuntimeError):
            args = []
        self.call_kwargs = {"return_features": True} if "return_features" in args else {}

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = check_images(images).to(self.device)
        features = _check_features(self.module(images, **self.call_kwargs), images.shape[0], self.name)
        if self.expected_dim is not None and features.shape[1] != self.expected_dim:
            raise ValueError(f"{self.name} gives {features.shape[1]} features, expected {self.expected_dim}: "
                             f"not the FID Inception ({INCEPTION_URL})")
        return features

    def __repr__(self) -> str:
        return f"TorchScriptFeatures({self.name!r}, device={self.device})"


def load_torchscript_features(path: str | os.PathLike, device: torch.device | str = "cpu",
                              expected_dim: int | None = None) -> TorchScriptFeatures:
    """Load a TorchScript feature network from ``path`` (``torch.jit.load``; no Python code from the file runs).

    The name is ``"<file stem>@<first 12 hex digits of its sha256>"`` (the stem of any ``*_<standard name>``
    is the standard name), so caches follow the file's content. With ``expected_dim`` every call checks the
    feature size.
    Raises ``ValueError`` if the file is not TorchScript (a pickle, a state dict, anything else).
    """
    path = Path(path)
    digest = _sha256(path)
    try:
        with warnings.catch_warnings():
            # torch >= 2.10 marks torch.jit as deprecated; loading a TorchScript archive still works.
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=torch.device(device))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path} is not a TorchScript archive (torch.jit.load failed: {first}). Expected a file like NVIDIA's "
            f"{INCEPTION_FILE} ({INCEPTION_URL}); pickles such as StyleGAN3's {INCEPTION_PKL} are not loaded"
        ) from None
    stem = Path(INCEPTION_FILE).stem if path.name.endswith(INCEPTION_FILE) else path.stem
    return TorchScriptFeatures(module, f"{stem}@{digest[:12]}", device, expected_dim)


def _sha256(path: Path) -> str:
    from core.regular_file import open_regular  # a FIFO or device is refused, never read (issue 19)

    h = hashlib.sha256()
    with open_regular(path, "a feature network file") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- Inception


def inception_search_dirs() -> list[tuple[str, str]]:
    """The (folder, file pattern) pairs :func:`load_inception` tries after ``path`` and ``$SPLATHEAD_INCEPTION``."""
    dirs: list[tuple[str, str]] = []
    hub = os.path.join(torch.hub.get_dir(), "checkpoints")
    dirs.append((hub, INCEPTION_FILE))
    home_hub = os.path.join(os.path.expanduser("~"), ".cache", "torch", "hub", "checkpoints")
    if os.path.abspath(home_hub) != os.path.abspath(hub):
        dirs.append((home_hub, INCEPTION_FILE))
    dnnlib = os.environ.get("DNNLIB_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "dnnlib")
    downloads = os.path.join(dnnlib, "downloads")
    dirs.append((downloads, INCEPTION_FILE))
    dirs.append((downloads, "*_" + INCEPTION_FILE))
    return dirs


def find_inception(path: str | os.PathLike | None = None) -> Path:
    """The Inception file :func:`load_inception` would load; :class:`MissingWeightsError` if there is none."""
    searched: list[tuple[str, str]] = []
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p
        searched.append((str(p.parent), p.name))
        raise MissingWeightsError(_missing_message(searched, [], given=str(p)), searched)
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if p.is_file():
            return p
        searched.append((str(p.parent), p.name))
        raise MissingWeightsError(_missing_message(searched, [], given=f"${ENV_VAR}={env}"), searched)
    pickles: list[str] = []
    for folder, pattern in inception_search_dirs():
        searched.append((folder, pattern))
        hits = sorted(glob.glob(os.path.join(glob.escape(folder), pattern)))
        if hits:
            return Path(hits[0])
        pickles += sorted(glob.glob(os.path.join(glob.escape(folder), "*" + INCEPTION_PKL)))
    raise MissingWeightsError(_missing_message(searched, pickles), searched)


def _missing_message(searched: list[tuple[str, str]], pickles: list[str], given: str | None = None) -> str:
    lines = [f"The Inception network for FID is not available: {given} is not a file."] if given else [
        f"The Inception network for FID ({INCEPTION_FILE}, TorchScript) was not found. Looked for:"]
    if not given:
        lines += [f"  {os.path.join(folder, pattern)}" for folder, pattern in searched]
    if pickles:
        lines.append("Found StyleGAN3's pickle, which is not loaded (unpickling runs code from the file): "
                     + ", ".join(pickles) + f". Use the TorchScript file {INCEPTION_FILE} instead (same network).")
    lines += [
        "This program does not download. On a machine with network, run:",
        f"  mkdir -p ~/.cache/torch/hub/checkpoints && curl -L -o ~/.cache/torch/hub/checkpoints/{INCEPTION_FILE} "
        f"{INCEPTION_URL}",
        f"then copy the file into {searched[0][0] if not given else '~/.cache/torch/hub/checkpoints'} here, "
        f"or pass its path (--inception PATH, or ${ENV_VAR}).",
    ]
    return "\n".join(lines)


def load_inception(path: str | os.PathLike | None = None, device: torch.device | str = "cpu") -> TorchScriptFeatures:
    """The standard FID Inception (2048-d pool features) from a local TorchScript file.

    Args:
        path: the file; if None, ``$SPLATHEAD_INCEPTION`` and then the caches in the module docstring.
        device: where the network runs.

    Raises:
        MissingWeightsError: no file (the message lists every place tried and how to get the file).
        ValueError: the file is not TorchScript; and, at the first call, if it does not give 2048 features.
    """
    return load_torchscript_features(find_inception(path), device, expected_dim=INCEPTION_DIM)


# ---------------------------------------------------------------------------------------------- stand-in


class StandInFeatures(nn.Module):
    """A tiny random-weight conv net with the extractor interface. **For tests only: its FID is not FID.**

    Images are resized to 32 x 32 (area), mapped to [-1, 1], passed through two random 3x3 convs (stride 2,
    tanh), and the global means and standard deviations of the maps together with the mean input colour
    are projected to ``dim`` features by a fixed random matrix. Deterministic given ``seed``.
    """

    def __init__(self, dim: int = 64, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        with torch.no_grad():
            for conv in (self.conv1, self.conv2):
                fan_in = conv.weight[0].numel()
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen) * 0.1)
        pooled = 3 + 2 * 16 + 2 * 32
        self.register_buffer("proj", torch.randn(pooled, dim, generator=gen) / pooled ** 0.5)
        self.name = f"stand-in-random-conv-d{dim}-seed{seed} (test stand-in, not Inception; not FID)"
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = check_images(images).to(self.proj.device).float() / 127.5 - 1.0
        x = nn.functional.interpolate(x, size=(32, 32), mode="area")
        h1 = torch.tanh(self.conv1(x))
        h2 = torch.tanh(self.conv2(h1))
        parts = [x.mean((2, 3)), h1.mean((2, 3)), h1.std((2, 3)), h2.mean((2, 3)), h2.std((2, 3))]
        return torch.cat(parts, 1) @ self.proj


def stand_in_features(dim: int = 64, seed: int = 0) -> StandInFeatures:
    """A tiny random conv net for tests (see :class:`StandInFeatures`); its numbers are not FID."""
    return StandInFeatures(dim, seed)
