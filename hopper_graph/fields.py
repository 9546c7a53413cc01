"""The instance's fields, listed once: :data:`INSTANCE_FIELDS`.

Every other list of an instance's fields derives from this one (the columns of a
many-instance query, the fields a lean read may select, the properties stored as DATETIME
or as JSON text, the fields equality compares) or is held to it by
``tests/unit/test_fields.py``: the model's slots and constructors, ``to_dict``, the row
readers, ``rules.new_props``, the API's ``InstanceSchema`` and the Cypher fragments that
name the columns. Those stay written out where deriving them would cost speed (the row
readers build 100,000 instances on a tree read) or make them harder to read; the test
fails when a field is added here and not there.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Kind = Literal["id", "text", "enum", "json", "time", "int"]
"""How a field is held: a UUID string, free text, an enum's value, a map stored as JSON
text, a DATETIME (read as ISO-8601 text), an integer."""


class Field(NamedTuple):
    """One field of an instance."""

    name: str
    kind: Kind
    stored: bool
    """A property of the node (False: computed by the model when read; none is yet)."""
    in_api: bool
    """Part of the instance's document: ``to_dict``, the API's InstanceSchema, the fields a
    lean read may select. ``config_set`` is not: it is what ``config`` is merged from."""


# In the order the column queries answer them (cypher/fragments.cypher), which is the order
# of every derived list below.
INSTANCE_FIELDS: tuple[Field, ...] = (
    Field("id", "id", stored=True, in_api=True),
    Field("name", "text", stored=True, in_api=True),
    Field("scope", "enum", stored=True, in_api=True),
    Field("status", "enum", stored=True, in_api=True),
    Field("instance_type", "enum", stored=True, in_api=True),
    Field("parent_id", "id", stored=True, in_api=True),
    Field("project_id", "text", stored=True, in_api=True),
    Field("config", "json", stored=True, in_api=True),
    Field("config_set", "json", stored=True, in_api=False),
    Field("metadata", "json", stored=True, in_api=True),
    Field("labels", "json", stored=True, in_api=True),
    Field("version", "int", stored=True, in_api=True),
    Field("depth", "int", stored=True, in_api=True),
    Field("created_at", "time", stored=True, in_api=True),
    Field("updated_at", "time", stored=True, in_api=True),
    Field("started_at", "time", stored=True, in_api=True),
    Field("stopped_at", "time", stored=True, in_api=True),
    Field("archived_at", "time", stored=True, in_api=True),
    Field("heartbeat_at", "time", stored=True, in_api=True),
)

STORED_FIELDS = tuple(f.name for f in INSTANCE_FIELDS if f.stored)
"""The node's properties: the columns of a many-instance query."""
DOCUMENT_FIELDS = tuple(f.name for f in INSTANCE_FIELDS if f.in_api)
"""The fields of an instance's document (``to_dict``, the API, a lean read's choices)."""
TIME_FIELDS = tuple(f.name for f in INSTANCE_FIELDS if f.kind == "time")
"""The properties stored as DATETIME, which the queries hand over as ISO-8601 text."""
JSON_FIELDS = tuple(f.name for f in INSTANCE_FIELDS if f.kind == "json")
"""The maps, stored as JSON text (Neo4j properties cannot hold maps)."""
