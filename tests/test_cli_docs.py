"""docs/cli.md's examples run as written, against the README's tour graph.

Every ``$ command`` of a ``console`` block in docs/cli.md is run with bash (``pipefail``)
in a scratch folder, section by section; before each section the graph is wiped and the
README's curl block (tests/test_readme.py) builds the tour again: GLOBAL ``hopper``
(ACTIVE), PROJECT ``website`` and ORCHESTRATION ``website-run-1`` (CREATED). The ids the
docs abbreviate (``0b6f…`` the GLOBAL, ``5d0e…`` the PROJECT, ``9a41…`` the run) are
replaced by the tour's. A command whose shown output has an ``error:`` line must fail with
that error (the text up to its first ``…``); ``echo $?`` after it names the exit code;
every other command must succeed. A few are not run, each for the reason in ``SKIPPED``.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hopper_graph import InstanceManager
from hopper_graph.schema import MIGRATIONS
from tests.conftest import wipe
from tests.test_readme import run_curl_block

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cli.md"
PLACEHOLDERS = {"0b6f…": "G", "5d0e…": "P", "9a41…": "R"}
SKIPPED = {
    "hopper-graph neo4j ": "starts, stops or asks about the developer's own local server",
    "hopper-graph serve": "serves until it is stopped",
    "--follow": "follows the feed until Ctrl-C",
    "new-host": "restores into another server",
    "generate-hierarchy": "stands for the reader's own program",
    "$ hopper-graph reset\n": "asks for confirmation on a terminal",
}
"""A command containing the key is not run, for the reason given."""
SETUP = {
    "`instance create`": "empty",
    "`instance delete`": "running",
}
"""Sections that start from another graph than the tour's: none at all, or the tour with
the project and its run ACTIVE."""
FILES = {
    "run-config.yaml": "{}\n",
}
"""Files the examples name, as the scratch folder holds them (apply's document is the
section's own YAML block)."""


@dataclass
class Example:
    section: str
    line: int
    command: str
    output: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        """The error the docs show for it, up to the first abbreviated word (an id)."""
        shown = next((o for o in self.output if o.startswith("error: ")), None)
        return None if shown is None else re.split(r"\S*…", shown, maxsplit=1)[0]

    @property
    def skipped(self) -> str | None:
        return next((why for key, why in SKIPPED.items() if key in f"$ {self.command}\n"),
                    None)


def examples() -> list[Example]:
    """Each ``$`` command of the console blocks, its continuation lines joined, with the
    output lines the docs show under it."""
    found: list[Example] = []
    section, in_console = "", False
    lines = DOC.read_text().splitlines()
    number = 0
    while number < len(lines):
        line, start = lines[number], number + 1
        number += 1
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("```"):
            in_console = line == "```console" and not in_console
        elif in_console and line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + lines[number].strip()
                number += 1
            found.append(Example(section, start, command))
        elif in_console and found:
            found[-1].output.append(line)
    return found


def apply_document() -> str:
    """The YAML block of the `apply -f FILE` section: the hierarchy.yaml its examples use."""
    section = DOC.read_text().split("## `apply -f FILE`", 1)[1].split("\n## ")[0]
    return re.findall(r"^```yaml\n(.*?)^```", section, re.DOTALL | re.MULTILINE)[0]


def test_the_docs_show_every_migration_the_schema_has():
    text = DOC.read_text()
    for migration in MIGRATIONS:
        assert f"applied migration {migration.version}: {migration.name}\n" in text
    last = MIGRATIONS[-1].version
    assert f"schema at version {last}\n" in text
    assert f'{{"applied": [], "version": {last}, "nfc_twins": []}}' in text


def test_examples_are_found():
    found = examples()
    assert len(found) > 40
    assert all(e.command.startswith(("hopper-graph ", "HOPPER_", "echo $?")) or e.skipped
               for e in found), [e.command for e in found]


@pytest.mark.slow  # dozens of hopper-graph processes, each starting Python
def test_the_examples_of_cli_md_run_against_the_tour_graph(api_url, shell_env, driver,
                                                          database, tmp_path):
    for name, text in {**FILES, "hierarchy.yaml": apply_document()}.items():
        (tmp_path / name).write_text(text)
    failures: list[str] = []
    sections: dict[str, list[Example]] = {}
    for example in examples():
        sections.setdefault(example.section, []).append(example)
    for section, items in sections.items():
        ids = tour(api_url, shell_env, driver, database, SETUP.get(section))
        previous: subprocess.CompletedProcess[str] | None = None
        for example in items:
            if example.skipped:
                continue
            if example.command == "echo $?":
                shown = int(example.output[0])
                if previous is None or previous.returncode != shown:
                    failures.append(f"line {example.line}: exit code "
                                    f"{previous and previous.returncode}, not {shown}")
                continue
            previous = run(example, ids, shell_env, tmp_path)
            failures.extend(judge(example, previous))
    assert not failures, "\n".join(failures)


def tour(api_url: str, env: dict[str, str], driver, database, setup: str | None
         ) -> dict[str, str]:
    """A wiped graph, then the README's tour (unless the section starts empty); the
    placeholder -> id map."""
    wipe(driver, database)
    if setup == "empty":
        return {}
    ids, _ = run_curl_block(api_url, env)
    if setup == "running":
        manager = InstanceManager(driver, database)
        manager.start(ids["P"])
        manager.start(ids["R"])
    return {shown: ids[key] for shown, key in PLACEHOLDERS.items()}


def run(example: Example, ids: dict[str, str], env: dict[str, str], folder: Path
        ) -> subprocess.CompletedProcess[str]:
    command = example.command
    for shown, real in ids.items():
        command = command.replace(shown, real)
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


def judge(example: Example, done: subprocess.CompletedProcess[str]) -> list[str]:
    where = f"line {example.line} ({example.section}): $ {example.command}"
    if example.error is None:
        if done.returncode != 0:
            return [f"{where}: exit code {done.returncode}: {done.stderr.strip()}"]
        return []
    if done.returncode == 0:
        return [f"{where}: succeeded, the docs show {example.error!r}"]
    if not done.stderr.startswith(example.error):
        return [f"{where}: said {done.stderr.strip()!r}, the docs show {example.error!r}"]
    return []
