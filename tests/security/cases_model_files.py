"""Case families for generator files: pickle structure (all three loaders), our format's config and
weights, and the official CGS-GAN format's claims. Each builder writes its files under ``root``."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import math
import sys
from collections import OrderedDict
from pathlib import Path

import torch

from hostile_case import CHECKPOINT, Case, Raises, Returns
from hostile_files import write_pickle_payloads

ROOT = Path(__file__).resolve().parents[2]


def official_fixture():
    """tests/core/test_legacy_cgsgan.py (its official-format writer), imported by path."""
    name = "legacy_cgsgan_fixture"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests/core/test_legacy_cgsgan.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def tiny_model(path: Path) -> Path:
    from core.generator import PRESETS, Generator
    from core.model_files import save_generator

    torch.manual_seed(0)
    save_generator(Generator(PRESETS["tiny"]), path)
    return path


def pickle_structure(root: Path) -> list[Case]:
    """Nesting, container sizes, memo and length claims, in all three generator loaders."""
    cases = []
    for name, path in write_pickle_payloads(root).items():
        for action in ("load_generator", "load_snapshot", "load_official"):
            cases.append(Case(f"{name} [{action}]", action, str(path), Raises((CHECKPOINT,))))
    return cases


def generator_config(root: Path) -> list[Case]:
    """Our format (a valid snapshot) whose config or weights claim what the file does not hold."""
    from core.checkpoint import save_generator_state
    from core.generator import PRESETS, Generator

    tiny = dataclasses.asdict(PRESETS["tiny"])
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in Generator(PRESETS["tiny"]).state_dict().items()}
    state = {k: torch.zeros(s) for k, s in shapes.items()}
    bad = {  # case: (config changes, what the message must name)
        "width 4096": ({"width": 4096}, "width"),
        "mapping_layers 10^6": ({"mapping_layers": 10**6}, "mapping_layers"),
        "heads 0": ({"heads": 0}, "heads"),
        "mlp_ratio 0": ({"mlp_ratio": 0}, "mlp_ratio"),
        "width as text": ({"width": "512"}, "width"),
        "num_points 10^9": ({"num_points": 10**9}, "num_points"),
        "10^5 levels": ({"level_channels": [16] * 10**5, "upsample_ratios": [1] * 10**5}, "level_channels"),
        "upsample 16^7 per token": ({"level_channels": [16] * 8, "upsample_ratios": [1] + [16] * 7},
                                    "Gaussians"),
        "resolution 2^40": ({"resolution": 2**40}, "resolution"),
        "pe_table_res 10^5": ({"pe_table_res": 10**5}, "pe_table_res"),
        "w_avg_beta NaN": ({"w_avg_beta": float("nan")}, "w_avg_beta"),
        "z_dim -1": ({"z_dim": -1}, "z_dim"),
        "ws_layout unknown": ({"ws_layout": "every other"}, "ws_layout"),
        "400 M parameters": ({"width": 2048, "heads": 8, "mlp_ratio": 16, "num_first_blocks": 8},
                             "parameters"),
    }
    cases = []
    for i, (name, (change, field)) in enumerate(bad.items()):
        path = root / f"config{i}.pkl"
        save_generator_state(path, {**tiny, **change}, state)
        cases.append(Case(name, "load_generator", str(path), Raises((CHECKPOINT,), field)))
    # a valid 61.6 M-parameter config without its weights: nothing may be built before they are compared
    path = root / "cgs512_no_weights.pkl"
    save_generator_state(path, dataclasses.asdict(PRESETS["cgs512"]), {"xyz_const": torch.zeros(512, 3)})
    cases.append(Case("cgs512 config, weights missing", "load_generator", str(path),
                      Raises((CHECKPOINT,), "missing")))
    path = root / "tiny_bad_shape.pkl"
    save_generator_state(path, tiny, {**state, "xyz_const": torch.zeros(65, 3)})
    cases.append(Case("one weight mis-shaped", "load_generator", str(path),
                      Raises((CHECKPOINT,), "xyz_const")))
    path = tiny_model(root / "tiny.pkl")
    cases.append(Case("control: a valid tiny generator", "load_generator", str(path), Returns("splathead")))
    return cases


class _RawTensor:
    """Pickles as ``_rebuild_tensor_v2(<storage from blob>, 0, size, stride)``, the blob made by hand."""

    def __init__(self, blob: bytes, size: tuple, stride: tuple) -> None:
        self.blob, self.size, self.stride = blob, size, stride

    def __reduce__(self):
        args = (_Blob(self.blob), 0, self.size, self.stride, False, OrderedDict())
        return (torch._utils._rebuild_tensor_v2, args)


class _Blob:
    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.blob,))


def _storage_blob(numel_claim: int, values: int = 4) -> bytes:
    """A legacy torch.save stream of a float storage holding ``values`` floats, claiming ``numel_claim``."""
    ts = torch.storage.TypedStorage(wrap_storage=torch.zeros(values).untyped_storage(), dtype=torch.float32,
                                    _internal=True)
    blob = ts.__reduce__()[1][0]
    return blob.replace(b"K" + bytes([values]) + b"N", b"J" + numel_claim.to_bytes(4, "little") + b"N", 1)


def official_format(root: Path) -> list[Case]:
    """Official CGS-GAN pickles whose sizes, storages and attributes claim what their bytes do not hold."""
    fx = official_fixture()
    s = fx.SMALL
    values = fx.official_values(s)

    def official(name: str, tensors: dict | None = None, sizes=s, **kw) -> str:
        path = root / f"{name}.pkl"
        fx.write_official_pickle(path, sizes, tensors, entries="G_ema", **kw)
        return str(path)

    def refused(name: str, path: str, pattern: str) -> Case:
        return Case(name, "load_official", path, Raises((CHECKPOINT,), pattern))

    zip_blob = io.BytesIO()
    torch.save(torch.zeros(4), zip_blob)
    claim = _RawTensor(_storage_blob(1_000_000_000), (16, 3), (3, 1))
    cases = [
        Case("control: a valid small official pickle", "load_official", official("valid"), Returns("loaded")),
        refused("storage claims 10^9 floats (4 GB), holds 4",
                official("storage_claim", {**values, "_xyz": claim}), "claim"),
        refused("storage blob in the zip format",
                official("zip_blob", {**values, "_xyz": _RawTensor(zip_blob.getvalue(), (16, 3), (3, 1))}),
                "legacy"),
        refused("empty _xyz tensor", official("empty", {**values, "_xyz": torch.zeros(0, 3)}), "_xyz"),
        refused("img_resolution 2^40", official("resolution", sizes=dataclasses.replace(s, resolution=2**40)),
                "resolution"),
    ]
    # every tensor a stride-0 view of one element: the shapes claim a 1 GB network in a file of a few KB
    big = dataclasses.replace(s, width=1536, heads=8, pe_res=16, z_dim=512, w_dim=512, channels=(1536, 16, 8))
    expanded = {k: torch.zeros(1, dtype=dtype).expand(shape)
                for k, (shape, _, dtype) in fx.official_spec(big).items()}
    expanded.update({"point_gen.rotation_init": torch.tensor([1.0, 0, 0, 0]), "point_gen.color_init": torch.zeros(3),
                     "point_gen.opacity_init": torch.tensor([math.log(0.1 / 0.9)]),
                     "point_gen.scale_threshold": torch.full((3,), -2.9)})  # the checked constants
    cases.append(refused("stride-0 tensors claiming a 1 GB network",
                         official("stride0", expanded, sizes=big), "repeats elements"))
    attention = "point_gen.transformer.first_layers.0.attn"
    for name, attrs, field in (("num_ws 10^9", {"mapping_network": {"num_ws": 10**9}}, "num_ws"),
                               ("attention heads 0", {attention: {"heads": 0}}, "heads"),
                               ("w_avg_beta NaN", {"mapping_network": {"w_avg_beta": math.nan}}, "w_avg_beta"),
                               ("bias_gain a dict", {"mapping_network.fc0": {"bias_gain": {}}}, "bias_gain")):
        cases.append(refused(name, official(name.replace(" ", "_"), attr_overrides=attrs), field))
    return cases
