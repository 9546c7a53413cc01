// name: lock_for_transition
// Takes the parent's write lock, then the instance's (top down, the order every writer
// uses), and returns both as stored now: a guard on the parent's status cannot be raced.
// params: id
MATCH (n:HopperInstance {id: $id})
OPTIONAL MATCH (p:HopperInstance)-[:PARENT_OF]->(n)
FOREACH (locked IN CASE WHEN p IS NULL THEN [] ELSE [p] END | SET locked.version = locked.version)
SET n.version = n.version
WITH n, p WHERE n.id IS NOT NULL  // it may have been deleted while we waited for the lock
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance, p.status AS parent_status

// name: lock_subtree_for_cascade
// Locks everything below an instance, top down, and returns what a cascade needs of each,
// parents before children.
// params: id
MATCH (root:HopperInstance {id: $id})
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH collect(d) AS found  // rows of a var-length match carry their path:
UNWIND found AS d  // sort nodes, not paths
WITH d ORDER BY d.depth, d.created_at, d.id
WITH collect(d) AS below
FOREACH (x IN below | SET x.version = x.version)
RETURN [p IN [x IN below | properties(x)] WHERE p.id IS NOT NULL  // one read per node
        | p {.id, .parent_id, .status, .instance_type, .paused_by, .depth}]
  AS instances

// name: apply_status_changes
// Writes the status changes the state machine decided, with their audit events. One row
// per instance carries its final status, which timestamps to set, how many changes it
// took (an instance stopped, then archived as EPHEMERAL, bumps its version twice) and its
// events; each event's seq is base + its offset, in the order the changes were decided.
// Returns base and the instance $id as it is now.
// params: count, rows, now, id
MERGE (c:HopperCounter {name: 'event_seq'})
  ON CREATE SET c.value = 0
SET c.value = c.value + $count
WITH c.value - $count AS base
CALL (base) {
  UNWIND $rows AS row
  MATCH (n:HopperInstance {id: row.id})
  SET n.status = row.status,
      n.paused_by = row.paused_by,
      n.started_at = CASE WHEN row.started THEN $now ELSE n.started_at END,
      n.stopped_at = CASE WHEN row.stopped THEN $now ELSE n.stopped_at END,
      n.archived_at = CASE WHEN row.archived THEN $now ELSE n.archived_at END,
      n.version = n.version + row.writes,
      n.updated_at = $now
  WITH n, row
  UNWIND row.events AS event
  CREATE (n)-[:HAS_EVENT]->(e:InstanceEvent)
  SET e = event.props, e.seq = base + event.offset, e.at = $now
}
OPTIONAL MATCH (n:HopperInstance {id: $id})
RETURN base, CASE WHEN n IS NULL THEN null ELSE n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} END
    AS instance

// name: record_heartbeat
// Records a runner's heartbeat unless the instance is ARCHIVED, in one conditional write
// (a status checked first and written after could change in between). Telemetry, not a
// change of state: the version stays. The caller reads the returned status.
// params: id, now
MATCH (n:HopperInstance {id: $id})
SET n.heartbeat_at = CASE n.status WHEN 'ARCHIVED' THEN n.heartbeat_at ELSE $now END
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance

// name: get_config_chain
// The config overrides of an instance and of each ancestor, nearest first: what
// inheritance and provenance are computed from, in one query.
// params: id
MATCH (n:HopperInstance {id: $id})
OPTIONAL MATCH (n)<-[:PARENT_OF*1..]-(a:HopperInstance)
WITH n, collect(a) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS a  // sort nodes, not paths
WITH n, a ORDER BY a.depth DESC
RETURN n {.id, .scope, .config_set} AS instance,
       collect(a {.id, .scope, .config_set}) AS ancestors

// name: get_health_facts
// What a health check needs of an instance: itself, its parent's status, its child count,
// and the config overrides of its ancestors, nearest first (for inherited settings).
// params: id
MATCH (n:HopperInstance {id: $id})
OPTIONAL MATCH (n)<-[:PARENT_OF*1..]-(a:HopperInstance)
WITH n, collect(a) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS a  // sort nodes, not paths
WITH n, a ORDER BY a.depth DESC
WITH n, collect(a.config_set) AS above
OPTIONAL MATCH (p:HopperInstance)-[:PARENT_OF]->(n)
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance, p.status AS parent_status,
       COUNT { (n)-[:PARENT_OF]->() } AS child_count, above

// name: get_subtree_health_facts
// The health facts of every instance in a subtree (root first, parents before children),
// with the root's ancestors' config overrides, in one query.
// params: id
MATCH (root:HopperInstance {id: $id})
OPTIONAL MATCH (root)<-[:PARENT_OF*1..]-(a:HopperInstance)
WITH root, collect(a) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS a  // sort nodes, not paths
WITH root, a ORDER BY a.depth DESC
WITH root, collect(a.config_set) AS above
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH root, above, collect(d) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS d  // sort nodes, not paths
WITH root, above, d ORDER BY d.depth
WITH root, above, collect(d) AS below
UNWIND [root] + below AS n
OPTIONAL MATCH (p:HopperInstance)-[:PARENT_OF]->(n)
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance, p.status AS parent_status,
       COUNT { (n)-[:PARENT_OF]->() } AS child_count, above

// name: find_purgeable
// ARCHIVED EPHEMERAL instances archived before a cutoff, with their retention settings;
// the caller applies each one's own retention.
// params: cutoff
MATCH (n:HopperInstance {status: 'ARCHIVED', instance_type: 'EPHEMERAL'})
WHERE n.archived_at < $cutoff
RETURN n.id AS id, toString(n.archived_at) AS archived_at, n.config AS config
ORDER BY n.depth
