// Writers lock a node by setting and removing a property nothing reads (`SET x._lock =
// true REMOVE x._lock`): it takes the node's write lock without putting a value read
// before the wait into the transaction (`SET x.v = x.v` would, and a later `x.v + 1` then
// builds on that stale value). Locks are taken top down (parent, instance, subtree by
// depth) by every writer, so writers never wait on each other in a circle. No write takes
// a lock outside the instances it changes, their parent and, for a cascade, their subtree.

// name: transition_instances
// A batch of status changes (group commit: hopper_graph/groupcommit.py), each row checked
// and written on its own conditions, so a row that fails them fails alone and the others
// commit; one round trip and one commit for the batch. For each row, in the order given
// (the caller sorts by id, so two batches take their locks in one order): lock the parent
// (for start and resume), then the instance, then apply the row's event if the machine's edges for it (status ->
// new status) allow the stored status, the version is one of expected_version (a list,
// when given), the parent is ACTIVE (when needs_active_parent), the instance has no
// children (when cascades: a cascade takes lifecycle's longer path), no restore is
// writing it and, for an archive, it has no lien (protected). A stopped EPHEMERAL is archived in the same write, with a second event.
// Returns, per row found, what the checks saw and whether it applied; nothing is written
// for a row that does not apply. The caller turns a refusal into the state machine's error.
// params: rows
UNWIND $rows AS r
WITH r, datetime(r.now) AS now  // sent as text: the driver encodes a datetime slowly
CALL (r, now) {
  MATCH (n:HopperInstance {id: r.id})
  // The parent's lock first, in a subquery of its own (see lock_for_transition), and only
  // for the events whose guard reads the parent's status (start, resume): a pause or a
  // stop of a leaf changes nothing its parent's rules look at, so siblings that pause
  // and stop at once do not queue on their parent.
  CALL (n, r) {
    MATCH (q:HopperInstance {id: n.parent_id}) WHERE r.needs_active_parent
    SET q._lock = true REMOVE q._lock
  }
  OPTIONAL MATCH (p:HopperInstance)-[:PARENT_OF]->(n)
  SET n._lock = true REMOVE n._lock
  WITH n, p WHERE n.id IS NOT NULL  // it may have been deleted while we waited for the lock
  WITH n, n.status AS before, n.version AS version, p.status AS parent_status,
       r.edges[n.status] AS target, n:Restoring AS restoring,
       r.cascades AND EXISTS { (n)-[:PARENT_OF]->() } AS cascade,
       r.event = 'archive' AND EXISTS { (n)-[:HAS_LIEN]->() } AS protected  // liens.py
  WITH *, target IS NOT NULL AND NOT restoring AND NOT cascade AND NOT protected
          AND (r.expected_version IS NULL OR version IN r.expected_version)
          AND (NOT r.needs_active_parent OR parent_status IS NULL OR parent_status = 'ACTIVE')
          AS applies,
       r.event = 'stop' AND n.instance_type = 'EPHEMERAL' AS archive_too
  CALL (n, r, now, applies, before, target, archive_too) {
    WITH * WHERE applies
    SET n.status = CASE WHEN archive_too THEN 'ARCHIVED' ELSE target END,
        n.paused_by = null,
        n.started_at = CASE WHEN r.event = 'start' THEN now ELSE n.started_at END,
        n.stopped_at = CASE WHEN r.event = 'stop' THEN now ELSE n.stopped_at END,
        n.archived_at = CASE WHEN r.event = 'archive' OR archive_too THEN now
                             ELSE n.archived_at END,
        n.version = n.version + CASE WHEN archive_too THEN 2 ELSE 1 END,
        n.updated_at = now
    CREATE (n)-[:HAS_EVENT]->(e:InstanceEvent:PendingEvent)
    SET e = {id: r.event_ids[0], instance_id: n.id, event: r.event, from_status: before,
             to_status: target, actor: r.actor, reason: r.reason, at: now, offset: 1,
             written_at: datetime.realtime()}
    FOREACH (_ IN CASE WHEN archive_too THEN [1] ELSE [] END |
      CREATE (n)-[:HAS_EVENT]->(a:InstanceEvent:PendingEvent)
      SET a = {id: r.event_ids[1], instance_id: n.id, event: 'archive', from_status: target,
               to_status: 'ARCHIVED', actor: r.actor, reason: r.reason, cause: n.id,
               at: now, offset: 2, written_at: datetime.realtime()})
  }
  RETURN applies, before, version, parent_status, restoring, cascade, protected,
         {{instance_map(n)}} AS instance
}
RETURN r.id AS id, applies, before, version, parent_status, restoring, cascade, protected,
       instance

// name: lock_for_transition
// The instance as stored, with its parent's status: with $lock, after taking the parent's
// write lock, then the instance's (top down, the order every writer uses), so a guard on
// the parent's status cannot be raced; without, a plain read (the plan before-hooks see).
// params: id, lock
MATCH (n:HopperInstance {id: $id})
// The parent's lock is taken in a unit subquery of its own, before the statement reaches
// the parent through PARENT_OF: locked by a FOREACH over the matched parent instead,
// writers under one parent met deadlock retries whenever one deleted a child (measured:
// 13-50 in 240 mixed writes by four threads; none this way).
CALL (n) {
  MATCH (q:HopperInstance {id: n.parent_id}) WHERE $lock SET q._lock = true REMOVE q._lock
}
OPTIONAL MATCH (p:HopperInstance)-[:PARENT_OF]->(n)
FOREACH (x IN CASE WHEN $lock THEN [n] ELSE [] END | SET x._lock = true REMOVE x._lock)
WITH n, p WHERE n.id IS NOT NULL  // it may have been deleted while we waited for the lock
RETURN {{instance_map(n)}} AS instance,
       p.status AS parent_status, n:Restoring AS restoring

// name: lock_subtree_for_cascade
// Everything below an instance, parents before children, with what a cascade needs of
// each: with $lock, after locking them top down; without, a plain read.
// params: id, lock
MATCH (root:HopperInstance {id: $id})
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH collect(d) AS found  // rows of a var-length match carry their path:
UNWIND found AS d  // sort nodes, not paths
WITH d ORDER BY d.depth, d.created_at, d.id
WITH collect(d) AS below
FOREACH (x IN CASE WHEN $lock THEN below ELSE [] END | SET x._lock = true REMOVE x._lock)
RETURN [p IN [x IN below | properties(x)] WHERE p.id IS NOT NULL  // one read per node
        | p {.id, .parent_id, .status, .instance_type, .paused_by, .depth, .version}]
  AS instances

// name: apply_status_changes
// Writes the status changes the state machine decided, with their audit events, to
// instances whose locks the caller holds. One row per instance carries its final status,
// which timestamps to set, how many changes it took (an instance stopped, then archived
// as EPHEMERAL, bumps its version twice) and its events, each with its offset: the order
// the changes were decided in, which the feed keeps (see sequence_events).
// Returns the instance $id as it is now.
// params: rows, now, id
CALL () {
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
  CREATE (n)-[:HAS_EVENT]->(e:InstanceEvent:PendingEvent)
  SET e = event, e.at = $now, e.written_at = datetime.realtime()
}
OPTIONAL MATCH (n:HopperInstance {id: $id})
RETURN CASE WHEN n IS NULL THEN null ELSE {{instance_map(n)}} END
    AS instance

// name: record_heartbeats
// Records runners' heartbeats (a batch: group commit), each unless its instance is
// ARCHIVED, in one conditional write per row (a status checked first and written after
// could change in between). Telemetry, not a change of state: the version stays, no event
// is written. Returns each instance found, whose status the caller reads. $now is text.
// params: ids, now
UNWIND $ids AS id
MATCH (n:HopperInstance {id: id})
SET n.heartbeat_at = CASE n.status WHEN 'ARCHIVED' THEN n.heartbeat_at ELSE datetime($now) END
RETURN id, {{instance_map(n)}} AS instance

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
// What a health check needs of an instance: itself, its parent's status, its child count
// (the children that count toward limits.max_child_instances: ARCHIVED ones do not),
// and the config overrides of its ancestors, nearest first (for inherited settings).
// params: id
MATCH (n:HopperInstance {id: $id})
OPTIONAL MATCH (n)<-[:PARENT_OF*1..]-(a:HopperInstance)
WITH n, collect(a) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS a  // sort nodes, not paths
WITH n, a ORDER BY a.depth DESC
WITH n, collect(a.config_set) AS above
OPTIONAL MATCH (p:HopperInstance)-[:PARENT_OF]->(n)
RETURN {{instance_map(n)}} AS instance, p.status AS parent_status,
       {{open_children(n)}} AS child_count, above

// name: get_subtree_health_facts
// The health facts of every instance in a subtree (root first, parents before children;
// child counts leave ARCHIVED children out, as get_health_facts does), with the root's
// ancestors' config overrides on the root's row alone, in one query.
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
RETURN {{instance_map(n)}} AS instance, p.status AS parent_status,
       {{open_children(n)}} AS child_count,
       CASE WHEN n = root THEN above END AS above  // once: the rest inherit from the root

// name: find_purge_candidates
// The next ARCHIVED EPHEMERAL instances a purge examines, at most $limit, in the order
// (archived_at, depth descending, id), after the position ($after_at, $after_depth,
// $after_id) of the last one examined. The (instance_type, archived_at) index hands them
// over in that order (schema migration 4), so a page costs the page, not the archive;
// the hint makes it a seek from the cursor: unhinted, the planner took the status index,
// or scanned this one from its start, on some statistics (a page then read the archive).
// Within one archived_at deeper ones come first: a subtree archived at once comes before
// its root, and a descendant is archived no later than its ancestors, so a purge has
// judged every descendant of a candidate before the candidate itself. Each comes with its
// retention settings (in config), its version (the delete goes ahead only if it is
// unchanged) and its children (id, type, status): the caller decides which are purgeable
// and which subtrees are purgeable whole.
// params: after_at, after_depth, after_id, limit
MATCH (n:HopperInstance)
USING INDEX SEEK n:HopperInstance(instance_type, archived_at)
WHERE n.instance_type = 'EPHEMERAL' AND n.archived_at >= datetime($after_at)
  AND n.status = 'ARCHIVED'
  AND CASE  // after the cursor; a CASE, not ORs, which the planner splits into seeks
        WHEN n.archived_at > datetime($after_at) THEN true
        WHEN n.depth <> $after_depth THEN n.depth < $after_depth
        ELSE n.id > $after_id END
WITH n ORDER BY n.instance_type, n.archived_at, n.depth DESC, n.id LIMIT toInteger($limit)
RETURN n.id AS id, n.name AS name, n.scope AS scope, n.parent_id AS parent_id,
       toString(n.archived_at) AS archived_at, n.depth AS depth, n.config AS config,
       n.version AS version,
       [(n)-[:PARENT_OF]->(c:HopperInstance) | [c.id, c.instance_type, c.status]] AS children,
       [(n)-[:HAS_LIEN]->(l:Lien) | l.reason] AS liens  // a lien keeps it (liens.py)
