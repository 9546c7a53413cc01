"""Export files read and written without a server: what cannot be read is refused, saying
why."""

from __future__ import annotations

import pytest

from hopper_graph import ValidationError
from hopper_graph.transfer import read_export, write_export


def test_unreadable_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ValidationError, match="not valid JSON"):
        read_export(bad)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValidationError, match="map"):
        read_export(tmp_path / "list.yaml")
    with pytest.raises(ValidationError, match="unknown file type"):
        write_export({}, tmp_path / "backup.txt")
