"""Atomic file writes: write to a temporary name in the same folder, fsync, then rename.

A crash, a full disk or a bad input found half-way never leaves a half-written or empty file where
a reader takes it for data. A write the storage refuses (full, read-only, no permission) is a
StorageError: one line that names the path and what it needs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sksearch.validation import ConfigError


def atomic_write(path: str | Path, write: Callable[[Path], Any], size: int | None = None) -> Path:
    """Call `write(temporary_path)`, fsync it, then move it onto `path` in one rename. `size`, the
    bytes to be written where known, is what a full disk is said to need."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(str(path), "is a folder; give the name of a file to write")
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    # created as open() creates any file (0666 less the umask), not mkstemp's 0600; never another's
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as error:
        raise StorageError.of(error, path, size) from None
    try:
        write(temporary)
        _fsync(temporary)
        os.replace(temporary, path)
        _fsync(path.parent)
    except BaseException as error:
        written = _size(temporary)
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise StorageError.of(error, path, size or written) from None
        raise
    return path


class StorageError(ConfigError):
    """The storage refused a write: full, read-only, or not this user's. The message names the
    path and, for a full disk, the space the write needed."""

    @classmethod
    def of(cls, error: OSError, path: str | Path, needed: int | None = None) -> OSError | StorageError:
        """The StorageError an OSError of a write stands for, or the OSError itself (another fault)."""
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            need = f"; this write needs {needed / 2**20:.2f} MiB" if needed else ""
            return cls(str(path), f"cannot be written: the disk is full{need}; free space, then `sksearch resume`")
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return cls(str(path), f"cannot be written ({error.strerror}); the folder is read-only for this user")
        return error


CHECKPOINT = "checkpoint.pt"  # the file in a checkpoint folder: train writes it, the store and retries read it
MIN_FREE_BYTES = 64 * 2**20  # room kept for Ray's state and the tables, besides the checkpoints


def check_free_space(folder: str | Path, checkpoint_bytes: int = 0) -> None:
    """Refuse to go on when `folder`'s filesystem has less room than the next writes need: a few
    checkpoints of this size and MIN_FREE_BYTES (SKSEARCH_MIN_FREE_MB sets the latter)."""
    reserve = int(float(os.environ.get("SKSEARCH_MIN_FREE_MB", MIN_FREE_BYTES / 2**20)) * 2**20)
    needed = reserve + 4 * checkpoint_bytes
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise StorageError(str(folder), f"the disk has {free / 2**20:.1f} MiB free and the sweep needs "
                           f"{needed / 2**20:.1f} MiB to go on; free space, then `sksearch resume`")  # fmt: skip


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') bytes to the disk before a rename publishes them."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size or None
    except OSError:
        return None


def check_writable_folder(folder: str | Path, label: str) -> None:
    """Refuse, before anything is written, a folder that is a file or that this user cannot create
    or write into (the nearest existing folder above it decides)."""
    path = Path(folder).absolute()
    if path.exists() and not path.is_dir():
        raise ConfigError(label, f"{folder} is a file, not a folder")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(label, f"{existing} is a file, so {folder} cannot be a folder")
    probe = existing / f".sksearch-probe-{secrets.token_hex(8)}"
    try:  # a real write: permissions, read-only mounts and pseudo-filesystems all answer it
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        raise ConfigError(label, f"cannot write into {existing} ({error.strerror})") from None
    probe.unlink()


def atomic_write_text(path: str | Path, text: str) -> Path:
    data = text.encode()
    return atomic_write(path, lambda temporary: temporary.write_bytes(data), size=len(data))


# -- locations: a local path or a URI (s3://, gs://, file://, ...) as Ray's storage accepts ----------


def is_uri(location: str) -> bool:
    return "://" in str(location)


def join(location: str, *parts: str) -> str:
    return posixpath.join(location, *parts) if is_uri(location) else os.path.join(location, *parts)


def _filesystem(location: str):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(location)


def write_bytes(location: str, data: bytes) -> None:
    """Atomically: a local file by rename, an object store by a single put."""
    if not is_uri(location):
        atomic_write(location, lambda temporary: temporary.write_bytes(data), size=len(data))
        return
    filesystem, path = _filesystem(location)
    filesystem.create_dir(posixpath.dirname(path), recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(data)


def read_bytes(location: str) -> bytes:
    if not is_uri(location):
        return Path(location).read_bytes()
    filesystem, path = _filesystem(location)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def exists(location: str) -> bool:
    if not is_uri(location):
        return Path(location).exists()
    import pyarrow.fs

    filesystem, path = _filesystem(location)
    return filesystem.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def listing(location: str, folders: bool = False) -> list[str]:
    """The files (or folders) in a folder or URI prefix, sorted, hidden ones (".name") left out;
    [] for one that does not exist."""
    if not exists(location):
        return []
    import pyarrow.fs

    filesystem, path = _filesystem(location) if is_uri(location) else (pyarrow.fs.LocalFileSystem(), location)
    infos = filesystem.get_file_info(pyarrow.fs.FileSelector(path))
    kind = pyarrow.fs.FileType.Directory if folders else pyarrow.fs.FileType.File
    chosen = sorted(info.path for info in infos if info.type == kind and not info.base_name.startswith("."))
    if is_uri(location):
        scheme = location.split("://", 1)[0]
        return [f"{scheme}://{path}" if not path.startswith(f"{scheme}://") else path for path in chosen]
    return chosen


def delete_file(location: str) -> None:
    """Delete one file or object; a failure is a StorageError."""
    if is_uri(location):
        filesystem, path = _filesystem(location)
        filesystem.delete_file(path)
        return
    try:
        os.unlink(location)
    except OSError as error:
        raise StorageError.of(error, location) from None


def delete_empty_folder(location: str) -> None:
    """Delete a folder (or URI prefix) if it is empty; left alone when it is not or cannot be."""
    with contextlib.suppress(OSError):  # e.g. another writer's file is arriving
        if is_uri(location):
            filesystem, path = _filesystem(location)
            if not listing(location):
                filesystem.delete_dir(path)
        else:
            os.rmdir(location)
