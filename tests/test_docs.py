"""The README and docs/ cannot rot: their examples run, and every command line they show names a
verb and flags the CLI's own parser has.

- ```sh blocks are run, each line through `sksearch.cli.main`, in a scratch folder holding copies of
  `spaces/` and the committed sweeps under `results/` (so nothing is written into the repository);
- ```python blocks are run in order, one namespace per page, in the same kind of folder, unless
  their first line is `# illustrative` (then they are only compiled);
- every other line that starts with `sksearch` (or `$ sksearch`, `.venv/bin/sksearch`) is a
  synopsis: its verb must exist and each `--flag` in it must be one of that verb's options.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
from pathlib import Path

import pytest

from sksearch.cli import build_parser, main

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMITTED = ["proxy", "bench_sknet26", "paper"]  # results/ folders the examples read
_FENCE = re.compile(r"^```(\w*)\s*$")
_COMMAND = re.compile(r"^(?:\$ |\.venv/bin/)?(sksearch\s.*)$")


def blocks(page: Path) -> list[tuple[str, str]]:
    """(language, text) of each fenced block of a page."""
    found, language, lines = [], None, []
    for line in page.read_text().splitlines():
        fence = _FENCE.match(line)
        if fence and language is None:
            language, lines = fence.group(1), []
        elif fence:
            found.append((language, "\n".join(lines)))
            language = None
        elif language is not None:
            lines.append(line)
    return found


def runnable_commands(page: Path) -> list[str]:
    return [
        line.split(" #")[0].strip()
        for language, text in blocks(page)
        if language == "sh"
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def synopses(page: Path) -> list[str]:
    """Every line starting with a sksearch command that is not in a ```sh block."""
    runnable = set(runnable_commands(page))
    lines = []
    for line in page.read_text().splitlines():
        match = _COMMAND.match(line.strip())
        if match and match.group(1).split(" #")[0].strip() not in runnable:
            lines.append(match.group(1).split(" #")[0].strip())
    return lines


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def verb_parser(words: list[str]) -> tuple[str, argparse.ArgumentParser]:
    """The parser of the verb a command line names (`space show` is one verb), and its name."""
    verbs = _subparsers(build_parser())
    assert words and words[0] in verbs, f"no verb {words[:1]}"
    parser, name = verbs[words[0]], words[0]
    inner = _subparsers(parser)
    if inner:
        assert len(words) > 1 and words[1] in inner, f"no verb {' '.join(words[:2])}"
        parser, name = inner[words[1]], f"{name} {words[1]}"
    return name, parser


@pytest.fixture()
def scratch(tmp_path, monkeypatch):
    """A folder like the repository's root for what the examples read; they write only here."""
    shutil.copytree(ROOT / "spaces", tmp_path / "spaces")
    for name in COMMITTED:
        shutil.copytree(ROOT / "results" / name, tmp_path / "results" / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SKSEARCH_STORE", str(tmp_path / "store"))
    return tmp_path


def test_the_pages_have_examples_to_check():
    assert len(runnable_commands(ROOT / "README.md")) >= 8
    assert sum(len(synopses(page)) for page in PAGES) >= 20
    assert any(language == "python" for page in PAGES for language, _ in blocks(page))


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_command_line_shown_names_a_verb_and_its_flags(page):
    for line in synopses(page) + runnable_commands(page):
        words = line.split()[1:]
        name, parser = verb_parser(words)
        known = set(parser._option_string_actions)
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line):
            assert flag in known, f"{page.name}: `{line}`: sksearch {name} has no {flag}"


@pytest.mark.parametrize("page", [page for page in PAGES if runnable_commands(page)], ids=lambda page: page.name)
def test_every_runnable_command_runs(page, scratch, capsys):
    for line in runnable_commands(page):
        argv = shlex.split(line)[1:]
        assert main(argv) == 0, f"{page.name}: `{line}` failed: {capsys.readouterr().err}"


@pytest.mark.parametrize(
    "page", [page for page in PAGES if any(lang == "python" for lang, _ in blocks(page))], ids=lambda page: page.name
)
def test_every_python_example_runs(page, scratch):
    namespace: dict = {"__name__": "__docs__"}
    for language, text in blocks(page):
        if language != "python":
            continue
        code = compile(text, f"{page.name} example", "exec")
        if not text.startswith("# illustrative"):
            exec(code, namespace)
