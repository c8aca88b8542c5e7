"""Atomic writes: whole files or none, with the mode the user's umask gives."""

import os
import stat

import pytest

from sksearch.files import atomic_write, atomic_write_text


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_respect_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "a" / "table.csv", "x\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert path.read_text() == "x\n"


def test_a_failed_write_leaves_nothing(tmp_path):
    def fail(temporary):
        temporary.write_text("half")
        raise RuntimeError("bad input found half-way")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "table.csv", fail)
    assert list(tmp_path.iterdir()) == []
