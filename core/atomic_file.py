"""Write a file so that readers and crashes only ever see the old file or the complete new one.

The data goes to a hidden temporary file ``.<name>.<12 hex>.tmp`` in the same directory, which is flushed,
fsynced and renamed over the target (``os.replace``). A process killed mid-write (SIGKILL, power loss) leaves
that temporary file behind; :func:`stale_temporaries` finds such leftovers so that the owner of a directory (a
training run on start or resume) can delete them.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator

TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")  # the names temporary_path gives


def temporary_path(path: str | os.PathLike) -> str:
    """A fresh hidden name beside ``path``: ``dir/.<base>.<12 hex>.tmp``."""
    directory, base = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(directory, f".{base}.{uuid.uuid4().hex[:12]}.tmp")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """``with atomic_write(path) as f: f.write(...)``.

    On any error (or KeyboardInterrupt) the temporary file is removed and ``path`` is untouched. The rename is
    made durable by fsyncing the directory where the file system allows it. File mode follows the umask, like
    ``open``.
    """
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        yield f


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """``with atomic_path(path) as tmp: library.save(tmp)``: for writers that want a file name, not a file.

    Whatever the block writes to ``tmp`` is fsynced and renamed over ``path`` when the block ends without an
    error; on an error the temporary file is removed and ``path`` is untouched. The file mode follows the
    umask, like ``open`` (whatever mode the writer gave it).
    """
    path = os.fspath(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    fsync_directory(os.path.dirname(os.path.abspath(path)))


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, for a moment, in every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def fsync_directory(directory: str | os.PathLike) -> None:
    """Make renames in ``directory`` durable (best effort: not every file system lets a directory be fsynced)."""
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def stale_temporaries(directory: str | os.PathLike, older_than: float) -> list[Path]:
    """Temporary files of interrupted atomic writes in ``directory`` last modified before ``older_than``
    (``time.time()`` seconds), i.e. not being written by anyone now."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if TEMP_RE.match(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime < older_than:
                        found.append(Path(entry.path))
    return sorted(found)
