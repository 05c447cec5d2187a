"""Creating files: never overwrite one, never follow a symbolic link, never leave a half-written
one, and give each file the mode that fits what it holds.

Every file is first written to a fresh temporary file in the target's own directory (created
with ``O_EXCL | O_NOFOLLOW``, so that nothing planted there is written through), then put in
place in one step: :func:`create` links it to the new name (``link`` fails on any existing
entry, a dangling symbolic link included, and never follows one); :func:`replace` renames it
over the old file (``rename`` replaces a symbolic link itself, never the file it points to).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from eprescrire.errors import Error, InputError, UsageError

#: Patient data (signed prescriptions, PDFs, QR images, exports, cancellations, checkpoints,
#: logs) and private keys: readable by their owner only.
PRIVATE = 0o600
#: Public material (certificates, CRLs, trust-store entries).
PUBLIC = 0o644

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _temporary(directory: Path, name: str, mode: int) -> tuple[int, Path]:
    """A new, empty temporary file beside ``name`` in ``directory`` (never an existing entry)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    for _ in range(8):
        temporary = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temporary, flags, mode), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {directory}")


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _link_into_place(temporary: Path, path: Path) -> None:
    """Give the finished temporary file its name; FileExistsError if the name is taken."""
    try:
        os.link(temporary, path, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:
        # A file system without hard links: create the name itself, exclusively, and copy.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as target, open(temporary, "rb") as source:
                target.write(source.read())
                os.chmod(target.fileno(), os.stat(temporary).st_mode & 0o777)
        except OSError:
            path.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def creating(
    path: Path,
    *,
    mode: int = PRIVATE,
    error: type[Error] = InputError,
    io_error: type[Error] | None = None,
    sync: bool = False,
) -> Iterator[BinaryIO]:
    """Write a new file through the handle this yields; it appears at ``path`` only when the
    block ends without an exception. An existing ``path`` (a symbolic link included) is never
    touched and raises ``error``; a failed write leaves nothing behind and raises ``io_error``
    (by default ``error``); each with one line naming the file."""
    failed = io_error or error
    if os.path.lexists(path):
        raise error(f"{path} already exists; refusing to overwrite it")
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = _temporary(directory, path.name, mode)
    except OSError as e:
        raise failed(f"cannot write {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # the umask may have narrowed it; never wider
            yield handle
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        try:
            _link_into_place(temporary, path)
        except FileExistsError as e:
            raise error(f"{path} already exists; refusing to overwrite it") from e
        if sync:
            _sync_directory(directory)
    except OSError as e:
        raise failed(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        temporary.unlink(missing_ok=True)


def create(
    path: Path,
    data: bytes,
    *,
    mode: int = PRIVATE,
    error: type[Error] = InputError,
    io_error: type[Error] | None = None,
    sync: bool = False,
) -> None:
    """Create ``path`` holding ``data`` with ``mode`` (:data:`PRIVATE` unless the content is
    public), synced to disk with ``sync`` (for what cannot be made again, such as a private
    key). An existing ``path`` is never overwritten (raises ``error``, by default
    :class:`InputError`, exit 3) and a failed write leaves no file behind (raises ``io_error``,
    by default ``error``)."""
    with creating(path, mode=mode, error=error, io_error=io_error, sync=sync) as handle:
        handle.write(data)


def replace(path: Path, data: bytes, *, mode: int, error: type[Error] = InputError) -> None:
    """Replace (or create) ``path`` with ``data`` atomically: readers see the old content or
    the new, never a mix, and a symbolic link at ``path`` is replaced, never written through.
    On failure, raises ``error`` and leaves the old file as it was."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        if path.is_dir() and not path.is_symlink():
            raise IsADirectoryError(21, "is a directory")
        fd, temporary = _temporary(directory, path.name, mode)
    except OSError as e:
        raise error(f"cannot write {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _sync_directory(directory)
    except OSError as e:
        raise error(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        temporary.unlink(missing_ok=True)


def check_target(path: Path, *, error: type[Error] = InputError) -> None:
    """Fail early, before any work, when ``path`` cannot be created: it exists (a symbolic
    link included) or its directory does not. Raises ``error``."""
    if os.path.lexists(path):
        raise error(f"{path} already exists; refusing to overwrite it")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise error(f"cannot write {path}: No such file or directory")


def make_directory(path: Path, *, error: type[Error] = InputError) -> None:
    """Create an output directory (and its parents) unless it exists. Raises ``error``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # a file where a directory was named: the command line is wrong (exit 2)
        raise UsageError(f"{path} is not a directory (or a parent of it is a file)") from None
    except OSError as e:
        raise error(f"cannot create {path}: {e.strerror}") from e
