"""An apply document checked before any server is asked: its shape, and cycles among its
parent references."""

from __future__ import annotations

import pytest

from hopper_graph.apply import check_document
from hopper_graph.errors import ValidationError


@pytest.mark.parametrize("data", [None, [], "instances", {"instances": "x"}, {"items": []},
                                  {"instances": [{"name": "g", "scope": "GLOBAL",
                                                  "children": {"name": "p"}}]}])
def test_a_document_of_the_wrong_shape_is_a_validation_error(data):
    with pytest.raises(ValidationError):
        check_document(data)


def test_a_cycle_of_parent_references_is_refused():
    with pytest.raises(ValidationError, match="cycle"):
        check_document({"instances": [
            {"name": "a", "scope": "PROJECT", "project_id": "a", "parent": "PROJECT:b"},
            {"name": "b", "scope": "PROJECT", "project_id": "b", "parent": "PROJECT:a"}]})
