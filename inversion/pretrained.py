"""Pretrained loss networks: where their weight files live, fetching them on first use, loading them, and the
message when one is missing.

==================  ==================================  ==========================================  =========
network             file                                standard folder                             checked
==================  ==================================  ==========================================  =========
LPIPS ``alex``      ``alexnet-owt-7be5be79.pth``        ``$TORCH_HOME/hub/checkpoints`` (torchvision)  sha256
LPIPS ``vgg``       ``vgg16-397923af.pth``              ``$TORCH_HOME/hub/checkpoints``              sha256
ID (facenet)        ``20180402-114759-vggface2.pt``     ``$TORCH_HOME/checkpoints`` (facenet-pytorch)  contents
==================  ==================================  ==========================================  =========

A file is looked for in the folder the user names (``weights_dir``), then in its standard folder. When it is
in neither, it is downloaded on first use from its published address into the standard folder (the same
place torchvision and facenet-pytorch put it), with a progress bar on stderr: torchvision's files carry the
first 8 hex digits of their SHA-256 in their name, which the download checks; facenet-pytorch publishes no
hash, so its file is checked by loading it as InceptionResnetV1's state dict (every key and shape).
With ``offline=True`` (``--offline``; a viewer setting) nothing is ever downloaded. A refused, failed or
corrupt download raises :class:`MissingWeightsError`, whose message names the file, the folders searched, the
address and what to do; nothing half-written is left behind.

``$TORCH_HOME`` defaults to ``~/.cache/torch`` (``$XDG_CACHE_HOME/torch`` when that is set). LPIPS's small
linear heads ship inside the lpips wheel. With ``allow_random=True`` a missing file is replaced by random
weights (a *stand-in*: the loss runs but means nothing perceptually) without downloading; only tests and
benchmarks ask for that.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class WeightFile:
    """A published weight file.

    Attributes:
        name: file name. url: its published address (``https://`` or ``file://``).
        folder: the standard folder relative to ``$TORCH_HOME`` (``hub/checkpoints`` or ``checkpoints``).
        sha256_prefix: leading hex digits of its SHA-256, checked on download (None: none published).
        what: the loss that needs it, for messages.
    """

    name: str
    url: str
    folder: str
    sha256_prefix: str | None
    what: str


def _torchvision(name: str, what: str) -> WeightFile:
    prefix = re.search(r"-([0-9a-f]{8,})\.pth$", name)
    return WeightFile(name, f"https://download.pytorch.org/models/{name}", "hub/checkpoints",
                      prefix.group(1) if prefix else None, what)


LPIPS_WEIGHTS: dict[str, WeightFile] = {
    "alex": _torchvision("alexnet-owt-7be5be79.pth", "The LPIPS loss (alex)"),
    "vgg": _torchvision("vgg16-397923af.pth", "The LPIPS loss (vgg)"),
}
FACENET_WEIGHTS = WeightFile(
    "20180402-114759-vggface2.pt",
    "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
    "checkpoints", None, "The ID loss (facenet VGGFace2)")
LPIPS_FILES = {k: v.name for k, v in LPIPS_WEIGHTS.items()}
FACENET_FILE = FACENET_WEIGHTS.name


class MissingWeightsError(FileNotFoundError):
    """A pretrained weight file is absent and could not (or may not) be downloaded; ``str(err)`` names the file,
    the folders searched, the address and the fix."""


@dataclass(frozen=True)
class LoadedNetwork:
    """A loss network and where its weights came from (a file path, or ``"random stand-in"``)."""

    module: nn.Module
    source: str


def torch_home() -> Path:
    """``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch`` (torch's own rule)."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "torch"


def _missing(wf: WeightFile, folders: list[Path], reason: str) -> MissingWeightsError:
    searched = ", ".join(str(f) for f in folders)
    standard = torch_home() / wf.folder
    return MissingWeightsError(
        f"{wf.what} needs the weight file {wf.name}, which is missing ({reason}). Searched: {searched}. "
        f"Put {wf.name} into {standard} (or into a folder you pass with --weights-dir); it is published at "
        f"{wf.url}. To run anyway with an untrained stand-in (numbers without perceptual meaning), set the loss "
        f"weight to 0 or pass --random-loss-weights.")


def download_weights(wf: WeightFile, dest: Path, progress: bool = True) -> Path:
    """Download ``wf`` to ``dest`` (atomically, SHA-256 prefix checked when published); ``MissingWeightsError``
    with the reason on any failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(wf.url, str(dest), hash_prefix=wf.sha256_prefix, progress=progress)
    except RuntimeError as exc:  # torch.hub's hash mismatch (the partial file is removed)
        raise _missing(wf, [dest.parent], f"the download from {wf.url} is corrupt: {exc}") from None
    except (OSError, ValueError) as exc:  # URLError is an OSError; refused, unreachable, unwritable
        for leftover in dest.parent.glob(dest.name + ".*.partial"):
            leftover.unlink(missing_ok=True)
        raise _missing(wf, [dest.parent], f"downloading it from {wf.url} failed: {exc}") from None
    return dest


def find_weights(wf: WeightFile, weights_dir: str | os.PathLike | None, allow_random: bool,
                 offline: bool = False, progress: bool = True) -> Path | None:
    """The path of ``wf`` in ``weights_dir`` or its standard folder, downloading it there if absent (unless
    ``offline``); None if absent and ``allow_random`` (no download then); else :class:`MissingWeightsError`."""
    standard = torch_home() / wf.folder
    folders = ([Path(weights_dir).expanduser()] if weights_dir else []) + [standard]
    for folder in folders:
        if (folder / wf.name).is_file():
            return folder / wf.name
    if allow_random:
        return None
    if offline:
        raise _missing(wf, folders, "offline: nothing is downloaded")
    return download_weights(wf, standard / wf.name, progress)


def load_lpips(net: str = "alex", weights_dir: str | os.PathLike | None = None,
               allow_random: bool = False, offline: bool = False) -> LoadedNetwork:
    """LPIPS (lpips 0.1.4, v0.1 linear heads from its wheel) with the backbone from ``LPIPS_WEIGHTS[net]``."""
    if net not in LPIPS_WEIGHTS:
        raise ValueError(f"LPIPS backbone must be one of {sorted(LPIPS_WEIGHTS)}, got {net!r}")
    path = find_weights(LPIPS_WEIGHTS[net], weights_dir, allow_random, offline)
    from core.torchvision_compat import ensure_torchvision

    tv = ensure_torchvision().module
    import lpips

    with warnings.catch_warnings():  # torchvision's notes about its deprecated `pretrained` argument
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    if path is not None:
        backbone = (tv.models.alexnet() if net == "alex" else tv.models.vgg16()).features
        backbone.load_state_dict({k.removeprefix("features."): v
                                  for k, v in torch.load(path, map_location="cpu", weights_only=True).items()
                                  if k.startswith("features.")})
        for slice_ in (getattr(model.net, f"slice{i}") for i in range(1, 6)):
            for name, layer in slice_.named_children():
                layer.load_state_dict(backbone[int(name)].state_dict())
    model.eval().requires_grad_(False)
    return LoadedNetwork(model, str(path) if path else "random stand-in")


def load_facenet(weights_dir: str | os.PathLike | None = None, allow_random: bool = False,
                 offline: bool = False) -> LoadedNetwork:
    """facenet-pytorch's InceptionResnetV1 (VGGFace2), embeddings only (512-d, L2-normalised)."""
    path = find_weights(FACENET_WEIGHTS, weights_dir, allow_random, offline)
    from core.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    from facenet_pytorch import InceptionResnetV1

    model = InceptionResnetV1(pretrained=None, classify=False)
    if path is not None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")})
        except Exception as exc:  # not a torch file, or not this network's weights: the content check
            raise MissingWeightsError(
                f"{path} is not facenet-pytorch's VGGFace2 InceptionResnetV1 weight file ({type(exc).__name__}: "
                f"{str(exc)[:200]}); delete it and run again to download it from {FACENET_WEIGHTS.url}") from None
    model.eval().requires_grad_(False)
    return LoadedNetwork(model, str(path) if path else "random stand-in")
