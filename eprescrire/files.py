"""Creating output files: never overwrite one, never leave a half-written one."""

from __future__ import annotations

import os
from pathlib import Path

from eprescrire.errors import Error, InputError, UsageError


def create(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o644,
    error: type[Error] = InputError,
    io_error: type[Error] | None = None,
    sync: bool = False,
) -> None:
    """Create ``path`` holding ``data`` with ``mode`` (synced to disk with ``sync``, for what
    cannot be made again, such as a private key). An existing file is
    never overwritten (raises ``error``) and a failed write leaves no file behind (raises
    ``io_error``, by default ``error``); each with one line naming the file."""
    failed = io_error or error
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as e:
        raise error(f"{path} already exists; refusing to overwrite it") from e
    except OSError as e:
        raise failed(f"cannot write {path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(path, mode)  # the umask may have narrowed it: never wider than ``mode``
    except OSError as e:
        path.unlink(missing_ok=True)
        raise failed(f"cannot write {path}: {e.strerror}") from e


def output_directory(path: Path) -> None:
    """Make sure ``path`` is a directory to write into, creating it (and its parents) if
    needed. Raises :class:`UsageError` with one line when it is a file or cannot be made."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"--out-dir {path} is a file, not a directory") from None
    except NotADirectoryError:
        raise UsageError(f"--out-dir {path}: a parent is a file, not a directory") from None
    except OSError as e:
        raise UsageError(f"--out-dir {path}: cannot create it ({e.strerror})") from None
