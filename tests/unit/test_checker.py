"""The invariant checker's pure parts, no server needed: cycle finding over edges, and the
violations' kinds and shape."""

from __future__ import annotations

from hopper_graph.checker import KINDS, Violation, find_cycles


def test_find_cycles_is_linear_and_iterative():
    chain = [(str(i), str(i + 1)) for i in range(100_000)]
    assert find_cycles(chain) == []
    loop = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "tail"), ("root", "a")]
    assert find_cycles(chain + loop) == [["a", "b", "c"]]
    assert find_cycles([("x", "y"), ("y", "x"), ("u", "u")]) == [["u"], ["x", "y"]]


def test_every_kind_is_documented_and_violations_serialise():
    violation = Violation("cycle", ("a", "b"), "a and b")
    assert violation.instance_id == "a"
    assert violation.to_dict() == {"kind": "cycle", "instance_ids": ["a", "b"],
                                   "message": "a and b"}
    assert Violation("missing-parent", (), "x").instance_id is None
    assert all(slug == slug.lower() and " " not in slug for slug in KINDS)
