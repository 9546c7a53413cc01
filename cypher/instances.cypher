// name: lock_parent_for_create
// Takes the parent's write lock, so creates under one parent run one at a time (the child
// limit and the SINGLETON rule cannot be raced), then returns what the create rules need:
// the parent, its children's count and the distinct types of those in $scope, and the
// GLOBAL's config (it holds limits.max_depth).
// params: parent_id, scope
MATCH (p:HopperInstance {id: $parent_id})
SET p.version = p.version
WITH p WHERE p.id IS NOT NULL  // it may have been deleted while we waited for the lock
OPTIONAL MATCH (g:GlobalInstance)
RETURN p {.*,
    created_at: toString(p.created_at), updated_at: toString(p.updated_at),
    started_at: toString(p.started_at), stopped_at: toString(p.stopped_at),
    archived_at: toString(p.archived_at), heartbeat_at: toString(p.heartbeat_at)} AS parent,
       COUNT { (p)-[:PARENT_OF]->() } AS child_count,
       COLLECT { MATCH (p)-[:PARENT_OF]->(s:HopperInstance {scope: $scope})
                 RETURN DISTINCT s.instance_type } AS same_scope_sibling_types,
       g.config AS global_config

// name: get_global_config
// The stored config of the GLOBAL instance (it holds limits.max_depth), if there is one.
// params: -
MATCH (g:GlobalInstance)
RETURN g.config AS config

// name: create_global_instance
// Creates the GLOBAL root with its audit event (seq from the counter, as in
// append_events). The GlobalInstance label carries a uniqueness constraint on scope, so a
// second GLOBAL fails in the database, however the calls race.
// params: props, now, event
CREATE (n:HopperInstance:GlobalInstance)
SET n = $props, n.created_at = $now, n.updated_at = $now
WITH n
MERGE (c:HopperCounter {name: 'event_seq'})  // locked since lock_writes
  ON CREATE SET c.value = 0
SET c.value = c.value + 1
CREATE (n)-[:HAS_EVENT]->(e:InstanceEvent)
SET e = $event, e.seq = c.value, e.at = $now
RETURN e.seq AS seq, n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance

// name: create_child_instance
// Creates an instance under its parent, with its audit event (seq from the counter, as in
// append_events); the caller already holds the parent's lock.
// params: props, parent_id, now, event
MATCH (p:HopperInstance {id: $parent_id})
CREATE (p)-[:PARENT_OF]->(n:HopperInstance)
SET n = $props, n.created_at = $now, n.updated_at = $now
WITH n
MERGE (c:HopperCounter {name: 'event_seq'})  // locked since lock_writes
  ON CREATE SET c.value = 0
SET c.value = c.value + 1
CREATE (n)-[:HAS_EVENT]->(e:InstanceEvent)
SET e = $event, e.seq = c.value, e.at = $now
RETURN e.seq AS seq, n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance

// name: bulk_lock_parents
// Locks every existing parent a bulk import attaches to and returns what its rules need.
// params: parent_ids
UNWIND $parent_ids AS parent_id
MATCH (p:HopperInstance {id: parent_id})
SET p.version = p.version
WITH p WHERE p.id IS NOT NULL  // it may have been deleted while we waited for the lock
RETURN p {.*,
    created_at: toString(p.created_at), updated_at: toString(p.updated_at),
    started_at: toString(p.started_at), stopped_at: toString(p.stopped_at),
    archived_at: toString(p.archived_at), heartbeat_at: toString(p.heartbeat_at)} AS parent,
       COUNT { (p)-[:PARENT_OF]->() } AS child_count,
       [(p)-[:PARENT_OF]->(s:HopperInstance) | [s.scope, s.instance_type]] AS children

// name: bulk_create_instances
// Creates one batch of a bulk import with the audit event of each instance; rows come
// parents first, so every parent exists. Each row's created_at is the import's time plus
// its position in microseconds, so the order of children is the import order.
// (Timestamps are computed here rather than sent per row: the Python driver takes ~100 us
// to pack each datetime.) The caller reserved the events' seq numbers (reserve_event_seqs).
// Nodes are created first and attached after: a parent may be a row of the same batch,
// and a MATCH placed before the CREATE would not see it.
// params: rows, now
UNWIND $rows AS row
WITH row, $now + duration({microseconds: row.offset}) AS created
CREATE (n:HopperInstance)-[:HAS_EVENT]->(e:InstanceEvent)
SET n = row.props, n.created_at = created, n.updated_at = created,
    e = row.event, e.at = $now
FOREACH (_ IN CASE WHEN row.props.scope = 'GLOBAL' THEN [1] ELSE [] END |
  SET n:GlobalInstance)  // the root of an import into an empty graph
WITH n, row WHERE row.parent_id IS NOT NULL
MATCH (p:HopperInstance {id: row.parent_id})
CREATE (p)-[:PARENT_OF]->(n)

// name: get_instance
// One instance by id.
// params: id
MATCH (n:HopperInstance {id: $id})
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance

// name: get_instance_by_scope_and_name
// One instance by its unique (name, scope).
// params: scope, name
MATCH (n:HopperInstance {name: $name, scope: $scope})
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance

// name: list_instances
// A page of instances, filtered by any of scope, status, parent_id and project_id (a null
// filter matches everything), in creation order; also the total that matched.
// params: scope, status, parent_id, project_id, skip, limit
MATCH (n:HopperInstance)
WHERE ($scope IS NULL OR n.scope = $scope)
  AND ($status IS NULL OR n.status = $status)
  AND ($parent_id IS NULL OR n.parent_id = $parent_id)
  AND ($project_id IS NULL OR n.project_id = $project_id)
WITH n ORDER BY n.created_at, n.id
WITH collect(n) AS matched
WITH size(matched) AS total, matched[$skip..($skip + $limit)] AS page
WITH total, [x IN page | properties(x)] AS props
RETURN total,
       [p IN props | p.id] AS id, [p IN props | p.name] AS name,
       [p IN props | p.scope] AS scope, [p IN props | p.status] AS status,
       [p IN props | p.instance_type] AS instance_type, [p IN props | p.parent_id] AS parent_id,
       [p IN props | p.project_id] AS project_id, [p IN props | p.config] AS config,
       [p IN props | p.config_set] AS config_set, [p IN props | p.metadata] AS metadata,
       [p IN props | p.version] AS version, [p IN props | p.depth] AS depth,
       [p IN props | toString(p.created_at)] AS created_at,
       [p IN props | toString(p.updated_at)] AS updated_at,
       [p IN props | toString(p.started_at)] AS started_at,
       [p IN props | toString(p.stopped_at)] AS stopped_at,
       [p IN props | toString(p.archived_at)] AS archived_at,
       [p IN props | toString(p.heartbeat_at)] AS heartbeat_at

// name: lock_instance
// Takes the instance's write lock and returns it as stored now (read-committed safe).
// params: id
MATCH (n:HopperInstance {id: $id})
SET n.version = n.version
WITH n WHERE n.id IS NOT NULL  // it may have been deleted while we waited for the lock
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance

// name: update_instance
// Writes changed fields of an instance whose lock the caller holds, bumping its version.
// params: id, changes, now
MATCH (n:HopperInstance {id: $id})
SET n += $changes, n.version = n.version + 1, n.updated_at = $now
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance

// name: lock_subtree
// Locks an instance and everything below it, top down, and returns them deepest first:
// the order a delete or a cascade works in.
// params: id
MATCH (root:HopperInstance {id: $id})
SET root.version = root.version
WITH root WHERE root.id IS NOT NULL  // it may have been deleted while we waited
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH root, collect(d) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS d  // sort nodes, not paths
WITH root, d ORDER BY d.depth
WITH root, collect(d) AS below
FOREACH (x IN below | SET x.version = x.version)
WITH [root] + below AS nodes
UNWIND nodes AS n
RETURN n {.id, .status, .depth, .instance_type, .version} AS instance
ORDER BY n.depth DESC

// name: delete_subtree
// Deletes an instance and everything below it. Audit events are not below it: they stay.
// params: id
MATCH (root:HopperInstance {id: $id})
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH root, collect(d) AS below
FOREACH (x IN below | DETACH DELETE x)
DETACH DELETE root
