"""The user cache's shared machinery: where it is, reading a file once, locks, atomic installs.

Used by :mod:`course_utils.data` (datasets, ``<cache>/data/``) and :mod:`course_utils.models`
(pretrained weights, ``<cache>/models/``); each keeps its own rules for what a valid file is and
what to do about a bad one, and both change the cache the same way:

- :func:`cache_dir`: the cache root, ``$COURSE_CACHE``, else ``$XDG_CACHE_HOME/course-book``,
  else ``~/.cache/course-book`` (not created here);
- :func:`read_once`: a whole file read once, so that it is verified and parsed from the same bytes
  (nothing another process does to the file afterwards can change them); anything but a regular
  file is refused without reading it (a FIFO would block, ``/dev/zero`` never ends);
- :func:`file_lock`: a ``filelock.FileLock`` (fcntl on POSIX, released by the operating system
  when a process dies), held by a process while it changes a file, so that several processes
  (notebooks, ``train.py`` runs, pytest workers) never write the same file at once;
- :func:`install`: a file written atomically: to a temporary ``.<name>.<random>.part`` beside it,
  flushed to disk (fsync), renamed over the target with ``os.replace`` and the rename made durable
  (fsync of the folder), so a reader sees the old file or the new one, never a partial one;
- :func:`sweep_parts`: the temporary files a killed process left, removed (only under the lock);
- :func:`warn`: a warning about the cache, attributed to the reader's line that asked for the file.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
import warnings
from pathlib import Path

try:
    from filelock import FileLock
    from filelock import Timeout as LockTimeout
except ImportError:  # a dependency of course-utils (and of torch); only a broken install lacks it: file_lock says so
    FileLock = None

    class LockTimeout(TimeoutError):
        """Stands in for ``filelock.Timeout`` where filelock is missing (never raised)."""

__all__ = ["cache_dir", "read_once", "NotARegularFile", "FileTooLarge", "file_lock", "LockTimeout", "install",
           "fsync_dir", "sweep_parts", "warn"]


def cache_dir() -> Path:
    """The user cache root: ``$COURSE_CACHE``, else ``$XDG_CACHE_HOME/course-book``, else ``~/.cache/course-book``."""
    if os.environ.get("COURSE_CACHE"):
        return Path(os.environ["COURSE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "course-book"


class NotARegularFile(OSError):
    """A FIFO, device or socket where a file should be: never read (it could block forever)."""


class FileTooLarge(ValueError):
    """A file far larger than the caller expects: not read into memory. ``size`` holds its size in bytes."""

    def __init__(self, size: int):
        super().__init__(f"is {size:,} bytes, far more than expected")
        self.size = size


def _open_nonblocking(path, flags):
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))  # opening a FIFO must not wait for a writer


def read_once(path, max_size: int | None = None) -> bytes:
    """The whole file at ``path``, read once.

    Raises ``OSError`` when it cannot be read (``FileNotFoundError`` when it is missing),
    :class:`NotARegularFile` for anything but a regular file, and :class:`FileTooLarge` (without
    reading) for a file larger than ``max_size`` bytes.
    """
    with open(path, "rb", opener=_open_nonblocking) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(errno.EINVAL, "not a regular file (a FIFO, device or socket)", str(path))
        if max_size is not None and st.st_size > max_size:
            raise FileTooLarge(st.st_size)
        return f.read()


def file_lock(lock_path, timeout: float, user: str):
    """A ``filelock.FileLock`` at ``lock_path`` (not yet acquired) that waits up to ``timeout``
    seconds, then raises :data:`LockTimeout` (``filelock.Timeout``); its folder is created, so an
    ``OSError`` here means the folder cannot be written. ``user`` names the module in the
    ``ImportError`` of an install without ``filelock``."""
    if FileLock is None:
        raise ImportError(f"{user} needs the 'filelock' package to change the cache safely; install it with: "
                          "pip install filelock")
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_path), timeout=timeout)


def fsync_dir(folder) -> None:
    """Make the renames in ``folder`` durable (POSIX; elsewhere, and on any error, nothing)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def install(dest, blob: bytes) -> None:
    """Write ``blob`` to ``dest`` atomically: a temporary file beside it, fsync, ``os.replace``.
    The folder is created when missing; on any failure the temporary file is removed."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(dest.parent)


def sweep_parts(*dests, also: tuple[str, ...] = ()) -> None:
    """Remove the temporary files (``.<name>.*.part``) a killed process left for each of ``dests``,
    and the files matching the glob patterns ``also`` in the first one's folder. Call only while
    holding the lock of those files (a live writer's temporary file must not be taken away)."""
    if not dests:
        return
    dests = [Path(d) for d in dests]
    globs = [(d.parent, f".{d.name}.*.part") for d in dests] + [(dests[0].parent, pattern) for pattern in also]
    with contextlib.suppress(OSError):
        for folder, pattern in globs:
            for part in folder.glob(pattern):
                with contextlib.suppress(OSError):
                    part.unlink()


def warn(message: str, category: type[Warning], module: str) -> None:
    """Warn with ``category``, attributed to the first caller outside ``module`` (and this module):
    the notebook line that called ``data.load`` or ``models.load_or_pretrain``, not a line in here."""
    skip = {module, __name__}
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_globals.get("__name__") in skip:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
