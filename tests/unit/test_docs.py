"""The docs' lifecycle diagram is the machine's: a test, so the two cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from hopper_graph.machine import TRANSITIONS, mermaid_diagram

DOC = Path(__file__).resolve().parents[2] / "docs" / "instance-architecture.md"


def mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", text, re.S)


def edges(diagram: str) -> set[tuple[str, str, str]]:
    found = re.findall(r"^\s*(\w+) --> (\w+): (\w+)\s*$", diagram, re.M)
    return {(a, b, e) for a, b, e in found}


def test_the_documented_state_diagram_is_the_machine():
    [block] = mermaid_blocks(DOC.read_text(encoding="utf-8"))
    assert block.strip() == mermaid_diagram().strip()
    assert edges(block) == {(s.value, t.value, e) for (s, e), t in TRANSITIONS.items()}


def test_every_event_in_the_table_appears_in_the_doc_table():
    text = DOC.read_text(encoding="utf-8")
    for (_source, event), _target in TRANSITIONS.items():
        assert f"| `{event}` |" in text


def test_the_documented_purge_reason_is_the_one_purge_gives():
    """docs/api.md and docs/cli.md quote a purge's reason for a run with a TTL of 0: it is
    the text the code writes, not a paraphrase of it."""
    from datetime import UTC, datetime

    from hopper_graph.purge import _own_verdict

    row = {"archived_at": "2026-01-05T10:02:00+00:00",
           "config": '{"retention": {"archived_ttl_seconds": 0}}'}
    goes, reason = _own_verdict(row, datetime(2026, 1, 6, tzinfo=UTC), None)
    assert goes and reason == "archived 2026-01-05T10:02:00+00:00, past its retention of 0 s"
    docs = DOC.parent
    assert f'"reason": "{reason}"' in (docs / "api.md").read_text(encoding="utf-8")
    assert f"alpha-run-1  {reason}\n" in (docs / "cli.md").read_text(encoding="utf-8")
