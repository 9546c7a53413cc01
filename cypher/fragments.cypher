// Text the named queries share, written once: a query writes {{instance_map(n)}} or
// {{instance_columns(props)}} and the loader (hopper_graph/queries.py) splices the text
// in, with the query's own variable. `hopper-graph query show NAME` prints a query as the
// server runs it, ready for Neo4j Browser.

// fragment: instance_map(node)
// One instance as a map of its properties, the timestamps (TIME_FIELDS, fields.py) as
// ISO-8601 text: the Python driver converts a DATETIME value about fifty times slower
// than a string.
node {.*,
    created_at: toString(node.created_at), updated_at: toString(node.updated_at),
    started_at: toString(node.started_at), stopped_at: toString(node.stopped_at),
    archived_at: toString(node.archived_at), heartbeat_at: toString(node.heartbeat_at)}

// fragment: instance_columns(props)
// Many instances as parallel lists, one per property, in the order of INSTANCE_COLUMNS
// (rows.py: the stored fields of INSTANCE_FIELDS, fields.py), from `props`, a list of their
// property maps (properties(x) reads a node's properties in one pass). A unit test
// (tests/unit/test_fields.py) holds the two lists of names equal.
[p IN props | p.id] AS id, [p IN props | p.name] AS name,
[p IN props | p.scope] AS scope, [p IN props | p.status] AS status,
[p IN props | p.instance_type] AS instance_type, [p IN props | p.parent_id] AS parent_id,
[p IN props | p.project_id] AS project_id, [p IN props | p.config] AS config,
[p IN props | p.config_set] AS config_set, [p IN props | p.metadata] AS metadata,
[p IN props | p.labels] AS labels, [p IN props | p.version] AS version, [p IN props | p.depth] AS depth,
[p IN props | toString(p.created_at)] AS created_at,
[p IN props | toString(p.updated_at)] AS updated_at,
[p IN props | toString(p.started_at)] AS started_at,
[p IN props | toString(p.stopped_at)] AS stopped_at,
[p IN props | toString(p.archived_at)] AS archived_at,
[p IN props | toString(p.heartbeat_at)] AS heartbeat_at

// fragment: instance_columns_of_rows(p)
// As instance_columns, aggregated from rows that each hold one instance's property map
// `p`: collect() over rows is about a sixth cheaper than a list comprehension per column
// over a list of maps (a 100,000-instance subtree: ~1.3 s against ~1.6 s at the server),
// so the whole-subtree reads use this one. collect() leaves nulls out, which would shift
// a column against the others, so every column carries '' (or 0) for null, and the
// models read '' back as null; an instance deleted as it was read has every property
// null, so its id reads '' and it is left out. The answer is always one row.
collect(coalesce(p.id, '')) AS id, collect(coalesce(p.name, '')) AS name,
collect(coalesce(p.scope, '')) AS scope, collect(coalesce(p.status, '')) AS status,
collect(coalesce(p.instance_type, '')) AS instance_type,
collect(coalesce(p.parent_id, '')) AS parent_id,
collect(coalesce(p.project_id, '')) AS project_id, collect(coalesce(p.config, '')) AS config,
collect(coalesce(p.config_set, '')) AS config_set,
collect(coalesce(p.metadata, '')) AS metadata,
collect(coalesce(p.labels, '')) AS labels, collect(coalesce(p.version, 0)) AS version,
collect(coalesce(p.depth, 0)) AS depth,
collect(coalesce(toString(p.created_at), '')) AS created_at,
collect(coalesce(toString(p.updated_at), '')) AS updated_at,
collect(coalesce(toString(p.started_at), '')) AS started_at,
collect(coalesce(toString(p.stopped_at), '')) AS stopped_at,
collect(coalesce(toString(p.archived_at), '')) AS archived_at,
collect(coalesce(toString(p.heartbeat_at), '')) AS heartbeat_at

// fragment: event_columns(props)
// Many audit events as parallel lists, in the order of EVENT_COLUMNS (rows.py).
[p IN props | p.id] AS id, [p IN props | p.seq] AS seq,
[p IN props | p.instance_id] AS instance_id, [p IN props | p.event] AS event,
[p IN props | p.from_status] AS from_status, [p IN props | p.to_status] AS to_status,
[p IN props | p.actor] AS actor, [p IN props | p.reason] AS reason,
[p IN props | p.cause] AS cause, [p IN props | toString(p.at)] AS at,
[p IN props | p.from_parent_id] AS from_parent_id,
[p IN props | p.to_parent_id] AS to_parent_id

// fragment: seek_from_cursor(node)
// Where a page in creation order starts reading its index: at the cursor's time, a range
// the planner seeks; `id IS NOT NULL` lets it take the index's last key as well, so the
// rows come in page order and the ORDER BY after it needs no sort.
node.created_at >= $after_at AND node.id IS NOT NULL

// fragment: after_cursor(node)
// Keyset paging in creation order: the rows after the cursor ($after_at, $after_id). The
// query seeks its index with `created_at >= $after_at` (an OR there would turn the seek
// into a union and a sort) and drops the cursor's own row and its equals here, after the
// index has given the rows in page order. The first page passes the earliest time and an
// empty id.
(node.created_at > $after_at OR node.id > $after_id)

// fragment: list_filters(node)
// The filters of a list (a null one matches everything; so does an empty $selector). Only ever applied to the rows an
// index seek found by one of them; alone, `$x IS NULL OR ...` would scan every instance.
($scope IS NULL OR node.scope = $scope) AND ($status IS NULL OR node.status = $status)
AND ($parent_id IS NULL OR node.parent_id = $parent_id)
AND ($project_id IS NULL OR node.project_id = $project_id)
AND {{selector_matches(node)}}

// fragment: open_children(parent)
// How many children of `parent` count toward its limits.max_child_instances (ARCHIVED ones
// do not), from the (parent_id, status) index: the cost follows the children that count,
// which the limit bounds, not the archived runs a busy project piles up. The hint keeps a
// plan made while the graph was small (a label scan, then cached) from ever scanning.
COUNT { MATCH (c:HopperInstance {parent_id: parent.id})
        USING INDEX SEEK c:HopperInstance(parent_id, status)
        WHERE c.status IN ['CREATED', 'ACTIVE', 'PAUSED', 'STOPPED'] }

// fragment: sibling_types(parent)
// What the SINGLETON rule needs of the children of `parent` in $scope: 'SINGLETON' if one
// of them is, 'any' if there is any at all; two seeks of the (parent_id, scope,
// instance_type) index, where reading every same-scope sibling made filling a wide parent
// quadratic.
[t IN ['SINGLETON'] WHERE EXISTS {
   MATCH (s:HopperInstance {parent_id: parent.id, scope: $scope, instance_type: t})
   USING INDEX SEEK s:HopperInstance(parent_id, scope, instance_type) }]
+ [t IN ['any'] WHERE EXISTS {
   MATCH (s:HopperInstance {parent_id: parent.id, scope: $scope})
   USING INDEX SEEK s:HopperInstance(parent_id, scope, instance_type)
   WHERE s.instance_type IS NOT NULL }]

// fragment: selected_columns(xs)
// Instances as parallel lists, as instance_columns, but only the lists named in $fields
// (any of the document's fields, rules.FIELDS): one test per column, not per instance,
// and a column not asked for is null, neither read nor sent.
CASE WHEN 'id' IN $fields THEN [x IN xs | x.id] END AS id,
CASE WHEN 'name' IN $fields THEN [x IN xs | x.name] END AS name,
CASE WHEN 'scope' IN $fields THEN [x IN xs | x.scope] END AS scope,
CASE WHEN 'status' IN $fields THEN [x IN xs | x.status] END AS status,
CASE WHEN 'instance_type' IN $fields THEN [x IN xs | x.instance_type] END AS instance_type,
CASE WHEN 'parent_id' IN $fields THEN [x IN xs | x.parent_id] END AS parent_id,
CASE WHEN 'project_id' IN $fields THEN [x IN xs | x.project_id] END AS project_id,
CASE WHEN 'config' IN $fields THEN [x IN xs | x.config] END AS config,
CASE WHEN 'metadata' IN $fields THEN [x IN xs | x.metadata] END AS metadata,
CASE WHEN 'labels' IN $fields THEN [x IN xs | x.labels] END AS labels,
CASE WHEN 'version' IN $fields THEN [x IN xs | x.version] END AS version,
CASE WHEN 'depth' IN $fields THEN [x IN xs | x.depth] END AS depth,
CASE WHEN 'created_at' IN $fields THEN [x IN xs | toString(x.created_at)] END AS created_at,
CASE WHEN 'updated_at' IN $fields THEN [x IN xs | toString(x.updated_at)] END AS updated_at,
CASE WHEN 'started_at' IN $fields THEN [x IN xs | toString(x.started_at)] END AS started_at,
CASE WHEN 'stopped_at' IN $fields THEN [x IN xs | toString(x.stopped_at)] END AS stopped_at,
CASE WHEN 'archived_at' IN $fields THEN [x IN xs | toString(x.archived_at)] END AS archived_at,
CASE WHEN 'heartbeat_at' IN $fields THEN [x IN xs | toString(x.heartbeat_at)] END AS heartbeat_at

// fragment: list_page(n)
// The answer of a list query (the total when $with_total asks for it, and the page), from the rows its index gave in page order: after the cursor,
// through the filters, skipped by $skip (offset paging) and cut at $limit. With
// $with_total (offset paging, whose cursor is the start) the same stream is read to its
// end and counted, so the total costs every match and the page stays one seek.
WITH n WHERE {{after_cursor(n)}} AND {{list_filters(n)}}
WITH n LIMIT CASE WHEN $with_total THEN 4611686018427387904
                  ELSE toInteger($skip) + toInteger($limit) END
WITH collect(n) AS matched
WITH CASE WHEN $with_total THEN size(matched) END AS total,
     [x IN matched[toInteger($skip)..toInteger($skip) + toInteger($limit)] | properties(x)]
       AS props
RETURN total, {{instance_columns(props)}}

// fragment: scope_label(node)
// The label of `node`'s scope (GlobalInstance, ProjectInstance or OrchestrationInstance),
// from the scope `node` already holds. A label is never a parameter: each is written out
// here, and only the one whose scope matches is set.
FOREACH (_ IN CASE node.scope WHEN 'GLOBAL' THEN [1] ELSE [] END | SET node:GlobalInstance)
FOREACH (_ IN CASE node.scope WHEN 'PROJECT' THEN [1] ELSE [] END | SET node:ProjectInstance)
FOREACH (_ IN CASE node.scope WHEN 'ORCHESTRATION' THEN [1] ELSE [] END |
  SET node:OrchestrationInstance)

// fragment: write_labels(node)
// Makes `node`'s LABELED edges those of `label_pairs` (its labels as 'key=value' text,
// labels.pairs in Python), a variable the query binds: the old edges go, and each label
// gets an edge to its shared (:Label {key, value}) node, merged (the constraint on
// (key, value) keeps one per pair however creates race). Each edge carries the key and
// value again, with the instance's created_at and id, so that the relationship index on
// (key, value, created_at, id) gives a label's instances in page order (list_by_label).
// A key never holds '=': the first one splits the key from the value.
CALL (node, label_pairs) {
  OPTIONAL MATCH (node)-[old:LABELED]->(:Label)
  DELETE old
}
CALL (node, label_pairs) {
  UNWIND label_pairs AS pair
  WITH node, pair, split(pair, '=')[0] AS key
  WITH node, key, substring(pair, size(key) + 1) AS value
  MERGE (l:Label {key: key, value: value})
  CREATE (node)-[:LABELED {key: key, value: value, created_at: node.created_at,
                           id: node.id}]->(l)
}

// fragment: selector_matches(node)
// Whether `node`'s labels meet every requirement of $selector (labels.Selector.params:
// maps {key, op, pairs}); an empty selector matches everything. The labels are read from
// the node's own LABELED edges (a handful), never by a scan. `in` holds when one of the
// pairs is the node's; `notin` when none is (a node without the key matches, as in
// Kubernetes); `exists` / `!exists` test the key.
all(q IN $selector WHERE CASE q.op
  WHEN 'in' THEN EXISTS { MATCH (node)-[x:LABELED]->(:Label)
                          WHERE x.key + '=' + x.value IN q.pairs }
  WHEN 'notin' THEN NOT EXISTS { MATCH (node)-[x:LABELED]->(:Label)
                                 WHERE x.key + '=' + x.value IN q.pairs }
  WHEN 'exists' THEN EXISTS { MATCH (node)-[x:LABELED]->(:Label) WHERE x.key = q.key }
  ELSE NOT EXISTS { MATCH (node)-[x:LABELED]->(:Label) WHERE x.key = q.key }
END)
