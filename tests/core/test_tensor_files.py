"""core/tensor_files.py and core/tensor_file_reader.py: safetensors + manifest, one file or parts with an index. Bit-exact round trips, the
part-size limit, atomic writes (a full disk keeps the old file), and headers that do not fit the file refused
before any tensor is read."""

from __future__ import annotations

import json
import os
import struct
import time

import pytest
import torch
from safetensors.torch import save_file

from core.atomic_file import stale_temporaries
from core.checkpoint import CorruptCheckpointError
from core.tensor_file_reader import open_tensor_file
from core.tensor_files import INDEX_SUFFIX, MANIFEST_KEY, index_path, orphan_parts, part_path, write_tensor_file


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().reshape(-1).view(torch.uint8)


def tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    f32 = torch.tensor([0.0, -0.0, 1.5, float("inf"), float("-inf"), float("nan"), 1e-45, 3.4e38])
    return {
        "G/f32": f32,
        "G/nan_payload": torch.tensor([0x7FC00001, -4096], dtype=torch.int32).view(torch.float32),
        "G/f64": torch.tensor([-0.0, float("nan"), 5e-324], dtype=torch.float64),
        "G/f16": torch.tensor([-0.0, 6e-8, 65504.0], dtype=torch.float16),
        "G/bf16": torch.tensor([-0.0, float("inf"), 3.0], dtype=torch.bfloat16),
        "G/i64": torch.tensor([-(2**63), 2**63 - 1], dtype=torch.int64),
        "G/i32": torch.tensor([-(2**31)], dtype=torch.int32),
        "G/i16": torch.tensor([7], dtype=torch.int16),
        "G/i8": torch.tensor([-128, 127], dtype=torch.int8),
        "G/u8": torch.arange(256, dtype=torch.uint8).reshape(16, 16),
        "G/bool": torch.tensor([[True, False], [False, True]]),
        "G/scalar": torch.tensor(3.25),
        "G/empty": torch.empty(0, 3),
        "G/transposed": torch.arange(12.0).reshape(3, 4).t(),
        "D/big": torch.randn(64, 300, generator=g),  # 76.8 kB: split over parts of 32 kB
    }


def assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b) or set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert torch.equal(bits(a[k]), bits(b[k])), k


def test_one_file_round_trip_is_bit_exact_and_standard(tmp_path):
    from safetensors import safe_open

    path = write_tensor_file(tmp_path / "x.safetensors", tensors(), {"hello": [1, 2.5, None]})
    assert path == tmp_path / "x.safetensors" and os.listdir(tmp_path) == ["x.safetensors"]
    tf = open_tensor_file(path)
    assert tf.manifest == {"hello": [1, 2.5, None]} and tf.parts == ()
    assert tf.tensors["D/big"].shape == (64, 300) and tf.tensors["G/bf16"].dtype == "BF16"
    assert_same(tf.read(), {k: v.contiguous() for k, v in tensors().items()})
    assert set(tf.read(["G/i8"])) == {"G/i8"}
    with safe_open(str(path), "pt") as f:  # any safetensors reader opens it
        assert json.loads(f.metadata()[MANIFEST_KEY]) == {"hello": [1, 2.5, None]}
        assert torch.equal(f.get_tensor("G/u8"), tensors()["G/u8"])


def test_sharded_parts_never_exceed_the_limit_and_round_trip(tmp_path):
    limit = 32 << 10
    path = write_tensor_file(tmp_path / "s.safetensors", tensors(), {"m": 1}, max_part_bytes=limit)
    assert path == index_path(tmp_path / "s.safetensors") and path.name == "s" + INDEX_SUFFIX
    tf = open_tensor_file(path)
    assert len(tf.parts) >= 3 and all(p.path.stat().st_size <= limit for p in tf.parts)
    assert [p.path.name for p in tf.parts] == [f"s-{i:05d}-of-{len(tf.parts):05d}.safetensors"
                                              for i in range(1, len(tf.parts) + 1)]
    assert len(tf.tensors["D/big"].pieces) >= 3  # larger than a part: chunked
    assert_same(tf.read(), {k: v.contiguous() for k, v in tensors().items()})
    index = json.loads(path.read_text())
    assert index["metadata"]["manifest"] == {"m": 1} and "D/big#0" in index["weight_map"]
    # Writing the same name again as one file removes the parts and the index.
    write_tensor_file(tmp_path / "s.safetensors", {"a": torch.ones(2)}, {"m": 2})
    assert os.listdir(tmp_path) == ["s.safetensors"]


def test_a_small_snapshot_stays_one_file_under_a_part_limit(tmp_path):
    path = write_tensor_file(tmp_path / "s.safetensors", {"a": torch.ones(10)}, {}, max_part_bytes=1 << 20)
    assert path.name == "s.safetensors" and os.listdir(tmp_path) == ["s.safetensors"]
    with pytest.raises(ValueError, match="at least"):
        write_tensor_file(tmp_path / "s.safetensors", {"a": torch.ones(10)}, {}, max_part_bytes=1000)


def test_full_disk_keeps_the_old_file_and_leaves_nothing(tmp_path, monkeypatch):
    import core.tensor_files as tfm

    path = write_tensor_file(tmp_path / "s.safetensors", {"a": torch.ones(3)}, {"v": 1})
    before = path.read_bytes()
    real = tfm._save
    calls = {"n": 0}

    def full(t, filename, metadata):
        calls["n"] += 1
        if calls["n"] == 2:  # the second part: the first one is already on disk as a temporary file
            raise OSError(28, os.strerror(28), filename)
        real(t, filename, metadata)

    monkeypatch.setattr(tfm, "_save", full)
    with pytest.raises(OSError) as info:
        write_tensor_file(tmp_path / "s.safetensors", tensors(), {"v": 2}, max_part_bytes=32 << 10)
    assert info.value.errno == 28
    calls["n"] = 1
    with pytest.raises(OSError, match="No space"):
        write_tensor_file(tmp_path / "s.safetensors", tensors(), {"v": 2})
    assert os.listdir(tmp_path) == ["s.safetensors"] and path.read_bytes() == before


def test_safetensors_io_errors_become_oserrors(tmp_path, monkeypatch):
    """The Rust writer reports a full disk as SafetensorError text; it is turned back into OSError(ENOSPC)."""
    import safetensors.torch

    import core.tensor_files as tfm
    from safetensors import SafetensorError

    def rust_full(tensors, filename, metadata=None):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", rust_full)
    with pytest.raises(OSError) as info:
        tfm.write_tensor_file(tmp_path / "s.safetensors", {"a": torch.ones(2)}, {})
    assert info.value.errno == 28 and info.value.filename == str(tmp_path / "s.safetensors")
    assert os.listdir(tmp_path) == []


def test_leftovers_of_a_killed_write_are_found(tmp_path):
    write_tensor_file(tmp_path / "a.safetensors", tensors(), {}, max_part_bytes=32 << 10)
    orphan = part_path(tmp_path / "b.safetensors", 1, 2)  # parts without an index: killed before the commit
    orphan.write_bytes(b"x")
    stale = tmp_path / ".b.safetensors.0123456789ab.tmp"
    stale.write_bytes(b"x")
    later = time.time() + 10
    assert orphan_parts(tmp_path, later) == [orphan]
    assert stale_temporaries(tmp_path, later) == [stale]
    assert orphan_parts(tmp_path, time.time() - 3600) == [] and stale_temporaries(tmp_path, time.time() - 3600) == []


# ---------------------------------------------------------------------------------------------- bad headers


def raw_file(header: dict, data: bytes = b"", length: int | None = None) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


GOOD_META = {"__metadata__": {MANIFEST_KEY: "{}"}}


@pytest.mark.parametrize(("header", "data", "length", "message"), [
    ({**GOOD_META, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, None, "cover 8 bytes"),
    ({**GOOD_META, "a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\0" * 8, None,
     "which needs"),
    ({**GOOD_META, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, None, "gaps or overlaps"),
    ({**GOOD_META, "a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8, None, "dtype 'C64'"),
    ({**GOOD_META, "a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b"", None, "non-negative"),
    ({**GOOD_META, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}, b"\0" * 4, None,
     "exactly dtype"),
    ({"__metadata__": {MANIFEST_KEY: 5}}, b"", None, "strings to strings"),
    ({"__metadata__": {"format": "pt"}}, b"", None, "without a splathead manifest"),
    ({"__metadata__": {MANIFEST_KEY: "[" * 100000}}, b"", None, "not valid JSON"),
    (GOOD_META, b"", 2**62, "claims"),
])
def test_headers_that_do_not_fit_the_file_are_refused(tmp_path, header, data, length, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw_file(header, data, length))
    with pytest.raises(CorruptCheckpointError, match=message):
        open_tensor_file(path)


def test_truncation_anywhere_is_refused(tmp_path):
    path = write_tensor_file(tmp_path / "x.safetensors", tensors(), {"a": 1})
    raw = path.read_bytes()
    for cut in (0, 4, 8, 20, len(raw) // 2, len(raw) - 1):
        (tmp_path / "cut.safetensors").write_bytes(raw[:cut])
        with pytest.raises(CorruptCheckpointError):
            open_tensor_file(tmp_path / "cut.safetensors")


def test_sharded_files_that_do_not_belong_together_are_refused(tmp_path):
    a = write_tensor_file(tmp_path / "a.safetensors", tensors(), {"v": 1}, max_part_bytes=32 << 10)
    tf = open_tensor_file(a)
    first = tf.parts[0].path
    original = first.read_bytes()
    # a part damaged in transit: caught by the size, or by the SHA-256 on read
    first.write_bytes(original[:-1])
    with pytest.raises(CorruptCheckpointError, match="index records"):
        open_tensor_file(a)
    damaged = bytearray(original)
    damaged[-1] ^= 1
    first.write_bytes(bytes(damaged))
    with pytest.raises(CorruptCheckpointError, match="SHA-256"):
        open_tensor_file(a).read()
    first.write_bytes(original)
    # a part of another write with the same name
    other = tmp_path / "other"
    other.mkdir()
    b = write_tensor_file(other / "a.safetensors", tensors(), {"v": 2}, max_part_bytes=32 << 10)
    if len(open_tensor_file(b).parts) == len(tf.parts):
        first.write_bytes(open_tensor_file(b).parts[0].path.read_bytes())
        with pytest.raises(CorruptCheckpointError, match="(another write|index records)"):
            open_tensor_file(a)
    first.write_bytes(original)
    # an index pointing outside its folder
    index = json.loads(a.read_text())
    index["metadata"]["parts"][0]["file"] = "../../etc/passwd"
    a.write_text(json.dumps(index))
    with pytest.raises(CorruptCheckpointError, match="expected"):
        open_tensor_file(a)
    # a missing part
    index["metadata"]["parts"][0]["file"] = first.name
    a.write_text(json.dumps(index))
    first.unlink()
    with pytest.raises(FileNotFoundError):
        open_tensor_file(a)


def test_not_regular_files_and_foreign_files(tmp_path):
    fifo = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(CorruptCheckpointError, match="not a regular file"):
        open_tensor_file(fifo)  # refused without opening (which would block)
    with pytest.raises(IsADirectoryError):
        open_tensor_file(tmp_path)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.ones(2)}, str(plain))  # someone else's safetensors file: named, not crashed on
    with pytest.raises(CorruptCheckpointError, match="without a splathead manifest"):
        open_tensor_file(plain)
    (tmp_path / "x.json").write_text('{"weight_map": {}}')
    with pytest.raises(CorruptCheckpointError, match="not a splathead index"):
        open_tensor_file(tmp_path / "x.json")
