"""The named-query loader (hopper_graph/queries.py): the real cypher/ folder, and every way a
file can break the convention, each of which must fail loudly with QueryFileError."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from hopper_graph.errors import QueryFileError
from hopper_graph.queries import QUERIES, NamedQuery, Queries, parse_file
from hopper_graph.resources import cypher_dir
from hopper_graph.rows import EVENT_COLUMNS, INSTANCE_COLUMNS

CHECKOUT_CYPHER = Path(__file__).resolve().parents[2] / "cypher"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def parse_one(tmp_path: Path, text: str) -> NamedQuery:
    [query] = parse_file(write(tmp_path, "one.cypher", text))
    return query


# -- the real folder --------------------------------------------------------------------------


def test_the_checkout_folder_is_the_one_loaded():
    assert cypher_dir() == CHECKOUT_CYPHER
    assert QUERIES.folder == CHECKOUT_CYPHER


def test_every_query_of_every_real_file_is_loaded():
    files = sorted(CHECKOUT_CYPHER.glob("*.cypher"))
    assert files, "cypher/ holds no .cypher files"
    headers = [line.strip()[len("// name:"):].strip()
               for path in files for line in path.read_text(encoding="utf-8").splitlines()
               if line.strip().startswith("// name:")]
    assert sorted(q.name for q in QUERIES) == sorted(headers)
    assert len(QUERIES) == len(headers) == len(set(headers))
    fragment_files = {f.source for f in QUERIES.fragments.values()}
    assert {q.source for q in QUERIES} | fragment_files == {path.name for path in files}


def test_the_hierarchy_queries_the_repository_needs_are_there():
    for name in ("get_children", "get_ancestors", "get_descendants", "get_subtree",
                 "get_global_instance", "get_instances_by_status", "create_child_instance",
                 "get_parent_for_create", "transition_instances", "sequence_events",
                 "append_events", "get_history"):
        query = getattr(QUERIES, name)
        assert query.name == name
        assert query.text and query.doc, f"{name} needs a body and a description"


def test_real_queries_have_a_description_and_no_header_in_their_body():
    for query in QUERIES:
        assert query.doc, f"{query.name} ({query.source}) has no description line"
        assert "// name:" not in query.text
        assert not query.text.startswith("//")


def test_an_unknown_name_is_an_attribute_error_naming_the_folder():
    with pytest.raises(AttributeError, match="no named query 'nope'"):
        _ = QUERIES.nope


# -- a well-formed file ---------------------------------------------------------------------


def test_header_doc_params_and_body_are_split(tmp_path):
    query = parse_one(tmp_path, """
        // A comment before the first header is allowed.

        // name: get_thing
        // Finds one thing
        // by its id.
        // params: id, limit
        MATCH (n:Thing {id: $id})
        RETURN n
        LIMIT $limit
        """)
    assert query.name == "get_thing"
    assert query.doc == "Finds one thing by its id."
    assert query.params == frozenset({"id", "limit"})
    assert query.text == "MATCH (n:Thing {id: $id})\nRETURN n\nLIMIT $limit"
    assert query.source == "one.cypher"


def test_params_dash_declares_none(tmp_path):
    query = parse_one(tmp_path, """
        // name: count_things
        // How many things there are.
        // params: -
        MATCH (n:Thing) RETURN count(n) AS total
        """)
    assert query.params == frozenset()


def test_params_may_be_written_with_dollars_and_spaces(tmp_path):
    query = parse_one(tmp_path, """
        // name: q
        // params: $a ,  $b
        RETURN $a + $b
        """)
    assert query.params == frozenset({"a", "b"})


def test_several_queries_in_one_file_keep_their_order(tmp_path):
    path = write(tmp_path, "many.cypher", """
        // name: first
        // params: -
        RETURN 1

        // name: second
        // params: x
        RETURN $x
        """)
    assert [q.name for q in parse_file(path)] == ["first", "second"]


def test_labels_and_map_keys_are_not_parameters(tmp_path):
    query = parse_one(tmp_path, """
        // name: q
        // params: id
        MATCH (n:HopperInstance:GlobalInstance {id: $id})-[:PARENT_OF]->(c)
        RETURN c {.*, parent_id: n.id} AS child
        """)
    assert query.params == frozenset({"id"})


def test_dollar_inside_string_literals_is_ignored(tmp_path):
    query = parse_one(tmp_path, """
        // name: q
        // params: id
        MATCH (n {id: $id})
        WHERE n.price <> '$notaparam' AND n.note <> "costs $also_not"
          AND n.quoted <> 'it\\'s $escaped'
        RETURN n, 'http://example.org/$path' AS url
        """)
    assert query.params == frozenset({"id"})


def test_dollar_inside_line_comments_is_ignored(tmp_path):
    query = parse_one(tmp_path, """
        // name: q
        // params: id
        // $header_comment is documentation, not a parameter
        MATCH (n {id: $id})
        // $whole_line_comment
        RETURN n  // $trailing_comment
        """)
    assert query.params == frozenset({"id"})


def test_an_apostrophe_in_a_trailing_comment_hides_no_parameter(tmp_path):
    query = parse_one(tmp_path, """
        // name: q
        // params: id, x
        MATCH (n {id: $id})  // the parent's lock
        SET n.x = $x  // it's needed
        """)
    assert query.params == frozenset({"id", "x"})


def test_dollar_inside_block_comments_is_ignored(tmp_path):
    query = parse_one(tmp_path, """
        // name: q
        // params: id
        MATCH (n {id: $id})
        /* $ghost is only mentioned here */
        RETURN n
        """)
    assert query.params == frozenset({"id"})


# -- files that must fail loudly ------------------------------------------------------------


def test_duplicate_name_across_files_names_both_files(tmp_path):
    write(tmp_path, "a.cypher", """
        // name: twice
        // params: -
        RETURN 1
        """)
    write(tmp_path, "b.cypher", """
        // name: twice
        // params: -
        RETURN 2
        """)
    with pytest.raises(QueryFileError, match=r"'twice' is defined in a\.cypher and again in "
                                             r"b\.cypher"):
        Queries(tmp_path)


def test_duplicate_name_within_one_file(tmp_path):
    write(tmp_path, "a.cypher", """
        // name: twice
        // params: -
        RETURN 1

        // name: twice
        // params: -
        RETURN 2
        """)
    with pytest.raises(QueryFileError, match="'twice' is defined"):
        Queries(tmp_path)


def test_empty_body(tmp_path):
    write(tmp_path, "a.cypher", """
        // name: hollow
        // Says something but does nothing.
        // params: -

        // name: next
        // params: -
        RETURN 1
        """)
    with pytest.raises(QueryFileError, match=r"a\.cypher: query 'hollow' has an empty body"):
        Queries(tmp_path)


def test_empty_body_at_the_end_of_a_file(tmp_path):
    write(tmp_path, "a.cypher", """
        // name: last
        // params: -
        """)
    with pytest.raises(QueryFileError, match="'last' has an empty body"):
        parse_file(tmp_path / "a.cypher")


def test_missing_params_line(tmp_path):
    write(tmp_path, "a.cypher", """
        // name: undeclared
        // No params line below.
        MATCH (n) RETURN n
        """)
    with pytest.raises(QueryFileError, match="'undeclared' lacks a '// params:' line"):
        Queries(tmp_path)


def test_params_line_inside_the_body_does_not_count(tmp_path):
    write(tmp_path, "a.cypher", """
        // name: late
        MATCH (n)
        // params: -
        RETURN n
        """)
    with pytest.raises(QueryFileError, match="'late' lacks a '// params:' line"):
        Queries(tmp_path)


def test_parameter_used_but_not_declared(tmp_path):
    write(tmp_path, "a.cypher", """
        // name: sneaky
        // params: id
        MATCH (n {id: $id}) SET n.name = $name
        """)
    with pytest.raises(QueryFileError, match=r"'sneaky' uses \['id', 'name'\] but declares "
                                             r"\['id'\]"):
        Queries(tmp_path)


def test_parameter_declared_but_not_used(tmp_path):
    write(tmp_path, "a.cypher", """
        // name: stale
        // params: id, gone
        MATCH (n {id: $id}) RETURN n
        """)
    with pytest.raises(QueryFileError, match=r"'stale' uses \['id'\] but declares "
                                             r"\['gone', 'id'\]"):
        Queries(tmp_path)


def test_params_dash_with_a_parameter_in_the_body(tmp_path):
    write(tmp_path, "a.cypher", """
        // name: liar
        // params: -
        RETURN $x
        """)
    with pytest.raises(QueryFileError, match="'liar' uses"):
        Queries(tmp_path)


def test_text_before_the_first_header(tmp_path):
    write(tmp_path, "a.cypher", """
        MATCH (orphan) RETURN orphan

        // name: fine
        // params: -
        RETURN 1
        """)
    with pytest.raises(QueryFileError, match=r"a\.cypher: text before the first '// name:'"):
        Queries(tmp_path)


def test_a_name_that_is_not_an_identifier(tmp_path):
    write(tmp_path, "a.cypher", """
        // name: get-children
        // params: -
        RETURN 1
        """)
    with pytest.raises(QueryFileError, match="'get-children' is not an identifier"):
        Queries(tmp_path)


def test_a_folder_without_cypher_files(tmp_path):
    (tmp_path / "notes.txt").write_text("// name: q\n// params: -\nRETURN 1\n")
    with pytest.raises(QueryFileError, match=r"no \.cypher files"):
        Queries(tmp_path)


def test_one_bad_file_spoils_the_folder(tmp_path):
    write(tmp_path, "good.cypher", """
        // name: good
        // params: -
        RETURN 1
        """)
    write(tmp_path, "bad.cypher", """
        // name: bad
        // params: x
        RETURN 1
        """)
    with pytest.raises(QueryFileError, match=r"bad\.cypher"):
        Queries(tmp_path)


def test_query_file_error_is_a_value_error():
    assert issubclass(QueryFileError, ValueError)


# -- fragments ----------------------------------------------------------------------------------
def _aliases(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\bAS (\w+)", text))


def test_the_column_fragments_name_the_columns_the_models_read():
    """The many-instance and many-event queries answer with these columns, in this order."""
    assert _aliases(QUERIES.fragments["instance_columns"].text) == INSTANCE_COLUMNS
    assert _aliases(QUERIES.fragments["instance_columns_of_rows"].text) == INSTANCE_COLUMNS
    assert _aliases(QUERIES.fragments["event_columns"].text) == EVENT_COLUMNS


def test_no_real_query_pastes_the_instance_projection():
    """A property added to instances is one edit, in cypher/fragments.cypher."""
    for path in CHECKOUT_CYPHER.glob("*.cypher"):
        if path.name != QUERIES.fragments["instance_map"].source:
            assert "toString(p.heartbeat_at)" not in path.read_text(encoding="utf-8"), path
            assert not re.search(r"heartbeat_at: toString", path.read_text(encoding="utf-8"))


def test_a_fragment_is_spliced_in_with_the_query_variable_and_indent(tmp_path):
    write(tmp_path, "a.cypher", """
        // fragment: pair(node)
        // Two properties of a node.
        node.id AS id,
        node.name AS name

        // name: one
        // A query using the fragment.
        // params: id
        MATCH (x {id: $id})
        RETURN x.version AS version,
               {{pair(x)}}
        """)
    query = Queries(tmp_path).one
    assert query.text.splitlines()[-2:] == ["       x.id AS id,", "       x.name AS name"]
    assert query.params == {"id"}


def test_an_unknown_fragment_fails_loading(tmp_path):
    write(tmp_path, "a.cypher", """
        // name: one
        // params: -
        RETURN {{missing}}
        """)
    with pytest.raises(QueryFileError, match="unknown fragment 'missing'"):
        Queries(tmp_path)


def test_an_unused_fragment_fails_loading(tmp_path):
    write(tmp_path, "a.cypher", """
        // fragment: spare
        1 AS one

        // name: one
        // params: -
        RETURN 2
        """)
    with pytest.raises(QueryFileError, match=r"'spare' of a\.cypher is used by no query"):
        Queries(tmp_path)


def test_a_fragment_used_without_its_variable_fails_loading(tmp_path):
    write(tmp_path, "a.cypher", """
        // fragment: pair(node)
        node.id AS id

        // name: one
        // params: -
        MATCH (x) RETURN {{pair}}
        """)
    with pytest.raises(QueryFileError, match=r"used as \{\{pair\(node\)\}\}"):
        Queries(tmp_path)


def test_parameters_a_fragment_brings_are_checked_after_splicing(tmp_path):
    """The query declares what it runs with, fragments included."""
    write(tmp_path, "a.cypher", """
        // fragment: by_name(node)
        node.name = $name

        // name: one
        // params: id
        MATCH (x {id: $id}) WHERE {{by_name(x)}} RETURN x
        """)
    with pytest.raises(QueryFileError, match="uses \\['id', 'name'\\] but declares"):
        Queries(tmp_path)


def test_a_fragment_may_use_another_but_not_itself(tmp_path):
    write(tmp_path, "a.cypher", """
        // fragment: inner(node)
        node.id AS id

        // fragment: outer(node)
        node.name AS name, {{inner(node)}}

        // name: one
        // params: -
        MATCH (x) RETURN {{outer(x)}}
        """)
    assert Queries(tmp_path).one.text == "MATCH (x) RETURN x.name AS name, x.id AS id"
    write(tmp_path, "a.cypher", """
        // fragment: loop
        1 AS one, {{loop}}

        // name: one
        // params: -
        RETURN {{loop}}
        """)
    with pytest.raises(QueryFileError, match="'loop' uses itself"):
        Queries(tmp_path)


# -- the conventions of the real files, which the loader itself does not check -----------
ALL_QUERIES = sorted(QUERIES, key=lambda q: q.name)
_FORMATTING_ARTEFACTS = re.compile(r"\{\d*\}|%[sdr]|%\(\w+\)[sdr]|\{[A-Za-z_]\w*!r\}")


def declared_params_line(query: NamedQuery) -> str:
    """The raw ``// params:`` line of a query, read back from its file."""
    lines = (QUERIES.folder / query.source).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.strip() == f"// name: {query.name}")
    for line in lines[start + 1:]:
        stripped = line.strip()
        if stripped.startswith("// params:"):
            return stripped[len("// params:"):].strip()
        if not stripped.startswith("//"):
            break
    raise AssertionError(f"{query.name}: no params line in its header")


def test_there_are_named_queries():
    assert len(ALL_QUERIES) >= 10


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_no_string_formatting_artefacts(query):
    found = _FORMATTING_ARTEFACTS.findall(query.text)
    assert not found, f"{query.name} ({query.source}) contains {found}"


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_params_are_declared_or_explicitly_none(query):
    line = declared_params_line(query)
    if query.params:
        assert line != "-"
        assert {p.strip().lstrip("$") for p in line.split(",")} == set(query.params)
    else:
        assert line == "-", f"{query.name} declares no parameters but not as '// params: -'"


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_no_query_ends_with_a_semicolon(query):
    """The driver sends one statement; Browser runs it as written after :param lines."""
    assert not query.text.rstrip().endswith(";"), query.name
