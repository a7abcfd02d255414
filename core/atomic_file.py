"""Write a file so that readers and crashes only ever see the old file or the complete new one."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """``with atomic_write(path) as f: f.write(...)``.

    The data goes to a hidden temporary file in the same directory, which is flushed, fsynced and then
    renamed over ``path`` (``os.replace``) when the block ends without an error; on any error (or
    KeyboardInterrupt) the temporary file is removed and ``path`` is untouched. The rename is made durable
    by fsyncing the directory where the file system allows it. File mode follows the umask, like ``open``.
    """
    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{base}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):  # best effort: not every file system lets a directory be fsynced
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
