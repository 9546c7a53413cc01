"""The Neo4j Browser guide says what the files hold: every Cypher block of
docs/instance-architecture.md is a named query exactly as cypher/ defines it, every
Browser query is shown there after a `:params` line naming its parameters, the style
file gives each scope its own colour as Browser reads it, and the documented Browser link
is the one the local server prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hopper_graph.cli import cli
from hopper_graph.local_neo4j import LocalNeo4j
from hopper_graph.queries import QUERIES

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "instance-architecture.md"
GRASS = ROOT / "docs" / "browser" / "hopper.grass"
_CYPHER = re.compile(r"```cypher\n(.*?)```", re.S)
_PARAMS_LINE = re.compile(r"^:params \{(.*)\}$", re.M)
BY_NAME = {q.name: q for q in QUERIES}
BROWSER_QUERIES = sorted(q.name for q in QUERIES if q.source == "browser.cypher")


def cypher_blocks() -> list[tuple[int, str]]:
    text = DOC.read_text(encoding="utf-8")
    return [(m.start(), m.group(1)) for m in _CYPHER.finditer(text)]


def split_block(block: str) -> tuple[str, str]:
    """A block's query name (from its `// name:` first line) and its body, the header's
    other `//` lines dropped."""
    lines = block.strip().splitlines()
    assert lines[0].startswith("// name:"), (
        f"a cypher block of {DOC.name} does not start with '// name: QUERY':\n{block}")
    body = lines[1:]
    while body and body[0].startswith("//"):
        body = body[1:]
    return lines[0].removeprefix("// name:").strip(), "\n".join(body).strip()


@pytest.mark.parametrize("block", [block for _, block in cypher_blocks()],
                         ids=lambda block: block.splitlines()[0].removeprefix("// name: "))
def test_every_cypher_block_of_the_doc_is_its_named_query(block):
    name, body = split_block(block)
    assert name in BY_NAME, f"{DOC.name} shows a query named {name!r}, which cypher/ lacks"
    assert body == BY_NAME[name].text, (
        f"{DOC.name} shows {name} unlike {BY_NAME[name].source}; "
        f"`hopper-graph query show {name}` prints the query as it is")


def test_the_doc_shows_every_browser_query_after_its_params_line():
    text = DOC.read_text(encoding="utf-8")
    shown = {}
    for start, block in cypher_blocks():
        name, _ = split_block(block)
        params_lines = _PARAMS_LINE.findall(text[:start])
        shown[name] = (set(re.findall(r"([A-Za-z_]\w*)\s*:", params_lines[-1]))
                       if params_lines else set())
    assert len(BROWSER_QUERIES) >= 8
    for name in BROWSER_QUERIES:
        assert name in shown, f"{DOC.name} does not show {name}"
        assert shown[name] == BY_NAME[name].params, (
            f"the :params line before {name} names {sorted(shown[name])}, "
            f"the query takes {sorted(BY_NAME[name].params)}")


@pytest.mark.parametrize("name", BROWSER_QUERIES)
def test_query_show_prints_the_browser_queries(name):
    result = CliRunner().invoke(cli, ["query", "show", name])
    assert result.exit_code == 0, result.output
    assert BY_NAME[name].text in result.output
    for param in BY_NAME[name].params:
        assert f":param {param} => " in result.output


def test_browser_queries_return_rows_or_paths_never_parallel_lists():
    """The library's shape (one record of lists, `[p IN props | ...]`) is what these
    queries exist to avoid."""
    for name in BROWSER_QUERIES:
        assert "IN props" not in BY_NAME[name].text and "collect(" not in BY_NAME[name].text


_RAW_INTEGER_PARAM = re.compile(r"\b(?:SKIP|LIMIT)\s+\$|\[\s*\$\w+\s*\.\.|\.\.\s*\$")


@pytest.mark.parametrize("query", sorted(QUERIES, key=lambda q: q.name), ids=lambda q: q.name)
def test_no_query_takes_an_integer_straight_from_a_parameter(query):
    """SKIP, LIMIT and list slices want integers, and Browser's `:params` maps send
    floats: a number there goes through toInteger() (the integration test runs every
    query with floats; this names the line at once)."""
    found = _RAW_INTEGER_PARAM.findall(query.text)
    assert not found, f"{query.name} ({query.source}) uses {found}: write toInteger($x)"


# -- the style file, read as Neo4j Browser 5 reads it ---------------------------------------
def parse_grass(text: str) -> dict[str, dict[str, str]]:
    """Neo4j Browser's own GraSS reader (parseGrass in its bundle), in Python: selectors
    lose their whitespace, quotes are dropped, and a property is `name: value` with no
    other colon in it."""
    rules: dict[str, str] = {}
    quoted = inside = nested = False
    selector = body = ""
    for char in text:
        special = True
        if char == "{":
            if quoted:
                special = False
            elif inside:
                nested = True
            else:
                inside = True
        elif char == "}":
            if quoted:
                special = False
            elif nested:
                nested = False
            else:
                inside = False
                rules[selector], selector, body = body, "", ""
        elif char in "'\"":
            quoted = not quoted
        else:
            special = False
        if not special:
            if inside:
                body += char
            elif not char.isspace():
                selector += char
    parsed: dict[str, dict[str, str]] = {}
    for name, props in rules.items():
        pairs = [part.split(":") for part in props.split(";")]
        parsed[name] = {p[0].strip(): p[1].strip() for p in pairs if len(p) == 2}
    return parsed


def style_of(rules: dict[str, dict[str, str]], labels: list[str]) -> dict[str, str]:
    """What Browser draws a node with: every rule whose classes the node has, in the
    file's order, later ones winning."""
    style: dict[str, str] = {}
    for selector, props in rules.items():
        kind, *classes = selector.split(".")
        if kind == "node" and set(classes) <= set(labels):
            style |= props
    return style


SCOPES = {"GlobalInstance": ["HopperInstance", "GlobalInstance"],
          "ProjectInstance": ["HopperInstance", "ProjectInstance"],
          "TopProject": ["HopperInstance", "ProjectInstance", "TopProject"],
          "OrchestrationInstance": ["HopperInstance", "OrchestrationInstance"]}


def test_the_style_file_parses_as_browser_reads_it():
    rules = parse_grass(GRASS.read_text(encoding="utf-8"))
    assert all(re.fullmatch(r"(node|relationship)(\.\w+)?", s) for s in rules), list(rules)
    for selector in ("node.GlobalInstance", "node.ProjectInstance",
                     "node.OrchestrationInstance"):
        assert {"caption", "diameter"} <= set(rules[selector]), selector
    # A label whose rule has no colour gets one of Browser's own, written into that rule
    # in place, and the rule's place decides: TopProject would paint its PROJECTs grey.
    for selector, props in rules.items():
        assert selector.startswith("relationship") or "color" in props, selector


def test_each_scope_has_its_own_colour_and_shows_its_name():
    rules = parse_grass(GRASS.read_text(encoding="utf-8"))
    styles = {scope: style_of(rules, labels) for scope, labels in SCOPES.items()}
    colours = {scope: style["color"] for scope, style in styles.items()}
    assert len({colours[s] for s in ("GlobalInstance", "ProjectInstance",
                                     "OrchestrationInstance")}) == 3, colours
    assert colours["TopProject"] == colours["ProjectInstance"]
    assert all(style["caption"] == "{name}" for style in styles.values()), styles
    assert all(re.fullmatch(r"#[0-9A-Fa-f]{6}", c) for c in colours.values()), colours


# -- the Browser link ---------------------------------------------------------------------
LINK = "http://127.0.0.1:7474/browser/?dbms=bolt://127.0.0.1:7687&preselectAuthMethod=NO_AUTH"


def test_the_browser_link_preselects_the_configured_server_and_no_auth(monkeypatch):
    for name in ("HOPPER_NEO4J_BOLT_PORT", "HOPPER_NEO4J_HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert LocalNeo4j.from_env().browser_url == LINK
    monkeypatch.setenv("HOPPER_NEO4J_BOLT_PORT", "17687")
    monkeypatch.setenv("HOPPER_NEO4J_HTTP_PORT", "17474")
    assert LocalNeo4j.from_env().browser_url == (
        "http://127.0.0.1:17474/browser/?dbms=bolt://127.0.0.1:17687"
        "&preselectAuthMethod=NO_AUTH")


@pytest.mark.parametrize("doc", ["README.md", "docs/instance-architecture.md"])
def test_the_docs_give_the_link_the_server_prints(doc):
    assert LINK in (ROOT / doc).read_text(encoding="utf-8")


def test_the_style_file_shows_labels_as_key_edges_to_value_nodes():
    """A label is drawn as its instance's LABELED edge, captioned with the key, to the
    shared Label node, captioned with the value: `team` -> `infra`."""
    rules = parse_grass(GRASS.read_text(encoding="utf-8"))
    assert rules["node.Label"]["caption"] == "{value}"
    assert rules["relationship.LABELED"]["caption"] == "{key}"
    assert rules["node.Label"]["color"] not in {
        rules[f"node.{s}"]["color"] for s in ("GlobalInstance", "ProjectInstance",
                                               "OrchestrationInstance", "InstanceEvent")}
