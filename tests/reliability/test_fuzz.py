"""Fuzz every operation of the OpenAPI document with schemathesis, a bounded number of
examples each, through the WSGI app: no answer may be a 5xx, and every answer must conform
to the document (status code, content type, headers, body schema), and invalid input must
be refused.

The operations are read from the document at collection time (from an app that never
connects), so an endpoint added to the API is fuzzed without touching this file. Each
operation gets a small graph to aim at: half of the generated ids are real ones.

``HOPPER_FUZZ_EXAMPLES`` (default 25) sets the examples per operation; the figures of the
last run go to tests/reliability/results/fuzz.json.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import EXTENSION, create_app
from tests.factories import make_global, make_orchestration, make_project
from tests.reliability.conftest import API, assert_consistent, write_results

EXAMPLES = int(os.environ.get("HOPPER_FUZZ_EXAMPLES", "25"))
TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OPENAPI = f"{API}/openapi.json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, negative_data_rejection]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the document, from an app that never connects
    (creating a driver does not; the schema is not applied)."""
    app = create_app({"HOPPER_NEO4J_URI": "bolt://127.0.0.1:9", "HOPPER_APPLY_SCHEMA": False,
                      "HOPPER_API_TOKEN": None})
    try:
        document = app.test_client().get(OPENAPI).get_json()
    finally:
        app.extensions[EXTENSION].close()
    methods = {"get", "put", "post", "patch", "delete"}
    # An event stream never ends, and a case reads its whole body: its input is tested in
    # tests/api/test_event_stream.py instead.
    return [(method.upper(), path) for path, item in document["paths"].items()
            for method, operation in item.items() if method in methods
            and "text/event-stream" not in operation["responses"].get("200", {}).get(
                "content", {})]


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def figures() -> Iterator[dict[str, Any]]:
    """Per operation: examples run, answers by status, known-bug hits; written at the end."""
    collected: dict[str, Any] = {}
    yield collected
    if collected:
        total: Counter[str] = Counter()
        for entry in collected.values():
            total.update(entry["by_status"])
        write_results("fuzz", {
            "examples_per_operation": EXAMPLES, "operations": len(collected),
            "requests": sum(total.values()), "by_status": dict(sorted(total.items())),
            "known_bug_hits": sum(e["known_bug_hits"] for e in collected.values()),
            "seconds": round(sum(e["seconds"] for e in collected.values()), 1),
            "per_operation": collected})


def _strategy(operation: Any, ids: list[str]) -> st.SearchStrategy[Any]:
    """Cases in both modes, half of them aimed at instances (or the project) that exist."""
    fixed: list[dict[str, str]] = [{}]
    names = {p.name for p in operation.path_parameters}
    if "instance_id" in names:
        fixed += [{"instance_id": i} for i in ids]
    if "project_id" in names:
        fixed += [{"project_id": "alpha"}]
    strategies = []
    for mode in MODES:
        for path_parameters in fixed:
            try:
                strategies.append(operation.as_strategy(mode, path_parameters=path_parameters
                                                        or None))
            except Exception:  # e.g. nothing left to make negative once the path is fixed
                continue
    return st.one_of(strategies)


KNOWN_BUGS: dict[str, Callable[[Any, Any], bool]] = {}
"""Name -> whether a 500 is an instance of a known, unfixed bug, counted rather than failed
so the fuzzer keeps looking for new ones. Empty: everything it found is fixed
(docs/reliability.md, "Found and fixed"), so any 500 fails the run."""


def known_bug(case: Any, response: Any) -> str | None:
    """The known bug a 500 is an instance of, if any; those are counted, not failed, so the
    fuzzer keeps looking for new ones."""
    if response.status_code != 500:
        return None
    return next((name for name, matches in KNOWN_BUGS.items() if matches(case, response)),
                None)


@pytest.mark.parametrize(("method", "path"), OPERATIONS,
                         ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_operation(method, path, make_app, lib, clean_graph, database, figures):
    g = make_global(lib)
    lib.start(g.id)
    p = make_project(lib, g, name="alpha")
    lib.start(p.id)
    run = make_orchestration(lib, p, name="run-1")
    app = make_app(HOPPER_API_TOKEN=TOKEN)
    schema = schemathesis.openapi.from_wsgi(OPENAPI, app)
    # The token is sent with every case; refusing a missing one is test_security's job.
    schema.config.generation.update(with_security_parameters=False)
    operation = schema[path][method.lower()]
    by_status: Counter[int] = Counter()
    known: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=_strategy(operation, [g.id, p.id, run.id]))
    def fuzz(case: Any) -> None:
        response = case.call(headers=AUTH)
        by_status[response.status_code] += 1
        bug = known_bug(case, response)
        if bug is not None:
            known[bug] += 1
            return
        case.validate_response(response, checks=CHECKS)

    started = time.monotonic()
    fuzz()
    figures[f"{method} {path}"] = {
        "examples": sum(by_status.values()), "by_status": dict(sorted(by_status.items())),
        "known_bug_hits": sum(known.values()), "known_bugs": dict(known),
        "seconds": round(time.monotonic() - started, 2)}
    assert_consistent(clean_graph, database)
