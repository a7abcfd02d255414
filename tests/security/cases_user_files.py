"""Case families for the files users pick or download besides generators: .ply scenes, side-car files,
photos, dataset zips, and paths that are not regular files (given to every loader). Each builder writes its
files under ``root``."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import torch

from cases_model_files import official_fixture, tiny_model
from hostile_case import (
    CHECKPOINT, DATASET, DIRECTIONS, FOLDER, LATENT, LIBRARY, MISMATCH, PHOTO, PLY, Case, Raises, Returns,
)
from hostile_files import (
    json_member, jpeg_header_only, npy_bomb, npy_header, npy_member, png_grey, png_header_only, png_noise,
    special_files, stored, write_zip, zeros_bomb,
)


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


def _library_header(sha: str, entries: list) -> np.ndarray:
    return np.array(json.dumps({"format": "splathead-latents", "format_version": 1, "model_sha256": sha,
                                "entries": entries}))


def _label() -> list[float]:
    from core.camera import orbit_cameras

    return orbit_cameras(torch.tensor(0.1), pitch=0.05).to_label().tolist()


def _dataset_zip(path: Path, members: list) -> Path:
    return write_zip(path, [json_member("dataset.json", {"labels": [["00000.png", _label()]]})] + members)


SHA = "a" * 64
OTHER_SHA = "b" * 64


def refused(name: str, action: str, path: str | Path, cls: str, pattern: str = "", **kwargs) -> Case:
    return Case(name, action, str(path), Raises((cls,), pattern), kwargs)


def loads(name: str, action: str, path: str | Path, pattern: str, **kwargs) -> Case:
    return Case(name, action, str(path), Returns(pattern), kwargs)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def ply_files(root: Path) -> list[Case]:
    """ASCII and binary .ply files with absurd tokens, lines and counts."""
    big = b" ".join([b"1" * 10_000] + [b"0.5"] * (len(PLY_NAMES) - 1))
    long_value = b" ".join([b"0." + b"1" * 198] + [b"0"] * 13)
    line = r"line \d+"
    return [
        refused("20,000 rows, one 10 kB digit string (the issue's 690 KB file)", "read_ply",
                _ascii_ply(root / "a.ply", 20_000, big_row=5, big=big), PLY, line),
        refused("a 30 kB token", "read_ply", _ascii_ply(root / "b.ply", 10, big_row=2, big=b"9" * 30_000),
                PLY, line),
        refused("a 200-character value in a normal line", "read_ply",
                _ascii_ply(root / "c.ply", 10, big_row=3, big=long_value), PLY, line + ".*characters"),
        refused("a 4 MB line without a newline", "read_ply",
                _ascii_ply(root / "d.ply", 3, big_row=2, big=b"7 " * 2_000_000), PLY, line),
        refused("ascii header declaring 10^8 vertices", "read_ply", _ascii_ply(root / "e.ply", 5, declared=10**8),
                PLY, "truncated"),
        refused("binary header declaring 10^12 vertices", "read_ply",
                _ascii_ply(root / "f.ply", 0, fmt="binary_little_endian", declared=10**12), PLY, "truncated"),
        refused("a row of 10^5 values", "read_ply",
                _ascii_ply(root / "g.ply", 3, big_row=1, big=b" ".join([b"1"] * 100_000)), PLY, line),
        refused("no end_header within 2 MB", "read_ply",
                _write(root / "h.ply", b"ply\nformat ascii 1.0\n" + b"comment x\n" * 200_000), PLY, "end_header"),
        loads("control: a valid ascii file", "read_ply", _ascii_ply(root / "ok.ply", 100), "100"),
    ]


def side_cars(root: Path) -> list[Case]:
    """Directions, single latents and saved-latent libraries whose arrays claim gigabytes."""
    def z(name: str, members: list, **kw) -> Path:
        return write_zip(root / name, members, **kw)

    header = npy_member("header", np.array(_directions_header(SHA)))
    vec_bomb = npy_bomb("vectors", (20_000, 20_000))  # 3.2 GB declared, ~3 MB on disk
    big_vectors = npy_member("vectors", np.ones((2000, 1000)))  # 16 MB, stored: no zip-level refusal
    good = [npy_member("w_mean", np.zeros(8)), npy_member("w_cov", np.eye(8))]
    ws_bomb = npy_bomb("ws", (20_000, 20_000), "<f4")
    one_entry, with_thumb = _library_header(SHA, [_entry(False)]), _library_header(SHA, [_entry(True)])
    d, lat, lib = "load_directions", "read_latent", "load_library"
    return [
        refused("directions: 3.2 GB vectors, other model", d, z("d1.npz", [header, vec_bomb, *good]),
                DIRECTIONS, "inflates", model_sha256=OTHER_SHA),
        refused("directions: 3.2 GB vectors, this model", d, z("d2.npz", [header, vec_bomb, *good]),
                DIRECTIONS, "inflates", model_sha256=SHA),
        refused("directions: 16 MB stored vectors, other model", d, z("d1b.npz", [header, big_vectors, *good]),
                MISMATCH, "another model", model_sha256=OTHER_SHA),
        refused("directions: 16 MB stored vectors, wrong shape", d, z("d1c.npz", [header, big_vectors, *good]),
                DIRECTIONS, "vectors", model_sha256=SHA),
        refused("directions: 400 MB header text", d,
                z("d3.npz", [zeros_bomb("header.npy", npy_header((), "<U100000000"), 400_000_000)]),
                DIRECTIONS, "header"),
        refused("directions: w_dim 10^6", d,
                z("d4.npz", [npy_member("header", np.array(_directions_header(SHA, w_dim=10**6))),
                             npy_member("vectors", np.zeros((2, 8))), *good]), DIRECTIONS, "w_dim"),
        refused("directions: an extra 1 GiB member", d,
                z("d5.npz", [header, npy_member("vectors", np.zeros((2, 8))), *good, npy_bomb("extra", (1 << 27,))]),
                DIRECTIONS, "inflates"),
        refused("directions: header claims more than the member holds", d,
                z("d6.npz", [header, stored("vectors.npy", npy_header((10**5, 10**5), "<f8") + bytes(64)), *good]),
                DIRECTIONS, "declares"),
        refused("directions: 65,535 members claimed", d, z("d7.npz", [header], claimed_entries=65_535),
                DIRECTIONS, "members"),
        refused("directions: object array", d, z("d8.npz", [header, stored("vectors.npy", _object_npy()), *good]),
                DIRECTIONS, "dtype"),
        loads("control: a valid directions file", d, _directions(root / "ok.npz", SHA), "2 directions",
              model_sha256=SHA),
        refused("latent: 20000 x 20000 (the issue's 1.5 MB file)", lat, z("l1.npz", [ws_bomb]), LATENT, "inflates"),
        refused("latent: 2000 x 2000 stored (16 MB)", lat,
                z("l1b.npz", [npy_member("ws", np.ones((2000, 2000), np.float32))]), LATENT, "num_ws"),
        refused("latent: [1, 10^9] claimed, 64 bytes held", lat,
                z("l2.npz", [stored("ws.npy", npy_header((1, 10**9), "<f4") + bytes(64))]), LATENT, "declares"),
        refused("latent: integers", lat, z("l3.npz", [npy_member("ws", np.zeros((4, 8), np.int64))]),
                LATENT, "float"),
        refused("latent: for another model", lat, z("l4.npz", [npy_member("ws", np.zeros((4, 8), np.float32))]),
                LATENT, "does not fit", expected=(14, 512)),
        loads("control: a valid latent", lat, z("l5.npz", [npy_member("ws", np.zeros((1, 4, 8), np.float32))]),
              r"\[4, 8\]"),
        refused("library: 1.6 GB base latent", lib,
                z("s1.npz", [npy_member("header", one_entry), npy_bomb("base_0", (20_000, 20_000), "<f4")]),
                LIBRARY, "base_0"),
        refused("library: 3.9 GB thumbnail", lib,
                z("s2.npz", [npy_member("header", with_thumb), npy_member("base_0", np.zeros((4, 8), np.float32)),
                             npy_bomb("thumb_0", (36_000, 36_000, 3), "|u1")]), LIBRARY, "thumb_0"),
        refused("library: 10^6 entries", lib,
                z("s3.npz", [npy_member("header", _library_header(SHA, [_entry(False)] * 10**6))]),
                LIBRARY, "header"),
        refused("library: another model, bombs inside", lib,
                z("s4.npz", [npy_member("header", with_thumb), npy_bomb("base_0", (20_000, 20_000), "<f4")]),
                LIBRARY, "inflates", model_sha256=OTHER_SHA),
        refused("library: another model, 16 MB stored base", lib,
                z("s5.npz", [npy_member("header", one_entry), npy_member("base_0", np.ones((2000, 2000), "<f4"))]),
                LIBRARY, "another model", model_sha256=OTHER_SHA),
        loads("control: a valid library", lib, _library(root / "ok.latents.npz", SHA), "1 saved", model_sha256=SHA),
    ]


def _entry(thumb: bool) -> dict:
    return {"name": "x", "values": {}, "thumbnail": thumb}


def _object_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([None, 1], dtype=object), allow_pickle=True)
    return buf.getvalue()


def photos(root: Path) -> list[Case]:
    """Decompression bombs, huge valid photos, tiny and broken images."""
    bomb = png_header_only(root / "bomb.png", 20_000, 20_000)
    big = png_grey(root / "big.png", 12_000, 12_000)
    no_face = "aligned 0; problems: .*no face found"
    cases = [
        refused("69-byte PNG claiming 20000 x 20000", "load_photo", bomb, PHOTO, "MP"),
        loads("69-byte PNG claiming 20000 x 20000 [preprocess]", "preprocess", bomb, "problems: .*MP"),
        refused("valid 12000 x 12000 PNG", "load_photo", big, PHOTO, "over the limit"),
        loads("valid 12000 x 12000 PNG [preprocess]", "preprocess", big, "problems: .*over the limit"),
        refused("JPEG header claiming 65000 x 65000", "load_photo",
                jpeg_header_only(root / "j.jpg", 65_000, 65_000), PHOTO, "MP"),
        refused("truncated PNG", "load_photo",
                _write(root / "t.png", png_noise(root / "n.png", 64).read_bytes()[:200]), PHOTO, "truncated"),
        refused("15 px image", "load_photo", png_noise(root / "p15.png", 15), PHOTO, "too small"),
        refused("not an image", "load_photo", _write(root / "x.png", b"hello" * 100), PHOTO, "not an image"),
    ]
    cases += [loads(f"{side} px image [preprocess]", "preprocess", png_noise(root / f"p{side}.png", side), no_face)
              for side in (16, 17, 18, 19)]
    cases.append(loads("control: 4000 x 3000 photo without a face [preprocess]", "preprocess",
                       png_grey(root / "wide.png", 4000, 3000), no_face))
    return cases


def datasets(root: Path) -> list[Case]:
    """Dataset zips whose entries inflate to gigabytes, and images claiming huge sizes."""
    png = png_noise(root / "img.png", 8).read_bytes()

    def header_only(name: str, side: int) -> list:
        return [stored("00000.png", png_header_only(root / name, side, side).read_bytes())]

    o = "open_dataset"
    return [
        refused("image entry inflating 1 MB to 1 GiB (the issue's)", o,
                _dataset_zip(root / "a.zip", [zeros_bomb("00000.png", png, 1 << 30)]), DATASET, "00000.png"),
        refused("dataset.json inflating to 1 GiB", o,
                write_zip(root / "b.zip", [zeros_bomb("dataset.json", b"{}", 1 << 30), stored("00000.png", png)]),
                DATASET, "dataset.json"),
        refused("image entry inflating to 100 MB (ratio ~1000, under the size limit)", o,
                _dataset_zip(root / "c.zip", [zeros_bomb("00000.png", png, 100 << 20)]), DATASET, "00000.png.*ratio"),
        refused("image header claiming 12000 x 12000", o, _dataset_zip(root / "d.zip", header_only("h.png", 12_000)),
                DATASET, "limit"),
        refused("image header claiming 20000 x 20000", o, _dataset_zip(root / "e.zip", header_only("i.png", 20_000)),
                DATASET, "00000.png"),
        refused("not a zip", o, _write(root / "f.zip", b"PK" + bytes(100)), DATASET, "zip"),
        loads("control: a valid one-image zip", o, _dataset_zip(root / "ok.zip", [stored("00000.png", png)]),
              "opened 2 entries"),
    ]


NOT_REGULAR_ERRORS = {  # what each loader raises for a FIFO / device / socket, and for a folder
    "load_generator": (CHECKPOINT, FOLDER), "load_snapshot": (CHECKPOINT, FOLDER),
    "load_official": (CHECKPOINT, FOLDER), "read_ply": (PLY, FOLDER), "load_directions": (DIRECTIONS, FOLDER),
    "read_latent": (LATENT, FOLDER), "load_library": (LIBRARY, FOLDER), "load_photo": (PHOTO,),
    "open_dataset": (DATASET,),
}


def not_regular(root: Path) -> list[Case]:
    """FIFOs, folders, devices, sockets and links to them, given to every loader (a link to a regular file
    is the control that must load)."""
    fx = official_fixture()
    fx.write_official_pickle(root / "official.pkl", fx.SMALL, entries="G_ema")
    image = stored("00000.png", png_noise(root / "i.png", 8).read_bytes())
    controls = {  # action: (a regular file it loads, what it then returns, keyword arguments)
        "load_generator": (tiny_model(root / "tiny.pkl"), "splathead", {}),
        "load_snapshot": (root / "tiny.pkl", "generator snapshot", {}),
        "load_official": (root / "official.pkl", "loaded", {}),
        "read_ply": (_small_ply(root / "scene.ply"), "20 Gaussians", {}),
        "load_directions": (_directions(root / "m.directions.npz", SHA), "2 directions", {"model_sha256": SHA}),
        "read_latent": (write_zip(root / "l.npz", [npy_member("ws", np.zeros((4, 8), np.float32))]), "4, 8", {}),
        "load_library": (_library(root / "m.latents.npz", SHA), "1 saved", {}),
        "load_photo": (png_noise(root / "photo.png", 64), r"\[64, 64, 3\]", {}),
        "preprocess": (root / "photo.png", "no face found", {}),
        "open_dataset": (_dataset_zip(root / "data.zip", [image]), "opened 2 entries", {}),
    }
    cases = []
    for action, (regular, ok, kwargs) in controls.items():
        for kind, path in special_files(root / action, regular).items():
            if kind == "link to a regular file":
                expect = Returns(ok)
            elif action == "open_dataset" and kind == "folder":  # a dataset layout without dataset.json
                expect = Raises((DATASET,), "dataset.json")
            elif action == "preprocess":
                expect = Returns("aligned 0; problems: .*(not a regular file|folder)")
            else:
                expect = Raises(NOT_REGULAR_ERRORS[action], "regular file|folder|directory|Is a directory")
            cases.append(Case(f"{kind} [{action}]", action, path, expect, kwargs))
    for name, fifo in (("a FIFO as an image of a folder dataset", "00000.png"),
                       ("a FIFO as dataset.json of a folder dataset", "dataset.json")):
        folder = root / name.replace(" ", "_")
        folder.mkdir()
        if fifo != "dataset.json":
            (folder / "dataset.json").write_text(json.dumps({"labels": [["00000.png", _label()]]}))
        os.mkfifo(folder / fifo)
        cases.append(refused(name, "open_dataset", folder, DATASET, "FIFO"))
    return cases
