"""The repository's promises to a newcomer: the README's commands are the ones CI runs."""

from pathlib import Path

ROOT = Path(__file__).parents[1]


def readme_commands():
    return [line.strip() for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("    ")][:2]


def test_ci_runs_exactly_the_readme_test_command():
    _, test_command = readme_commands()
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines() if line.strip()]
    assert ci_lines[-1] == test_command


def test_readme_opens_with_install_and_test_commands():
    install, test_command = readme_commands()
    assert 'pip install -e ".[dev]"' in install and ".venv/bin/sksearch" in install
    assert "pytest" in test_command
