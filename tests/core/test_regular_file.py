"""core.regular_file: FIFOs, devices, sockets and folders are refused before reading (never blocking);
links to regular files are followed."""

from __future__ import annotations

import os
import signal
import socket
import sys

import pytest

from core.regular_file import NotRegularFileError, describe_mode, open_regular, require_regular_file

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, sockets and /dev/zero are POSIX")


@pytest.fixture
def specials(tmp_path):
    (tmp_path / "file").write_bytes(b"data")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "sock"))
    s.close()
    (tmp_path / "link_file").symlink_to(tmp_path / "file")
    (tmp_path / "link_fifo").symlink_to(tmp_path / "fifo")
    (tmp_path / "link_dev").symlink_to("/dev/zero")
    return tmp_path


@pytest.fixture
def watchdog():
    """Fail instead of hanging if something opens a FIFO for reading."""
    def boom(*_):
        raise TimeoutError("blocked")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_regular_files_and_links_to_them_open(specials):
    for name in ("file", "link_file"):
        assert require_regular_file(specials / name).st_size == 4
        with open_regular(specials / name) as f:
            assert f.read() == b"data"


@pytest.mark.parametrize("name, kind", [("fifo", "FIFO"), ("link_fifo", "FIFO"), ("sock", "socket"),
                                        ("link_dev", "character device")])
def test_non_regular_files_are_refused_without_blocking(specials, watchdog, name, kind):
    for call in (require_regular_file, open_regular):
        with pytest.raises(NotRegularFileError, match=f"{kind}.*not a regular file.*expected a model") as info:
            call(specials / name, "a model")
        assert info.value.filename == str(specials / name)


def test_folders_missing_files_and_custom_errors(specials):
    with pytest.raises(IsADirectoryError, match="expected a scene"):
        open_regular(specials / "dir", "a scene")
    with pytest.raises(FileNotFoundError):
        open_regular(specials / "missing")
    with pytest.raises(KeyError, match="FIFO"):
        open_regular(specials / "fifo", error=KeyError)
    with pytest.raises(LookupError, match="is a folder"):
        require_regular_file(specials / "dir", folder_error=LookupError)
    assert describe_mode(os.stat("/dev/zero").st_mode) == "a character device"


def test_a_fifo_swapped_in_after_the_check_does_not_block(specials, watchdog, monkeypatch):
    """The open itself is non-blocking and re-checked with fstat."""
    import core.regular_file as rf

    monkeypatch.setattr(rf, "require_regular_file", lambda *a, **k: None)  # the check "passed" earlier
    with pytest.raises(NotRegularFileError, match="FIFO"):
        open_regular(specials / "fifo")
