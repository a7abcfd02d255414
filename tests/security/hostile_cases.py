"""The case families of the bad-input suite: each builder writes its files under a folder and returns the
cases to run in one child process (tests/security/hostile_child.py).

A case names the loader (``action``, a public entry point the studio uses), the file, and what must
happen: ``Raises(classes, pattern)`` (one of the documented error types, a message naming the file and
matching ``pattern``) or ``Returns(pattern)`` (a control that must still load, or a batch API that reports
the bad file as data, e.g. ``preprocess_photos``'s ``problems``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hostile_files import (
    json_member,
    jpeg_header_only,
    npy_bomb,
    npy_header,
    npy_member,
    png_grey,
    png_header_only,
    png_noise,
    special_files,
    stored,
    write_pickle_payloads,
    write_zip,
    zeros_bomb,
)

ROOT = Path(__file__).resolve().parents[2]

CHECKPOINT = "core.checkpoint.CheckpointError"
PLY = "core.ply.PlyError"
DIRECTIONS = "core.editing.direction_file.DirectionsFileError"
MISMATCH = "core.editing.direction_file.DirectionsMismatchError"
LATENT = "core.editing.latent_file.LatentFileError"
LIBRARY = "core.editing.saved_latents.LatentsFileError"
PHOTO = "inversion.photos.PhotoError"
DATASET = "training.dataset.DatasetError"
FOLDER = "builtins.IsADirectoryError"
NOT_REGULAR = "core.regular_file.NotRegularFileError"


@dataclass(frozen=True)
class Raises:
    classes: tuple[str, ...]
    pattern: str = ""


@dataclass(frozen=True)
class Returns:
    pattern: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    action: str
    path: str
    expect: Raises | Returns
    kwargs: dict = dataclasses.field(default_factory=dict)

    def plan(self) -> dict:
        return {"name": self.name, "action": self.action, "path": self.path, "kwargs": self.kwargs}


# ---------------------------------------------------------------------------------------------- fixtures


def _official_fixture():
    """tests/core/test_legacy_cgsgan.py (its official-format writer), imported by path."""
    name = "legacy_cgsgan_fixture"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests/core/test_legacy_cgsgan.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _tiny_model(path: Path) -> Path:
    from core.generator import PRESETS, Generator
    from core.model_files import save_generator

    torch.manual_seed(0)
    save_generator(Generator(PRESETS["tiny"]), path)
    return path


def _small_ply(path: Path) -> Path:
    from core.gaussians import GaussianSet
    from core.ply import write_ply

    g = torch.Generator().manual_seed(0)
    write_ply(path, GaussianSet(torch.rand(20, 3, generator=g) - 0.5, torch.randn(20, 4, generator=g),
                                torch.full((20, 3), -4.0), torch.randn(20, generator=g),
                                torch.randn(20, 1, 3, generator=g)))
    return path


PLY_NAMES = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]


def _ascii_ply(path: Path, rows: int, *, big_row: int = -1, big: bytes = b"", fmt: str = "ascii",
               declared: int | None = None) -> Path:
    head = [b"ply", f"format {fmt} 1.0".encode(), f"element vertex {declared or rows}".encode()]
    head += [f"property float {n}".encode() for n in PLY_NAMES] + [b"end_header"]
    row = b" ".join([b"0.5"] * len(PLY_NAMES))
    lines = [row if i != big_row else big for i in range(rows)]
    path.write_bytes(b"\n".join(head + lines) + b"\n")
    return path


def _directions(path: Path, sha: str, w_dim: int = 8) -> Path:
    from core.editing.direction_file import save_directions
    from core.editing.directions import Direction, DirectionSet, WStatistics

    stats = WStatistics(np.zeros(w_dim), np.eye(w_dim), 100)
    dirs = (Direction("a", "user", np.eye(w_dim)[0], 1.0), Direction("b", "user", np.eye(w_dim)[1], 1.0))
    save_directions(DirectionSet(sha, 4, stats, dirs, ()), path)
    return path


def _directions_header(sha: str, k: int = 2, w_dim: int = 8, **extra) -> str:
    entries = [{"name": f"d{i}", "kind": "user", "scale": 1.0, "slots": None, "note": ""} for i in range(k)]
    return json.dumps({"format": "splathead-directions", "format_version": 1, "model_sha256": sha,
                       "model_file": "m.pkl", "num_ws": 4, "w_dim": w_dim, "num_samples": 10,
                       "directions": entries, "measurements": [], **extra})


def _library(path: Path, sha: str) -> Path:
    from core.editing.latent_edit import LatentEdit
    from core.editing.saved_latents import LatentLibrary, save_library

    lib = LatentLibrary(sha).save("one", LatentEdit(torch.zeros(4, 8), ()), np.zeros((8, 8, 3), np.uint8))
    save_library(lib, path)
    return path


def _library_header(sha: str, entries: list) -> str:
    return json.dumps({"format": "splathead-latents", "format_version": 1, "model_sha256": sha, "entries": entries})


def _label() -> list[float]:
    from core.camera import orbit_cameras

    return orbit_cameras(torch.tensor(0.1), pitch=0.05).to_label().tolist()


def _dataset_zip(path: Path, members: list) -> Path:
    return write_zip(path, [json_member("dataset.json", {"labels": [["00000.png", _label()]]})] + members)


SHA = "a" * 64
OTHER_SHA = "b" * 64


# ---------------------------------------------------------------------------------------------- families


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
    bad = {
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
        "400 M parameters": ({"width": 2048, "heads": 8, "mlp_ratio": 16, "num_first_blocks": 8}, "parameters"),
    }
    cases = []
    for i, (name, (change, field)) in enumerate(bad.items()):
        path = root / f"config{i}.pkl"
        save_generator_state(path, {**tiny, **change}, state)
        cases.append(Case(name, "load_generator", str(path), Raises((CHECKPOINT,), field)))
    # a valid 61.6 M-parameter config without its weights: nothing may be built before the weights are compared
    path = root / "cgs512_no_weights.pkl"
    save_generator_state(path, dataclasses.asdict(PRESETS["cgs512"]), {"xyz_const": torch.zeros(512, 3)})
    cases.append(Case("cgs512 config, weights missing", "load_generator", str(path), Raises((CHECKPOINT,), "missing")))
    path = root / "tiny_bad_shape.pkl"
    save_generator_state(path, tiny, {**state, "xyz_const": torch.zeros(65, 3)})
    cases.append(Case("one weight mis-shaped", "load_generator", str(path), Raises((CHECKPOINT,), "xyz_const")))
    path = _tiny_model(root / "tiny.pkl")
    cases.append(Case("control: a valid tiny generator", "load_generator", str(path), Returns("splathead")))
    return cases


class _RawTensor:
    """Pickles as ``_rebuild_tensor_v2(<storage from blob>, 0, size, stride)`` with a hand-made storage blob."""

    def __init__(self, blob: bytes, size: tuple, stride: tuple) -> None:
        self.blob, self.size, self.stride = blob, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, (_Blob(self.blob), 0, self.size, self.stride, False, OrderedDict()))


class _Blob:
    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.blob,))


def _storage_blob(numel_claim: int, values: int = 4) -> bytes:
    """A legacy torch.save stream of a float storage holding ``values`` floats but claiming ``numel_claim``."""
    ts = torch.storage.TypedStorage(wrap_storage=torch.zeros(values).untyped_storage(), dtype=torch.float32,
                                    _internal=True)
    blob = ts.__reduce__()[1][0]
    return blob.replace(b"K" + bytes([values]) + b"N", b"J" + numel_claim.to_bytes(4, "little") + b"N", 1)


def official_format(root: Path) -> list[Case]:
    """Official CGS-GAN pickles whose sizes, storages and attributes claim what their bytes do not hold."""
    fx = _official_fixture()
    s = fx.SMALL

    def official(name: str, tensors: dict | None = None, sizes=s, **kw) -> str:
        path = root / f"{name}.pkl"
        fx.write_official_pickle(path, sizes, tensors, entries="G_ema", **kw)
        return str(path)

    values = fx.official_values(s)
    cases = [Case("control: a valid small official pickle", "load_official", official("valid"), Returns("loaded"))]
    blob = _storage_blob(1_000_000_000)
    cases.append(Case("storage claims 10^9 floats (4 GB), holds 4", "load_official",
                      official("storage_claim", {**values, "_xyz": _RawTensor(blob, (16, 3), (3, 1))}),
                      Raises((CHECKPOINT,), "claim")))
    zip_blob = io.BytesIO()
    torch.save(torch.zeros(4), zip_blob)
    cases.append(Case("storage blob in the zip format", "load_official",
                      official("zip_blob", {**values, "_xyz": _RawTensor(zip_blob.getvalue(), (16, 3), (3, 1))}),
                      Raises((CHECKPOINT,), "legacy")))
    # every tensor a stride-0 view of one element: the shapes claim a 1.5 GB network in a file of a few KB
    big = dataclasses.replace(s, width=1536, heads=8, pe_res=16, z_dim=512, w_dim=512, channels=(1536, 16, 8))
    expanded = {k: torch.zeros(1, dtype=dtype).expand(shape) for k, (shape, _, dtype) in fx.official_spec(big).items()}
    path = root / "stride0.pkl"
    fx.write_official_pickle(path, big, expanded, entries="G_ema")
    cases.append(Case("stride-0 tensors claiming a 1 GB network", "load_official", str(path),
                      Raises((CHECKPOINT,), "repeats elements")))
    cases.append(Case("empty _xyz tensor", "load_official", official("empty", {**values, "_xyz": torch.zeros(0, 3)}),
                      Raises((CHECKPOINT,), "_xyz")))
    cases.append(Case("img_resolution 2^40", "load_official",
                      official("resolution", sizes=dataclasses.replace(s, resolution=2**40)),
                      Raises((CHECKPOINT,), "resolution")))
    for name, attrs, field in (("num_ws 10^9", {"mapping_network": {"num_ws": 10**9}}, "num_ws"),
                               ("attention heads 0", {"point_gen.transformer.first_layers.0.attn": {"heads": 0}},
                                "heads"),
                               ("w_avg_beta NaN", {"mapping_network": {"w_avg_beta": float("nan")}}, "w_avg_beta"),
                               ("bias_gain a dict", {"mapping_network.fc0": {"bias_gain": {"a": 1}}}, "bias_gain")):
        cases.append(Case(name, "load_official", official(name.replace(" ", "_"), attr_overrides=attrs),
                          Raises((CHECKPOINT,), field)))
    return cases


def ply_files(root: Path) -> list[Case]:
    """ASCII and binary .ply files with absurd tokens, lines and counts."""
    big = b" ".join([b"1" * 10_000] + [b"0.5"] * (len(PLY_NAMES) - 1))
    cases = [
        Case("20,000 rows, one 10 kB digit string (the issue's 690 KB file)", "read_ply",
             str(_ascii_ply(root / "a.ply", 20_000, big_row=5, big=big)), Raises((PLY,), r"line \d+")),
        Case("a 30 kB token", "read_ply", str(_ascii_ply(root / "b.ply", 10, big_row=2, big=b"9" * 30_000)),
             Raises((PLY,), r"line \d+")),
        Case("a 200-character value in a normal line", "read_ply",
             str(_ascii_ply(root / "c.ply", 10, big_row=3, big=b" ".join([b"0." + b"1" * 198] + [b"0"] * 13))),
             Raises((PLY,), r"line \d+.*characters")),
        Case("a 4 MB line without a newline", "read_ply", str(_ascii_ply(root / "d.ply", 3, big_row=2,
                                                                        big=b"7 " * 2_000_000)),
             Raises((PLY,), r"line \d+")),
        Case("ascii header declaring 10^8 vertices", "read_ply", str(_ascii_ply(root / "e.ply", 5, declared=10**8)),
             Raises((PLY,), "truncated")),
        Case("binary header declaring 10^12 vertices", "read_ply",
             str(_ascii_ply(root / "f.ply", 0, fmt="binary_little_endian", declared=10**12)), Raises((PLY,), "truncated")),
        Case("a row of 10^5 values", "read_ply", str(_ascii_ply(root / "g.ply", 3, big_row=1,
                                                                big=b" ".join([b"1"] * 100_000))),
             Raises((PLY,), r"line \d+")),
        Case("no end_header within 2 MB", "read_ply", str(_write(root / "h.ply", b"ply\nformat ascii 1.0\n"
                                                                 + b"comment x\n" * 200_000)),
             Raises((PLY,), "end_header")),
        Case("control: a valid ascii file", "read_ply", str(_ascii_ply(root / "ok.ply", 100)), Returns("100")),
    ]
    return cases


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def side_cars(root: Path) -> list[Case]:
    """Directions, single latents and saved-latent libraries whose arrays claim gigabytes."""
    header = np.array(_directions_header(SHA))
    vec_bomb = npy_bomb("vectors", (20_000, 20_000))  # 3.2 GB declared, ~3 MB on disk
    good = [npy_member("w_mean", np.zeros(8)), npy_member("w_cov", np.eye(8))]
    z = lambda name, members, **kw: str(write_zip(root / name, members, **kw))  # noqa: E731
    cases = [
        Case("directions: 3.2 GB vectors, other model", "load_directions",
             z("d1.npz", [npy_member("header", header), vec_bomb] + good), Raises((DIRECTIONS,), "inflates"),
             {"model_sha256": OTHER_SHA}),
        Case("directions: 16 MB stored vectors, other model", "load_directions",
             z("d1b.npz", [npy_member("header", header), npy_member("vectors", np.ones((2000, 1000)))] + good),
             Raises((MISMATCH,), "another model"), {"model_sha256": OTHER_SHA}),
        Case("directions: 16 MB stored vectors, wrong shape", "load_directions",
             z("d1c.npz", [npy_member("header", header), npy_member("vectors", np.ones((2000, 1000)))] + good),
             Raises((DIRECTIONS,), "vectors"), {"model_sha256": SHA}),
        Case("directions: 3.2 GB vectors, this model", "load_directions",
             z("d2.npz", [npy_member("header", header), vec_bomb] + good), Raises((DIRECTIONS,), "inflates"),
             {"model_sha256": SHA}),
        Case("directions: 400 MB header text", "load_directions",
             z("d3.npz", [zeros_bomb("header.npy", npy_header((), "<U100000000"), 400_000_000)]),
             Raises((DIRECTIONS,), "header")),
        Case("directions: w_dim 10^6", "load_directions",
             z("d4.npz", [npy_member("header", np.array(_directions_header(SHA, w_dim=10**6))),
                          npy_member("vectors", np.zeros((2, 8)))] + good), Raises((DIRECTIONS,), "w_dim")),
        Case("directions: an extra 1 GiB member", "load_directions",
             z("d5.npz", [npy_member("header", header), npy_member("vectors", np.zeros((2, 8))), *good,
                          npy_bomb("extra", (1 << 27,))]), Raises((DIRECTIONS,), "inflates")),
        Case("directions: header claims more than the member holds", "load_directions",
             z("d6.npz", [npy_member("header", header),
                          stored("vectors.npy", npy_header((100_000, 100_000), "<f8") + bytes(64))] + good),
             Raises((DIRECTIONS,), "declares")),
        Case("directions: 65,535 members claimed", "load_directions",
             z("d7.npz", [npy_member("header", header)], claimed_entries=65_535), Raises((DIRECTIONS,), "members")),
        Case("directions: object array", "load_directions",
             z("d8.npz", [npy_member("header", header), stored("vectors.npy", _object_npy())] + good),
             Raises((DIRECTIONS,), "dtype")),
        Case("control: a valid directions file", "load_directions", str(_directions(root / "ok.npz", SHA)),
             Returns("2 directions"), {"model_sha256": SHA}),
        Case("latent: 20000 x 20000 (the issue's 1.5 MB file)", "read_latent",
             z("l1.npz", [npy_bomb("ws", (20_000, 20_000), "<f4")]), Raises((LATENT,), "inflates")),
        Case("latent: 2000 x 2000 stored (16 MB)", "read_latent",
             z("l1b.npz", [npy_member("ws", np.ones((2000, 2000), np.float32))]), Raises((LATENT,), "num_ws")),
        Case("latent: [1, 10^9] claimed, 64 bytes held", "read_latent",
             z("l2.npz", [stored("ws.npy", npy_header((1, 10**9), "<f4") + bytes(64))]), Raises((LATENT,), "declares")),
        Case("latent: integers", "read_latent", z("l3.npz", [npy_member("ws", np.zeros((4, 8), np.int64))]),
             Raises((LATENT,), "float")),
        Case("latent: for another model", "read_latent", z("l4.npz", [npy_member("ws", np.zeros((4, 8), np.float32))]),
             Raises((LATENT,), "does not fit"), {"expected": (14, 512)}),
        Case("control: a valid latent", "read_latent", z("l5.npz", [npy_member("ws", np.zeros((1, 4, 8), np.float32))]),
             Returns(r"\[4, 8\]")),
        Case("library: 1.6 GB base latent", "load_library",
             z("s1.npz", [npy_member("header", np.array(_library_header(SHA, [_entry(False)]))),
                          npy_bomb("base_0", (20_000, 20_000), "<f4")]), Raises((LIBRARY,), "base_0")),
        Case("library: 3.9 GB thumbnail", "load_library",
             z("s2.npz", [npy_member("header", np.array(_library_header(SHA, [_entry(True)]))),
                          npy_member("base_0", np.zeros((4, 8), np.float32)),
                          npy_bomb("thumb_0", (36_000, 36_000, 3), "|u1")]), Raises((LIBRARY,), "thumb_0")),
        Case("library: 10^6 entries", "load_library",
             z("s3.npz", [npy_member("header", np.array(_library_header(SHA, [_entry(False)] * 10**6)))]),
             Raises((LIBRARY,), "header")),
        Case("library: another model, bombs inside", "load_library",
             z("s4.npz", [npy_member("header", np.array(_library_header(SHA, [_entry(True)]))),
                          npy_bomb("base_0", (20_000, 20_000), "<f4")]), Raises((LIBRARY,), "inflates"),
             {"model_sha256": OTHER_SHA}),
        Case("library: another model, 16 MB stored base", "load_library",
             z("s5.npz", [npy_member("header", np.array(_library_header(SHA, [_entry(False)]))),
                          npy_member("base_0", np.ones((2000, 2000), np.float32))]), Raises((LIBRARY,), "another model"),
             {"model_sha256": OTHER_SHA}),
        Case("control: a valid library", "load_library", str(_library(root / "ok.latents.npz", SHA)),
             Returns("1 saved"), {"model_sha256": SHA}),
    ]
    return cases


def _entry(thumb: bool) -> dict:
    return {"name": "x", "values": {}, "thumbnail": thumb}


def _object_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([None, 1], dtype=object), allow_pickle=True)
    return buf.getvalue()


def photos(root: Path) -> list[Case]:
    """Decompression bombs, huge valid photos, tiny and broken images."""
    bomb = str(png_header_only(root / "bomb.png", 20_000, 20_000))
    big = str(png_grey(root / "big.png", 12_000, 12_000))
    cases = [
        Case("69-byte PNG claiming 20000 x 20000", "load_photo", bomb, Raises((PHOTO,), "MP")),
        Case("69-byte PNG claiming 20000 x 20000 [preprocess]", "preprocess", bomb, Returns("problems: .*MP")),
        Case("valid 12000 x 12000 PNG", "load_photo", big, Raises((PHOTO,), "over the limit")),
        Case("valid 12000 x 12000 PNG [preprocess]", "preprocess", big, Returns("problems: .*over the limit")),
        Case("JPEG header claiming 65000 x 65000", "load_photo", str(jpeg_header_only(root / "j.jpg", 65_000, 65_000)),
             Raises((PHOTO,), "MP")),
        Case("truncated PNG", "load_photo", str(_write(root / "t.png", png_noise(root / "n.png", 64).read_bytes()[:200])),
             Raises((PHOTO,), "corrupt or truncated")),
        Case("15 px image", "load_photo", str(png_noise(root / "p15.png", 15)), Raises((PHOTO,), "too small")),
        Case("not an image", "load_photo", str(_write(root / "x.png", b"hello" * 100)), Raises((PHOTO,), "not an image")),
    ]
    for side in (16, 17, 18, 19):
        cases.append(Case(f"{side} px image [preprocess]", "preprocess", str(png_noise(root / f"p{side}.png", side)),
                          Returns("aligned 0; problems: .*no face found")))
    cases.append(Case("control: 4000 x 3000 photo without a face [preprocess]", "preprocess",
                      str(png_grey(root / "wide.png", 4000, 3000)), Returns("aligned 0; problems: .*no face found")))
    return cases


def datasets(root: Path) -> list[Case]:
    """Dataset zips whose entries inflate to gigabytes, and images claiming huge sizes."""
    png = png_noise(root / "img.png", 8).read_bytes()
    cases = [
        Case("image entry inflating 1 MB to 1 GiB (the issue's)", "open_dataset",
             str(_dataset_zip(root / "a.zip", [zeros_bomb("00000.png", png, 1 << 30)])), Raises((DATASET,), "00000.png")),
        Case("dataset.json inflating to 1 GiB", "open_dataset",
             str(write_zip(root / "b.zip", [zeros_bomb("dataset.json", b"{}", 1 << 30), stored("00000.png", png)])),
             Raises((DATASET,), "dataset.json")),
        Case("image entry inflating to 100 MB (ratio ~1000, under the size limit)", "open_dataset",
             str(_dataset_zip(root / "c.zip", [zeros_bomb("00000.png", png, 100 << 20)])),
             Raises((DATASET,), "00000.png.*ratio")),
        Case("image header claiming 12000 x 12000", "open_dataset",
             str(_dataset_zip(root / "d.zip", [stored("00000.png", png_header_only(root / "h.png", 12_000, 12_000)
                                                      .read_bytes())])), Raises((DATASET,), "limit")),
        Case("image header claiming 20000 x 20000", "open_dataset",
             str(_dataset_zip(root / "e.zip", [stored("00000.png", png_header_only(root / "i.png", 20_000, 20_000)
                                                      .read_bytes())])), Raises((DATASET,), "00000.png")),
        Case("not a zip", "open_dataset", str(_write(root / "f.zip", b"PK" + bytes(100))), Raises((DATASET,), "zip")),
        Case("control: a valid one-image zip", "open_dataset",
             str(_dataset_zip(root / "ok.zip", [stored("00000.png", png)])), Returns("opened 2 entries")),
    ]
    return cases


NOT_REGULAR_ERRORS = {  # what each loader raises for a FIFO / device / socket, and for a folder
    "load_generator": (CHECKPOINT, FOLDER), "load_snapshot": (CHECKPOINT, FOLDER),
    "load_official": (CHECKPOINT, FOLDER), "read_ply": (PLY, FOLDER), "load_directions": (DIRECTIONS, FOLDER),
    "read_latent": (LATENT, FOLDER), "load_library": (LIBRARY, FOLDER), "load_photo": (PHOTO,),
    "open_dataset": (DATASET,),
}


def not_regular(root: Path) -> list[Case]:
    """FIFOs, folders, devices, sockets and links to them, given to every loader (a link to a regular file
    is the control that must load)."""
    fx = _official_fixture()
    controls = {
        "load_generator": (_tiny_model(root / "tiny.pkl"), "splathead", {}),
        "load_snapshot": (root / "tiny.pkl", "generator snapshot", {}),
        "load_official": (root / "official.pkl", "loaded", {}),
        "read_ply": (_small_ply(root / "scene.ply"), "20 Gaussians", {}),
        "load_directions": (_directions(root / "m.directions.npz", SHA), "2 directions", {"model_sha256": SHA}),
        "read_latent": (write_zip(root / "latent.npz", [npy_member("ws", np.zeros((4, 8), np.float32))]),
                        r"\[4, 8\]", {}),
        "load_library": (_library(root / "m.latents.npz", SHA), "1 saved", {}),
        "load_photo": (png_noise(root / "photo.png", 64), r"\[64, 64, 3\]", {}),
        "preprocess": (root / "photo.png", "no face found", {}),
        "open_dataset": (_dataset_zip(root / "data.zip", [stored("00000.png", png_noise(root / "i.png", 8)
                                                                 .read_bytes())]), "opened 2 entries", {}),
    }
    fx.write_official_pickle(root / "official.pkl", fx.SMALL, entries="G_ema")
    cases = []
    for action, (regular, ok, kwargs) in controls.items():
        for kind, path in special_files(root / action, regular).items():
            if kind == "link to a regular file":
                expect = Returns(ok)
            elif action == "open_dataset" and kind == "folder":  # a folder is a dataset layout: no dataset.json
                expect = Raises((DATASET,), "dataset.json")
            elif action == "preprocess":
                expect = Returns("aligned 0; problems: .*(not a regular file|folder)")
            else:
                expect = Raises(NOT_REGULAR_ERRORS[action], "regular file|folder|directory|Is a directory")
            cases.append(Case(f"{kind} [{action}]", action, path, expect, kwargs))
    # inside a folder dataset: a FIFO as an image, and as dataset.json
    for name, fifo in (("a FIFO as an image of a folder dataset", "00000.png"),
                       ("a FIFO as dataset.json of a folder dataset", "dataset.json")):
        folder = root / name.replace(" ", "_")
        folder.mkdir()
        if fifo != "dataset.json":
            (folder / "dataset.json").write_text(json.dumps({"labels": [["00000.png", _label()]]}))
        os.mkfifo(folder / fifo)
        cases.append(Case(name, "open_dataset", str(folder), Raises((DATASET,), "FIFO")))
    return cases


FAMILIES = {
    "pickle structure (nesting, sizes, memo, length claims)": pickle_structure,
    "generator config and weights (our format)": generator_config,
    "official-format claims (CGS-GAN pickles)": official_format,
    "3DGS .ply files": ply_files,
    "side-car files (directions, latents, saved latents)": side_cars,
    "photos (inversion input)": photos,
    "training dataset zips": datasets,
    "paths that are not regular files": not_regular,
}
