"""Refuse anything that is not a regular file before reading it.

Opening a FIFO blocks until someone writes to it (the viewer would hang), a character device such as
``/dev/zero`` or ``/dev/urandom`` never ends, and a directory or socket cannot be read at all. Every path the
project reads (models, ``.ply`` scenes, photos, datasets, side-car files, latents) goes through
:func:`require_regular_file` or :func:`open_regular` first. Symbolic links are followed: a link to a regular
file is fine.

:func:`open_regular` closes the gap between checking and opening: it opens with ``O_NONBLOCK`` (so even a
path swapped for a FIFO after the check cannot block), checks the opened descriptor with ``fstat`` and only
then returns a normal blocking file object.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import BinaryIO

__all__ = ["NotRegularFileError", "describe_mode", "open_regular", "require_regular_file"]

ErrorFactory = Callable[[str], Exception]


class NotRegularFileError(OSError):
    """A FIFO, device, socket or other non-regular file (folders raise ``IsADirectoryError``)."""


def describe_mode(mode: int) -> str:
    """``"a FIFO (named pipe)"``, ``"a character device"``, ... for an ``st_mode``."""
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return what
    return "not a regular file"


def _refuse(path: str, mode: int, what: str, error: ErrorFactory | None,
            folder_error: ErrorFactory | None) -> Exception:
    if stat.S_ISDIR(mode):
        if folder_error is not None:
            return folder_error(f"is a folder, not {what}")
        return IsADirectoryError(errno.EISDIR, f"Is a directory (expected {what})", path)
    problem = f"is {describe_mode(mode)}, not a regular file; refused (expected {what})"
    return error(problem) if error is not None else NotRegularFileError(errno.EINVAL, problem, path)


def require_regular_file(path: str | os.PathLike, what: str = "a file", *, error: ErrorFactory | None = None,
                         folder_error: ErrorFactory | None = None) -> os.stat_result:
    """``os.stat(path)`` (following links) if it is a regular file, else raise.

    Args:
        what: what the caller expects, for the message (``"a .ply file"``).
        error: builds the exception for a FIFO, device, socket, ... from a problem text (e.g.
            ``lambda p: PlyError(path, p)``); default :class:`NotRegularFileError`.
        folder_error: the same for a folder; default ``IsADirectoryError``.

    Raises:
        FileNotFoundError (and other ``OSError``) from ``os.stat``; the above for non-regular files.
    """
    path = os.fspath(path)
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, st.st_mode, what, error, folder_error)
    return st


def open_regular(path: str | os.PathLike, what: str = "a file", *, error: ErrorFactory | None = None,
                 folder_error: ErrorFactory | None = None) -> BinaryIO:
    """Open a regular file for binary reading, never blocking on a FIFO (see the module docstring); raises
    as :func:`require_regular_file`."""
    path = os.fspath(path)
    require_regular_file(path, what, error=error, folder_error=folder_error)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, st.st_mode, what, error, folder_error)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
