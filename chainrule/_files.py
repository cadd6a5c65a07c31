"""Atomic file replacement, shared by every writer (model files, reports, predictions).

The content is written under a temporary name in the destination folder, flushed to disk, and
renamed over the destination in one step (``os.replace``): a reader never sees half a file, and
an interrupted write leaves the previous file as it was (and no temporary file behind).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager

__all__ = ["replacing"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def replacing(path, error=OSError):
    """Yield a temporary path next to ``path``; when the block ends without an exception, that
    file replaces ``path`` (keeping an existing file's permissions). ``error`` is the exception
    class raised, with a one-line message, when the folder is missing or ``path`` is a folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise error(f"cannot write {path}: it is a folder; expected a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise error(f"cannot write {path}: folder {folder} does not exist")
    mode = (os.stat(path).st_mode & 0o777) if os.path.exists(path) else (0o666 & ~_umask())
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                                   suffix=".tmp")
    except OSError as exc:
        raise error(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
