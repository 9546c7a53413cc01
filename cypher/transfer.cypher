// name: export_instances
// Every instance with all its properties, as [key, value, is_datetime] triples (a DATETIME
// travels as its RFC 3339 string: exact, and far cheaper for the driver than a DateTime),
// and the ids of its actual parents (PARENT_OF), in depth then creation order; the
// exporter orders them parents first from there.
// params: -
MATCH (n:HopperInstance)
RETURN [key IN keys(n) |
         CASE WHEN valueType(n[key]) STARTS WITH 'ZONED DATETIME'
              THEN [key, toString(n[key]), true]
              ELSE [key, n[key], false] END] AS properties,
       [(p:HopperInstance)-[:PARENT_OF]->(n) | p.id] AS parents
ORDER BY n.depth, n.created_at, n.id

// name: export_events
// Every audit event, those of deleted instances included, in seq order, with its properties
// as export_instances gives them; `unlinked` marks an event whose instance exists without a
// HAS_EVENT edge to it (a restore keeps it that way).
// params: -
MATCH (e:InstanceEvent)
RETURN [key IN keys(e) |
         CASE WHEN valueType(e[key]) STARTS WITH 'ZONED DATETIME'
              THEN [key, toString(e[key]), true]
              ELSE [key, e[key], false] END] AS properties,
       EXISTS { MATCH (:HopperInstance {id: e.instance_id}) }
         AND NOT EXISTS { MATCH (:HopperInstance)-[:HAS_EVENT]->(e) } AS unlinked
ORDER BY e.seq

// name: export_event_counter
// The last sequence number handed to an audit event (null before the first event).
// params: -
OPTIONAL MATCH (c:HopperCounter {name: 'event_seq'})
RETURN c.value AS value

// name: count_hopper_nodes
// How many instances, events and counters the database holds: an import needs all zero
// (counted from the store's statistics, not by a scan).
// params: -
RETURN COUNT { (:HopperInstance) } AS instances, COUNT { (:InstanceEvent) } AS events,
       COUNT { (:HopperCounter) } AS counters

// name: import_instances
// Restores one batch of instances with their properties as exported (no lifecycle rule
// runs: this is a restore); the datetime_keys arrive as RFC 3339 strings and are stored as
// DATETIME again. Each gets the label of its scope (GlobalInstance, ProjectInstance,
// OrchestrationInstance); label_imported_projects adds TopProject. Every node an import writes carries Restoring until the import
// has finished: live writes refuse to touch one, and an interrupted import is found by it.
// params: rows, datetime_keys
UNWIND $rows AS row
CREATE (n:HopperInstance:Restoring)
SET n = row
FOREACH (key IN $datetime_keys | SET n[key] = datetime(n[key]))
{{scope_label(n)}}

// name: label_imported_projects
// Gives the top-level PROJECTs of an import (their edges exist by now) the TopProject
// label that keeps one PROJECT per project_id.
// params: -
MATCH (:GlobalInstance:Restoring)-[:PARENT_OF]->(p:Restoring {scope: 'PROJECT'})
SET p:TopProject

// name: import_parent_edges
// Restores one batch of PARENT_OF edges; every instance of the import exists by now.
// params: rows
UNWIND $rows AS row
MATCH (p:HopperInstance {id: row.parent_id})
MATCH (c:HopperInstance {id: row.id})
CREATE (p)-[:PARENT_OF]->(c)

// name: import_labels
// Restores the label edges of one batch of imported instances ($rows: {id, label_pairs},
// the pairs from each instance's labels), as a create writes them.
// params: rows
UNWIND $rows AS row
MATCH (n:HopperInstance:Restoring {id: row.id})
WITH n, row.label_pairs AS label_pairs
{{write_labels(n)}}

// name: import_events
// Restores one batch of audit events with their seq (datetime_keys as in import_instances),
// linked from their instance when it exists (unless the export marked them unlinked).
// params: events, datetime_keys
UNWIND $events AS row
CREATE (e:InstanceEvent:Restoring)
SET e = row.props
FOREACH (key IN $datetime_keys | SET e[key] = datetime(e[key]))
WITH e, row
OPTIONAL MATCH (n:HopperInstance {id: e.instance_id})
FOREACH (_ IN CASE WHEN n IS NULL OR row.unlinked THEN [] ELSE [1] END |
  CREATE (n)-[:HAS_EVENT]->(e))

// name: import_event_counter
// Sets the event sequence counter, so the next audit event continues after the restored ones.
// params: value
MERGE (c:HopperCounter {name: 'event_seq'})
SET c.value = $value

// name: begin_restore
// Marks a restore as begun, before it writes anything else: what it restores (file, the
// counts it will write) and who runs it (host, pid). The marker stays until the restore
// finishes or the next import removes what it left; while it is there, export and the
// library's reads refuse, and `check` names it. `single` is unique (migration 11): of two
// imports that begin together, one fails here. `progress_at` is the server's time of the
// restore's last batch (restore_progress): how the next import tells a running restore
// from one that was killed.
// params: started_at, file, host, pid, instance_count, event_count
CREATE (:HopperRestore {started_at: $started_at, file: $file, host: $host, pid: $pid,
                        instances: $instance_count, events: $event_count, single: true,
                        progress_at: datetime()})

// name: restore_progress
// Notes on the marker that the restore is still writing (in each batch's transaction).
// params: -
MATCH (m:HopperRestore)
SET m.progress_at = datetime()

// name: get_restore_marker
// The marker of an unfinished restore, if there is one: one node found through the
// HopperRestore label's lookup index (the check every read of the library relies on).
// params: -
MATCH (m:HopperRestore)
RETURN m {.*, started_at: toString(m.started_at)} AS marker
ORDER BY m.started_at
LIMIT 1

// name: find_restore
// What an unfinished import left: its marker's start time, and the nodes it wrote; and of
// its marker, who runs it and how many seconds ago, by the server's clock, it last wrote
// (null for a marker older than progress_at).
// params: -
OPTIONAL MATCH (m:HopperRestore)
WITH m ORDER BY m.progress_at DESC
WITH collect(m) AS markers, min(m.started_at) AS first
RETURN toString(first) AS started_at, size(markers) AS markers, COUNT { (:Restoring) } AS nodes,
       markers[0].host AS host, markers[0].pid AS pid, markers[0].file AS file,
       duration.inSeconds(markers[0].progress_at, datetime()).seconds AS idle_seconds

// name: finish_restore
// Takes the Restoring label off everything an import wrote, in the transaction that also
// sets the event counter and removes the marker (end_restore): the restored graph goes
// live all at once or not at all.
// params: -
MATCH (n:Restoring)
REMOVE n:Restoring

// name: remove_restore_batch
// Deletes one batch of what an unfinished or failed import wrote, with its edges.
// params: limit
MATCH (n:Restoring)
WITH n LIMIT toInteger($limit)
DETACH DELETE n
RETURN count(n) AS done

// name: remove_unfinished_batch
// Deletes one batch of what an unfinished restore left, and of whatever was written on top
// of it since (an export's or check's event counter, a live write that slipped in): a
// restore begins on an empty database, so every instance, event, counter, lien and shared
// label goes, and everything it marked. The marker itself goes last (end_restore).
// params: limit
MATCH (n)
WHERE n:Restoring OR n:HopperInstance OR n:InstanceEvent OR n:HopperCounter OR n:Lien
   OR n:Label
WITH n LIMIT toInteger($limit)
DETACH DELETE n
RETURN count(n) AS done

// name: end_restore
// Removes the restore's marker.
// params: -
MATCH (m:HopperRestore)
DELETE m
