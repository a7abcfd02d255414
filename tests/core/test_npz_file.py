"""core.npz_file and core.zip_limits: headers and sizes are read before any array; what np.savez writes reads
back exactly; claims beyond the bytes, bombs and odd members are refused."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "security"))

from hostile_files import npy_bomb, npy_header, npy_member, stored, write_zip  # noqa: E402

from core.npz_file import NpzReader  # noqa: E402
from core.zip_limits import ZipLimits, zip_entry_count, zip_problems  # noqa: E402


class Refused(ValueError):
    pass


def read_all(path) -> dict:
    with NpzReader(path, error=Refused) as z:
        return {k: z.read(k) for k in z.arrays}


@pytest.mark.parametrize("compressed", [False, True])
def test_savez_files_read_back_exactly(tmp_path, compressed):
    arrays = {"a": np.arange(12.0).reshape(3, 4), "f": np.asfortranarray(np.arange(6).reshape(2, 3)),
              "t": np.array('{"json": 1}'), "u": np.zeros((0, 5), np.uint8), "b": np.array([True, False])}
    (np.savez_compressed if compressed else np.savez)(tmp_path / "x.npz", **arrays)
    with NpzReader(tmp_path / "x.npz", error=Refused) as z:
        assert z.arrays["a"].shape == (3, 4) and z.arrays["f"].fortran_order
        back = {k: z.read(k) for k in z.arrays}
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k], v)
        assert back[k].dtype == v.dtype and back[k].flags.writeable


def test_claims_are_refused_before_reading(tmp_path):
    with pytest.raises(Refused, match="declares .* but the member holds 64 bytes"):
        read_all(write_zip(tmp_path / "a.npz", [stored("x.npy", npy_header((10**6,), "<f8") + bytes(64))]))
    with pytest.raises(Refused, match="inflates to 800,000,128 bytes"):  # an entry above the size limit
        read_all(write_zip(tmp_path / "b.npz", [npy_bomb("x", (10**8,))]))
    with pytest.raises(Refused, match="ratio"):  # under the size limit, but a bomb
        read_all(write_zip(tmp_path / "c.npz", [npy_bomb("x", (10**7,))]))
    with NpzReader(write_zip(tmp_path / "d.npz", [npy_member("x", np.zeros(1000))]), error=Refused) as z:
        with pytest.raises(Refused, match="over the limit of 100"):
            z.read("x", max_bytes=100)


def test_odd_members_and_non_zips_are_refused(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.array([object()]), allow_pickle=True)
    for name, members, match in (("obj.npz", [stored("x.npy", buf.getvalue())], "dtype object"),
                                 ("txt.npz", [stored("x.txt", b"hi")], "not an .npy array"),
                                 ("v3.npz", [stored("x.npy", b"\x93NUMPY\x03\x00" + bytes(60))], "version")):
        with pytest.raises(Refused, match=match):
            read_all(write_zip(tmp_path / name, members))
    (tmp_path / "junk.npz").write_bytes(b"not a zip" * 10)
    with pytest.raises(Refused, match="no zip directory"):
        read_all(tmp_path / "junk.npz")
    with pytest.raises(Refused, match="65,535 members"):
        read_all(write_zip(tmp_path / "many.npz", [npy_member("x", np.zeros(1))], claimed_entries=65_535))


def test_zip_entry_count_and_problems(tmp_path):
    with zipfile.ZipFile(tmp_path / "z.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(5):
            zf.writestr(f"f{i}", b"a" * 3_000_000)  # 3 MB of one byte: ratio ~1000
        zf.writestr("small", b"b" * 1000)
    with open(tmp_path / "z.zip", "rb") as f:
        assert zip_entry_count(f) == 6
        infos = zipfile.ZipFile(f).infolist()
    problems = zip_problems(infos, ZipLimits(max_entries=4, max_entry_bytes=2_500_000))
    assert problems[0] == "6 entries, more than 4"
    assert all("'f" in p and "over the limit of 2,500,000" in p for p in problems[1:6])
    assert [p for p in zip_problems(infos, ZipLimits()) if "ratio" in p] and not any(
        "small" in p for p in zip_problems(infos, ZipLimits()))
    (tmp_path / "n.zip").write_bytes(b"x" * 100)
    with open(tmp_path / "n.zip", "rb") as f:
        assert zip_entry_count(f) is None


@pytest.mark.slow
def test_zip64_entry_count_is_read_from_the_zip64_record(tmp_path):
    with zipfile.ZipFile(tmp_path / "z64.zip", "w") as zf:
        for i in range(70_000):  # more than the 16-bit count of the classic end record
            zf.writestr(str(i), b"")
    with open(tmp_path / "z64.zip", "rb") as f:
        assert zip_entry_count(f) == 70_000
