// Liens: a reason (and its origin) that protects an instance from deletion, archive and
// purge, and its ancestors from deletion (hopper_graph/liens.py). A lien is a node of its
// own, (:HopperInstance)-[:HAS_LIEN]->(:Lien), so Neo4j Browser shows who is protected
// and why. Adding or removing one takes the instance's write lock first, as a delete, an
// archive or a purge does before it looks for liens: the two serialise, and a lien is
// never added to an instance a concurrent delete has already taken.

// name: add_lien
// Adds a lien to an instance after taking its write lock, with its audit event (whose
// from_status and to_status are the status read under that lock). Nothing is written to
// an instance a restore is writing. Returns nothing when there is no such instance.
// params: instance_id, lien, now, event
MATCH (n:HopperInstance {id: $instance_id})
SET n._lock = true REMOVE n._lock
WITH n WHERE n.id IS NOT NULL  // it may have been deleted while we waited for the lock
WITH n, n:Restoring AS restoring
CALL (n, restoring) {
  WITH n WHERE NOT restoring
  CREATE (n)-[:HAS_LIEN]->(l:Lien)
  SET l = $lien, l.instance_id = n.id, l.created_at = datetime($now)
  CREATE (n)-[:HAS_EVENT]->(e:InstanceEvent:PendingEvent)
  SET e = $event, e.from_status = n.status, e.to_status = n.status,
      e.at = datetime($now), e.written_at = datetime.realtime()
}
RETURN restoring, n.status AS status

// name: remove_lien
// Removes one lien of an instance after taking the instance's write lock, with its audit
// event. Returns the lien as it was (null when the instance has no lien of that id), or
// nothing when there is no such instance.
// params: instance_id, lien_id, now, event
MATCH (n:HopperInstance {id: $instance_id})
SET n._lock = true REMOVE n._lock
WITH n WHERE n.id IS NOT NULL  // it may have been deleted while we waited for the lock
WITH n, n:Restoring AS restoring
OPTIONAL MATCH (n)-[:HAS_LIEN]->(l:Lien {id: $lien_id})
WITH n, restoring, l,
     l {.id, .instance_id, .reason, .origin, .actor, created_at: toString(l.created_at)} AS lien  // null without l
CALL (n, restoring, l) {
  WITH n, l WHERE l IS NOT NULL AND NOT restoring
  DETACH DELETE l
  CREATE (n)-[:HAS_EVENT]->(e:InstanceEvent:PendingEvent)
  SET e = $event, e.from_status = n.status, e.to_status = n.status,
      e.at = datetime($now), e.written_at = datetime.realtime()
}
RETURN restoring, lien, n.status AS status

// name: get_liens
// The liens of an instance, oldest first; nothing when there is no such instance.
// params: instance_id
MATCH (n:HopperInstance {id: $instance_id})
OPTIONAL MATCH (n)-[:HAS_LIEN]->(l:Lien)
WITH n, l ORDER BY l.created_at, l.id
RETURN n.id AS id,
       collect(l {.id, .instance_id, .reason, .origin, .actor, created_at: toString(l.created_at)}) AS liens

// name: get_liens_of
// The instances among $ids that carry liens, each with its liens (oldest first): what
// a delete, an archive or a purge of them must refuse. The caller holds their locks when
// the answer must stay true until it commits.
// params: ids
UNWIND $ids AS id
MATCH (n:HopperInstance {id: id})-[:HAS_LIEN]->(l:Lien)
WITH n, l ORDER BY l.created_at, l.id
WITH n, collect(l {.id, .instance_id, .reason, .origin, .actor, created_at: toString(l.created_at)}) AS liens
ORDER BY n.depth, n.id
RETURN n.id AS id, n.name AS name, n.scope AS scope, liens

// name: export_liens
// Every lien, with the id of its instance, in instance then creation order; created_at
// as its RFC 3339 text (the export's form of a DATETIME).
// params: -
MATCH (n:HopperInstance)-[:HAS_LIEN]->(l:Lien)
RETURN l {.id, .instance_id, .reason, .origin, .actor, created_at: toString(l.created_at)} AS lien
ORDER BY l.instance_id, l.created_at, l.id

// name: import_liens
// Restores one batch of liens onto the instances of an import (which exist by now), as
// Restoring nodes like everything an import writes until it has finished.
// params: rows
UNWIND $rows AS row
MATCH (n:HopperInstance {id: row.instance_id})
CREATE (n)-[:HAS_LIEN]->(l:Lien:Restoring)
SET l = row, l.created_at = datetime(row.created_at)
