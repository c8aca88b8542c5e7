"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash (or a bad input found half-way) never leaves a half-written table behind.
"""

from __future__ import annotations

import os
import posixpath
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sksearch.validation import ConfigError


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(temporary_path)`, then move the result onto `path` in one rename."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(str(path), "is a folder; give the name of a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    # created as open() creates any file (0666 less the umask), not mkstemp's 0600; never another's
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


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
    return atomic_write(path, lambda temporary: temporary.write_text(text))


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
        atomic_write(location, lambda temporary: temporary.write_bytes(data))
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
