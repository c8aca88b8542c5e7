"""A real small filesystem for the storage fault tests (a full disk, a read-only folder)."""

import contextlib
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_filesystem(path: Path, size_mb: int):
    """A tmpfs of `size_mb` at `path` (needs root, as CI has; skipped where mounting is not allowed)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        for _ in range(4):  # a test may have stacked a bind mount on it
            if not path.is_mount():
                break
            subprocess.run(["umount", "-l", str(path)], check=False)
