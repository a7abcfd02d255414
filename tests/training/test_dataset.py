"""The training data loader (training/dataset.py): EG3D/CGS-GAN layout from a folder or a zip, x-flip with
mirrored labels, mask compositing, index lists, checks that name the bad file, and the shuffled stream.

Tiny images (8-12 px) written by the tests with PIL; labels from core.camera.orbit_cameras.
"""

from __future__ import annotations

import itertools
import json
import math
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.camera import Cameras, mirror_label, orbit_angles, orbit_cameras
from training.dataset import (
    DatasetError, DatasetOptions, ImageLabelDataset, composite, infinite_batches, rank_stream, sample_labels,
    stream_background,
)

N, SIZE = 5, 8
YAWS = [0.1 * (k + 1) for k in range(N)]  # distinct and positive: mirrored labels differ from all originals
GREY = (40, 90, 200)


def write_dataset(root: Path, n: int = N, size: int = SIZE, masks: bool = True, sub: str = "",
                  names: list[str] | None = None) -> dict:
    """Random RGB images, masks with exact 0 and 255 pixels, orbit labels; images under ``root/sub``."""
    rng = np.random.default_rng(1)
    names = names or [f"{k:05d}.png" for k in range(n)]
    labels = orbit_cameras(yaw=torch.tensor(YAWS[:n]), pitch=0.05).to_label()
    (root / sub).mkdir(parents=True, exist_ok=True)
    images, mask_arrays = {}, {}
    for k, name in enumerate(names):
        images[name] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        (root / sub / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[name]).save(root / sub / name)
        if masks:
            m = rng.integers(0, 256, (size, size), dtype=np.uint8)
            m[0, 0], m[0, 1] = 0, 255
            mask_arrays[name] = m
            (root / "mask" / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(m).save(root / "mask" / name)
    write_labels(root, [[name, labels[k].tolist()] for k, name in enumerate(names)])
    return {"names": names, "images": images, "masks": mask_arrays, "labels": labels}


def write_labels(root: Path, labels) -> None:
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))


def zip_tree(root: Path, out: Path, top: str = "") -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, top + p.relative_to(root).as_posix())
    return out


def open_ds(path, **kw) -> ImageLabelDataset:
    return ImageLabelDataset(DatasetOptions(str(path), **kw))


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "ds"
    info = write_dataset(root)
    return root, info


# ---------------------------------------------------------------------------------------------- reading

def test_folder_and_zip_give_identical_items(data, tmp_path, monkeypatch):
    root, info = data
    folder = open_ds(root)
    assert (len(folder), folder.resolution, folder.num_files, folder.has_masks) == (2 * N, SIZE, N, True)
    assert folder.names() == info["names"] * 2
    monkeypatch.chdir(tmp_path)
    zip_tree(root, tmp_path / "plain.zip")
    zips = [open_ds("plain.zip"), open_ds(zip_tree(root, tmp_path / "nested.zip", top="heads/"))]
    for ds in zips + [open_ds("ds")]:  # relative and absolute paths, zip at the top or under one folder
        assert len(ds) == len(folder) and ds.has_masks and ds.names() == folder.names()
        torch.testing.assert_close(ds.labels(), folder.labels(), rtol=0, atol=0)
        for i in range(len(ds)):
            for a, b in zip(ds.load(i, GREY), folder.load(i, GREY)):
                assert torch.equal(a, b)
    clone = pickle.loads(pickle.dumps(zips[1]))  # what a spawned DataLoader worker gets: reopens the zip
    assert torch.equal(clone.load(3, GREY)[0], folder.load(3, GREY)[0])


def test_items_are_the_files_composited_on_the_background(data):
    root, info = data
    ds = open_ds(root, xflip=False)
    for i, name in enumerate(info["names"]):
        image, label = ds.load(i, GREY)
        img, m = info["images"][name].astype(np.float64), info["masks"][name][..., None] / 255.0
        expected = np.floor(img * m + np.array(GREY) * (1 - m) + 0.5).astype(np.uint8)
        assert image.dtype == torch.uint8 and image.shape == (3, SIZE, SIZE)
        assert np.abs(image.permute(1, 2, 0).numpy().astype(int) - expected).max() <= 1
        assert tuple(image[:, 0, 0].tolist()) == GREY  # mask 0: the background exactly
        assert torch.equal(image[:, 0, 1], torch.from_numpy(info["images"][name][0, 1]))  # mask 255: the image
        assert label.dtype == torch.float32 and torch.equal(label, info["labels"][i])
    white = open_ds(root, random_background=False)
    assert white[0][0][:, 0, 0].tolist() == [255, 255, 255]
    raw = open_ds(root, masks="no")
    assert not raw.has_masks and np.array_equal(raw[0][0].permute(1, 2, 0).numpy(), info["images"]["00000.png"])
    assert np.array_equal(composite(np.full((1, 2, 3), 7, np.uint8), np.array([[0, 255]], np.uint8), (1, 2, 3)),
                          [[[1, 2, 3], [7, 7, 7]]])


def test_xflip_gives_the_flipped_image_and_the_mirrored_label(data):
    root, _ = data
    ds = open_ds(root)
    labels = ds.labels()
    for i in range(N):
        (image, label), (flipped, mirrored) = ds.load(i, GREY), ds.load(i + N, GREY)
        assert torch.equal(flipped, image.flip(-1))
        assert torch.equal(mirrored, labels[i + N]) and torch.allclose(mirrored, mirror_label(label))
        yaw, pitch, _ = orbit_angles(Cameras.from_label(mirrored))
        assert math.isclose(float(yaw), -YAWS[i], abs_tol=1e-5) and math.isclose(float(pitch), 0.05, abs_tol=1e-5)
    assert len(open_ds(root, xflip=False)) == N


def test_random_background_is_reproducible_by_seed_and_varies_across_loads(data):
    root, _ = data

    def corners(seed, loads=6):
        ds = open_ds(root, seed=seed)
        return [tuple(ds[0][0][:, 0, 0].tolist()) for _ in range(loads)]

    first = corners(0)
    assert first == corners(0) and first != corners(1)
    assert len(set(first)) == len(first)
    assert all(0 <= c <= 254 for colour in first for c in colour)


def test_image_modes_are_read_as_rgb(tmp_path):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    files = {"grey.png": Image.fromarray(rgb[..., 0]), "rgba.png": Image.fromarray(np.dstack([rgb, rgb[..., :1]])),
             "palette.png": Image.fromarray(rgb).convert("P"), "photo.jpg": Image.fromarray(rgb),
             "photo.webp": Image.fromarray(rgb)}
    for name, im in files.items():
        im.save(tmp_path / name, **({"lossless": True} if name.endswith("webp") else {}))
    label = orbit_cameras(0.2).to_label().tolist()
    write_labels(tmp_path, [[name, label] for name in files])
    with pytest.warns(UserWarning, match="alpha channel; it is ignored"):
        ds = open_ds(tmp_path, xflip=False)
    assert not ds.has_masks
    for i, name in enumerate(ds.names()):
        got = ds[i][0].permute(1, 2, 0).numpy()
        assert np.array_equal(got, np.asarray(Image.open(tmp_path / name).convert("RGB"))), name
    assert np.array_equal(ds[ds.names().index("rgba.png")][0].permute(1, 2, 0).numpy(), rgb)
    assert np.array_equal(ds[ds.names().index("photo.webp")][0].permute(1, 2, 0).numpy(), rgb)


def test_index_list_repeats_entries(data, tmp_path, monkeypatch):
    root, info = data
    (root / "rebalance.json").write_text(json.dumps([3, 3, 0, "00004.png", 3]))
    ds = open_ds(root, index_list="rebalance.json")  # relative to the dataset
    order = ["00003.png", "00003.png", "00000.png", "00004.png", "00003.png"]
    assert len(ds) == 10 and ds.names() == order * 2
    expected = info["labels"][[3, 3, 0, 4, 3]]
    torch.testing.assert_close(ds.labels(), torch.cat([expected, mirror_label(expected)]))
    assert torch.equal(ds.load(1, GREY)[0], ds.load(0, GREY)[0])
    monkeypatch.chdir(tmp_path)
    Path("custom_dist").mkdir()
    Path("custom_dist/pose.json").write_text("[1, 2]")  # relative to the cwd (the official custom_dist/)
    assert open_ds(root, index_list="custom_dist/pose.json").names() == ["00001.png", "00002.png"] * 2
    assert len(open_ds(root, index_list=str(tmp_path / "custom_dist/pose.json"), xflip=False)) == 2
    zipped = open_ds(zip_tree(root, tmp_path / "ds.zip"), index_list="rebalance.json")  # inside the zip
    assert zipped.names() == ds.names()
    small = open_ds(root, index_list="rebalance.json", max_images=3, xflip=False)
    assert len(small) == 3 and set(small.names()) <= set(order)


def test_layouts_images_subfolder_and_cgsgan_parent(tmp_path):
    a = write_dataset(tmp_path / "a", sub="images")  # root/images + root/mask (our synthetic writer)
    ds = open_ds(tmp_path / "a")
    assert ds.has_masks and ds.names()[:N] == a["names"]
    b = write_dataset(tmp_path / "b", sub="512")  # --data FFHQC/512 with dataset.json and mask/ beside it
    ds = open_ds(tmp_path / "b" / "512")
    assert ds.has_masks and torch.equal(ds.load(2, GREY)[0], open_ds(tmp_path / "a").load(2, GREY)[0])
    c = write_dataset(tmp_path / "c", names=["00000/img00000000.png", "00000/img00000001.png"], masks=False)
    (tmp_path / "c" / "idx.json").write_text("[1, 1]")  # EG3D names: index i = the stem's number
    assert open_ds(tmp_path / "c", index_list="idx.json").names() == [c["names"][1]] * 4


# ---------------------------------------------------------------------------------------------- bad datasets

def _label(k=0):
    return orbit_cameras(YAWS[k]).to_label().tolist()


def _break(case: str, root: Path) -> tuple[dict, str]:
    """Damage the dataset at ``root``; return the options and the file name the error must mention."""
    labels = json.loads((root / "dataset.json").read_text())["labels"]
    if case == "no dataset.json":
        (root / "dataset.json").unlink()
        return {}, "dataset.json"
    if case == "no labels":
        (root / "dataset.json").write_text('{"images": []}')
        return {}, "dataset.json"
    if case == "empty":
        write_labels(root, [])
        return {}, "dataset.json"
    if case == "not json":
        (root / "dataset.json").write_text('{"labels": [')
        return {}, "dataset.json"
    if case == "short label":
        labels[2][1] = labels[2][1][:24]
    elif case == "nan label":
        labels[2][1][5] = float("nan")
    elif case == "not rigid":
        labels[2][1][0] *= 2.0
    elif case == "not a number":
        labels[2][1][0] = "1.0"
    if case in ("short label", "nan label", "not rigid", "not a number"):
        write_labels(root, labels)
        return {}, "00002.png"  # and dataset.json, checked below
    if case == "missing image":
        (root / "00003.png").unlink()
        return {}, "00003.png"
    if case == "unlabelled image":
        Image.new("RGB", (SIZE, SIZE)).save(root / "stray.png")
        return {}, "stray.png"
    if case == "corrupt image":
        (root / "00001.png").write_bytes(b"\x89PNG not really")
        return {}, "00001.png"
    if case == "mixed sizes":
        Image.new("RGB", (SIZE * 2, SIZE * 2)).save(root / "00003.png")
        return {}, "00003.png"
    if case == "not square":
        Image.new("RGB", (SIZE, SIZE + 2)).save(root / "00003.png")
        return {}, "00003.png"
    if case == "16-bit image":
        Image.fromarray(np.zeros((SIZE, SIZE), np.uint16)).save(root / "00003.png")
        return {}, "00003.png"
    if case == "wrong resolution":
        return {"resolution": 16}, "00000.png"
    if case == "mask missing":
        (root / "mask" / "00004.png").unlink()
        return {"masks": "yes"}, "00004.png"
    if case == "no mask folder":
        for p in (root / "mask").iterdir():
            p.unlink()
        (root / "mask").rmdir()
        return {"masks": "yes"}, "mask"
    if case == "mask size":
        Image.new("L", (SIZE + 1, SIZE + 1)).save(root / "mask" / "00004.png")
        return {}, "00004.png"
    if case == "index list unknown image":
        (root / "idx.json").write_text("[0, 1, 99]")
        return {"index_list": "idx.json"}, "idx.json"
    if case == "index list missing":
        return {"index_list": "nowhere.json"}, "nowhere.json"
    if case == "path missing":
        return {"path": str(root / "nope")}, "nope"
    raise AssertionError(case)


BAD_CASES = ["no dataset.json", "no labels", "empty", "not json", "short label", "nan label", "not rigid",
             "not a number", "missing image", "unlabelled image", "corrupt image", "mixed sizes", "not square",
             "16-bit image", "wrong resolution", "mask missing", "no mask folder", "mask size",
             "index list unknown image", "index list missing", "path missing"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_datasets_fail_at_start_naming_the_file(data, case):
    root, _ = data
    options, name = _break(case, root)
    with pytest.raises(DatasetError) as err:
        ImageLabelDataset(DatasetOptions(**{"path": str(root), **options}))
    assert name in str(err.value), str(err.value)
    if "label" in case or "rigid" in case or "number" in case:
        assert "dataset.json" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_partial_masks_are_ignored_with_a_warning_in_auto_mode(data):
    root, _ = data
    (root / "mask" / "00004.png").unlink()
    with pytest.warns(UserWarning, match="00004.png"):
        assert not open_ds(root).has_masks


def test_truncated_image_fails_on_load_naming_the_file(data):
    root, _ = data
    png = (root / "00002.png").read_bytes()
    (root / "00002.png").write_bytes(png[: len(png) // 2])  # header intact: passes the start-up check
    ds = open_ds(root)
    with pytest.raises(DatasetError, match="00002.png"):
        ds[2]


def test_bad_zip_names_the_file(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 nonsense")
    with pytest.raises(DatasetError, match="broken.zip"):
        open_ds(tmp_path / "broken.zip")
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as zf:
        zf.writestr("a/x.png", b""), zf.writestr("b/dataset.json", "{}")
    with pytest.raises(DatasetError, match="two.zip: no dataset.json"):
        open_ds(tmp_path / "two.zip")


# ---------------------------------------------------------------------------------------------- streams

def take(stream, k):
    return list(itertools.islice(stream, k))


def test_rank_streams_are_disjoint_and_cover_each_epoch():
    n, world = 11, 3
    for epoch in range(2):
        seen = []
        for rank in range(world):
            per_rank = len(range(rank, n, world))
            stream = rank_stream(n, rank=rank, world_size=world, seed=5, start_index=epoch * per_rank)
            items = take(stream, per_rank)
            assert all(epoch * n <= pos < (epoch + 1) * n for _, pos in items)
            seen += [i for i, _ in items]
        assert sorted(seen) == list(range(n))
    first, second = take(rank_stream(n, seed=5), n), take(rank_stream(n, seed=5, start_index=n), n)
    assert [i for i, _ in first] != [i for i, _ in second]  # a new permutation per epoch
    with pytest.raises(ValueError):
        next(rank_stream(2, rank=0, world_size=3))


def test_infinite_batches_are_deterministic_disjoint_and_resume_exactly(data):
    root, _ = data
    ds = open_ds(root)
    label_ids = {tuple(row.tolist()): k for k, row in enumerate(ds.labels())}  # every entry's label is unique

    def stream(**kw):
        return infinite_batches(ds, 3, seed=7, **kw)

    run = take(stream(), 5)  # 15 samples: crosses the epoch end (10)
    again = take(stream(), 5)
    for (a, la), (b, lb) in zip(run, again):
        assert torch.equal(a, b) and torch.equal(la, lb)
    images, labels = torch.cat([b[0] for b in run]), torch.cat([b[1] for b in run])
    assert images.shape == (15, 3, SIZE, SIZE) and images.dtype == torch.uint8 and labels.shape == (15, 25)
    ids = [label_ids[tuple(row.tolist())] for row in labels]
    assert sorted(ids[:10]) == list(range(10))  # the first epoch is a permutation
    resumed = take(stream(start_index=7), 2)  # not batch-aligned: samples 7..12
    assert torch.equal(torch.cat([b[0] for b in resumed]), images[7:13])
    assert torch.equal(torch.cat([b[1] for b in resumed]), labels[7:13])
    ranks = [torch.cat([b[1] for b in take(stream(rank=r, world_size=2), 5)])[:5] for r in range(2)]
    epoch_ids = [label_ids[tuple(row.tolist())] for row in torch.cat(ranks)]
    assert sorted(epoch_ids) == list(range(10))  # disjoint halves of epoch 0
    # Masked pixel (0, 0) shows the background (0, W-1 once flipped): the colour of the stream position.
    corners = [img[:, 0, 0] if k < N else img[:, 0, -1] for img, k in zip(images, ids)]
    assert [tuple(c.tolist()) for c in corners] == [stream_background(7, j) for j in range(15)]
    assert len({tuple(c.tolist()) for c in corners}) > 10


def test_infinite_batches_with_a_worker_equal_the_in_process_stream(tmp_path, data):
    root, _ = data
    ds = open_ds(zip_tree(root, tmp_path / "w.zip"))
    ds.load(0, GREY)  # the parent has an open zip handle: the worker must not share it
    inline = take(infinite_batches(ds, 4, seed=1), 3)
    worker = take(infinite_batches(ds, 4, seed=1, num_workers=1), 3)
    for (a, la), (b, lb) in zip(inline, worker):
        assert torch.equal(a, b) and torch.equal(la, lb)


def test_sample_labels_draws_entries_reproducibly(data):
    root, _ = data
    ds = open_ds(root)
    a = sample_labels(ds, 64, torch.Generator().manual_seed(3))
    b = sample_labels(ds, 64, torch.Generator().manual_seed(3))
    assert a.shape == (64, 25) and torch.equal(a, b)
    rows = {tuple(r.tolist()) for r in ds.labels()}
    assert all(tuple(r.tolist()) in rows for r in a)
    assert any(float(orbit_angles(Cameras.from_label(r))[0]) < 0 for r in a)  # flipped poses are drawn too


# ---------------------------------------------------------------------------------------------- synthetic heads

def test_a_synthetic_heads_dataset_loads(tmp_path):
    from training.synthetic_heads.config import DatasetConfig
    from training.synthetic_heads.dataset import write_dataset as write_heads

    out = tmp_path / "heads"
    write_heads(DatasetConfig(out=out, num_identities=2, views_per_identity=2, resolution=32, workers=1),
                progress=False)
    ds = open_ds(out)
    assert (ds.resolution, ds.num_files, len(ds), ds.has_masks) == (32, 4, 8, True)
    image, label = ds.load(0, (0, 0, 0))
    assert image.shape == (3, 32, 32) and image.max() > 0 and Cameras.from_label(label) is not None
    via_images = open_ds(out / "images")  # CGS-GAN style: the image folder, masks beside it
    assert via_images.has_masks and torch.equal(via_images.load(5, GREY)[0], ds.load(5, GREY)[0])
    zipped = open_ds(zip_tree(out, tmp_path / "heads.zip"))
    assert torch.equal(zipped.load(5, GREY)[0], ds.load(5, GREY)[0])
    assert ds.describe().count("4 images") == 1


def test_zip_claims_and_special_files_are_refused_when_opened(tmp_path):
    """Issue 19: entries are checked by their declared size and ratio before anything is inflated; a FIFO in
    a folder dataset is refused, never opened."""
    import os
    import sys
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "security"))
    from hostile_files import json_member, png_header_only, stored, write_zip, zeros_bomb

    label = orbit_cameras(0.2).to_label().tolist()
    png = (tmp_path / "i.png")
    Image.new("RGB", (8, 8)).save(png)
    index = json_member("dataset.json", {"labels": [["00000.png", label]]})
    for name, members, match in (
            ("bomb.zip", [index, zeros_bomb("00000.png", png.read_bytes(), 1 << 30)],
             "entry '00000.png' inflates to 1,073,7"),
            ("ratio.zip", [index, zeros_bomb("00000.png", png.read_bytes(), 20 << 20)], r"'00000.png' inflates .* \(ratio 1,0"),
            ("huge.zip", [index, stored("00000.png", png_header_only(tmp_path / "h.png", 8192, 8192).read_bytes())],
             "8192x8192, above the limit of 4096")):
        t = time.perf_counter()
        with pytest.raises(DatasetError, match=match):
            open_ds(write_zip(tmp_path / name, members))
        assert time.perf_counter() - t < 2
    folder = tmp_path / "fifo_ds"
    folder.mkdir()
    write_labels(folder, [["00000.png", label]])
    os.mkfifo(folder / "00000.png")
    with pytest.raises(DatasetError, match="00000.png.*FIFO"):
        open_ds(folder)
