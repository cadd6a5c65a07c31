"""Files: atomic writes that leave nothing behind, and the output-is-an-input check.

Every writer (model files, checkpoints, reports, predictions) turns its content into bytes first
and hands them to :func:`write_atomic`. On Linux the bytes go into an unnamed file
(``O_TMPFILE``) in the destination folder, are flushed to disk, and only then get a name and
replace the destination in one step (``os.replace``): a reader never sees half a file, and a
write killed at any point (even ``kill -9``) leaves the previous file as it was. An unnamed file
vanishes with the process; only a kill between the two system calls that name the finished file
and move it over the destination leaves it behind, under a name that carries the writer's
process id. Where ``O_TMPFILE`` is not available the temporary file has such a name from the
start. The next write into that folder removes such files whose process is gone.

:func:`check_outputs` refuses an output path that is one of the inputs (the same file, also
through links or other spellings), or another output, before anything is read or written.
"""

from __future__ import annotations

import errno
import os
import secrets
from contextlib import contextmanager, suppress

__all__ = ["write_atomic", "replacing", "check_outputs", "io_message", "read_regular"]

_TMP_SUFFIX = ".chainrule-tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def io_message(exc: OSError) -> str:
    """A short reason for an I/O failure ('no space left on device', 'permission denied')."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return (exc.strerror or str(exc)).lower()


def _destination(path, error):
    path = os.fspath(path)
    if not path:
        raise error("cannot write to an empty file name")
    if os.path.isdir(path):
        raise error(f"cannot write {path}: it is a folder; expected a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise error(f"cannot write {path}: folder {folder} does not exist")
    try:
        st = os.stat(path)
    except OSError:
        mode = 0o666 & ~_umask()
    else:
        import stat

        if not stat.S_ISREG(st.st_mode):
            raise error(
                f"cannot write {path}: it exists and is not a regular file "
                "(a pipe, device or socket); expected a file name"
            )
        mode = st.st_mode & 0o777
    return path, folder, mode


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def clean_stale(folder: str, base: str | None = None) -> list[str]:
    """Remove temporary files in ``folder`` (for ``base``, or any) left by writers that died."""
    removed: list[str] = []
    prefix = "." + base + "." if base else "."
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
            continue
        stem = name[: -len(_TMP_SUFFIX)]
        pid_part = stem.rsplit(".", 1)[-1].split("-", 1)[0]
        if not pid_part.isdigit() or _pid_alive(int(pid_part)):
            continue
        try:
            os.unlink(os.path.join(folder, name))
            removed.append(name)
        except OSError:
            pass
    return removed


def _temp_name(folder: str, path: str) -> str:
    return os.path.join(
        folder, f".{os.path.basename(path)}.{os.getpid()}-{secrets.token_hex(4)}{_TMP_SUFFIX}"
    )


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _link_unnamed(fd: int, name: str) -> bool:
    """Give the unnamed (O_TMPFILE) file ``fd`` the name ``name``; False when the system allows
    neither way (linkat with AT_EMPTY_PATH, or through /proc/self/fd)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        at_fdcwd, at_empty_path = -100, 0x1000
        if libc.linkat(fd, b"", at_fdcwd, os.fsencode(name), at_empty_path) == 0:
            return True
    except (OSError, AttributeError, TypeError):
        pass
    try:
        os.link(f"/proc/self/fd/{fd}", name, follow_symlinks=True)
        return True
    except OSError:
        return False


def write_atomic(path, data, error=OSError) -> str:
    """Replace ``path`` by ``data`` (bytes, or str written as UTF-8) atomically; return the path.

    ``error`` is the exception class raised, with a one-line message, for every failure (a
    missing folder, a folder or a pipe as the name, a full disk, no permission)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path, folder, mode = _destination(path, error)
    clean_stale(folder, os.path.basename(path))
    fd = None
    named = None
    try:
        try:
            fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, mode)
        except (AttributeError, OSError):  # not Linux, or a file system without O_TMPFILE
            fd = None
        if fd is not None:
            _write_all(fd, data)
            os.fchmod(fd, mode)  # (before it has a name: the named moment is two calls long)
            os.fsync(fd)
            # give the finished file a name, then move it over the destination at once
            named = _temp_name(folder, path)
            if not _link_unnamed(fd, named):
                named = None
                os.close(fd)
                fd = None
        if named is None:  # a named temporary file (its name carries our process id)
            named = _temp_name(folder, path)
            fd = os.open(named, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            _write_all(fd, data)
            os.fchmod(fd, mode)
            os.fsync(fd)
        os.replace(named, path)
        named = None
    except OSError as exc:
        raise error(f"cannot write {path}: {io_message(exc)}") from None
    finally:
        if fd is not None:
            os.close(fd)
        if named is not None:
            with suppress(OSError):
                os.unlink(named)
    return path


@contextmanager
def replacing(path, error=OSError):
    """Yield a temporary path next to ``path``; when the block ends without an exception, that
    file replaces ``path``. For writers that can only write to a file name; prefer
    :func:`write_atomic`. The temporary name carries the process id, so that a later write
    removes it if this process is killed before it finishes."""
    path, folder, mode = _destination(path, error)
    clean_stale(folder, os.path.basename(path))
    tmp = _temp_name(folder, path)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise error(f"cannot write {path}: {io_message(exc)}") from None
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        raise error(f"cannot write {path}: {io_message(exc)}") from None
    finally:
        with suppress(OSError):
            os.unlink(tmp)


def _identity(path):
    """(device, inode) of an existing file, else the resolved absolute path."""
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.realpath(os.path.abspath(path)))


def check_outputs(inputs: dict, outputs: dict, error=None) -> None:
    """Refuse an output that is one of the inputs or another output.

    ``inputs`` and ``outputs`` map a label ('--data', 'MODEL', '--out') to a path (None or '-'
    are skipped). The same file is recognised through hard and symbolic links and different
    spellings of the path. Raises ``error`` (default :class:`ConfigError`) with one line."""
    if error is None:
        from .errors import ConfigError as error
    seen: dict[object, tuple[str, str]] = {}
    for label, p in inputs.items():
        if p is None or p == "-":
            continue
        seen.setdefault(_identity(os.fspath(p)), (label, os.fspath(p)))
    taken: dict[object, tuple[str, str]] = {}
    for label, p in outputs.items():
        if p is None or p == "-":
            continue
        p = os.fspath(p)
        key = _identity(p)
        if key in seen:
            in_label, in_path = seen[key]
            same = "" if in_path == p else f" ({in_path})"
            raise error(
                f"{label} {p} is the same file as the input {in_label}{same}: writing "
                "it would destroy the input; choose another file name"
            )
        real = ("path", os.path.realpath(os.path.abspath(p)))
        for k in (key, real):
            if k in taken:
                other_label, other = taken[k]
                raise error(
                    f"{label} {p} is the same file as {other_label} {other}: one would "
                    "overwrite the other; choose two different file names"
                )
        taken[key] = taken[real] = (label, p)


def read_regular(path, what: str, error, limit: int | None = None) -> bytes:
    """The bytes of ``path``, refusing anything but a regular file (a FIFO would hang, a device
    would never end) and files over ``limit`` bytes."""
    import stat

    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{path} is a folder, not a {what}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {io_message(exc)}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{path} is a folder, not a {what}")
        if not stat.S_ISREG(st.st_mode):
            raise error(
                f"{path} is not a regular file (a pipe, device or socket); expected a {what}"
            )
        if limit is not None and st.st_size > limit:
            raise error(f"{path} has {st.st_size} bytes, more than the {limit} a {what} may have")
        chunks, left = [], st.st_size
        while left > 0:
            b = os.read(fd, min(left, 1 << 24))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {io_message(exc)}") from None
    finally:
        os.close(fd)


def same_file(a, b) -> bool:
    """Whether two paths name the same file (also through links and other spellings)."""
    return _identity(os.fspath(a)) == _identity(os.fspath(b))
