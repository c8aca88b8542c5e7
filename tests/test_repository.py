"""The repository's promises to a newcomer: the README's commands are the ones CI runs, and the
layout page names every module."""

from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def readme_commands():
    """The README's install command (its first indented line) and its test command."""
    indented = [line.strip() for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("    ")]
    return indented[0], next(line for line in indented if "pytest" in line)


def test_ci_runs_exactly_the_readme_test_command():
    _, test_command = readme_commands()
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines() if line.strip()]
    assert ci_lines[-1] == test_command


def test_readme_opens_with_install_and_test_commands():
    install, test_command = readme_commands()
    assert 'pip install -e ".[dev]"' in install and test_command == ".venv/bin/python -m pytest -q"
    assert ".venv/bin/sksearch sweep spaces/smoke.yaml" in (ROOT / "README.md").read_text()


def test_the_layout_page_names_every_module():
    table = (ROOT / "docs/layout.md").read_text()
    for path in sorted((ROOT / "sksearch").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if path.name in ("__init__.py", "__main__.py"):
            continue
        package = f"`{path.parent.relative_to(ROOT).as_posix()}/`"
        rows = [row for row in table.splitlines() if row.startswith(f"| {package}")]
        assert f"| `{relative}`" in table or (rows and f"`{path.stem}`" in rows[0]), relative


def test_the_command_line_starts_without_torch_pandas_or_ray():
    """`sksearch --help` answers at once: the package and the verbs' flags import no heavy library
    (each verb imports what it needs when it runs)."""
    import subprocess
    import sys

    code = (
        "import sys, sksearch, sksearch.cli; sksearch.cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'pandas', 'numpy', 'ray', 'optuna', 'fvcore') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_public_names_and_submodules_are_there_on_first_use():
    import sksearch

    assert sksearch.preset("sknet26").archid == sksearch.NetSpec.from_dict(sksearch.preset("sknet26").to_dict()).archid
    assert sksearch.complexity.count is sksearch.count
    assert set(sksearch.__all__) <= set(dir(sksearch))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        sksearch.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    "argv",
    [
        ["count", "nosuch"],
        ["train", "nosuch"],
        ["results", "nope"],
        ["pareto", "nope"],
        ["compare", "nope"],
        ["table", "nope", "--paper", "table7"],
        ["export", "nope", "--pareto", "--out", "x"],
        ["plot", "nope", "--kind", "edf", "--out", "x.png"],
        ["sweep", "nope.yaml"],
        ["space", "show", "nope.yaml"],
        ["space", "sample", "nope.yaml"],
        ["space", "enumerate", "nope.yaml"],
        ["latency", "nosuch"],
        ["status", "nope"],
        ["resume", "nope"],
        ["extend", "nope", "--num-samples", "2"],
        ["repair", "nope"],
        ["replay", "nope"],
        ["attention", "nope"],
        ["store", "ls", "--store", "nope"],
        ["plan", "nope.yaml"],
        ["prepare", "nope", "packed"],
    ],
)
def test_a_mistyped_name_or_folder_is_refused_before_torch_is_imported(tmp_path, argv):
    """Bad input answers at once: the verb checks its names and folders before it loads torch, and
    creates nothing (benchmarks/cli_startup.py measures the CPU time of each refusal)."""
    import subprocess
    import sys

    code = "import sys; from sksearch.cli import main; code = main(sys.argv[1:]); print(code, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=tmp_path)
    assert done.stdout.split() == ["2", "False"], done.stderr
    assert done.stderr.count("\n") == 1 and "error:" in done.stderr
    assert not list(tmp_path.iterdir())  # nothing written in place of the missing folder
