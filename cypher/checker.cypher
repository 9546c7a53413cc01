// name: check_multiple_globals
// Invariant: at most one GLOBAL instance. Returns one row listing them all when there are
// several (the GlobalInstance constraint prevents it; a node without that label slips by).
// params: -
MATCH (n:HopperInstance {scope: 'GLOBAL'})
WITH n ORDER BY n.created_at, n.id
WITH collect(n.id) AS ids
WHERE size(ids) > 1
RETURN ids

// name: check_parent_count
// Invariant: every non-GLOBAL instance has exactly one incoming PARENT_OF. Returns the
// instances with none (orphans) or with several, and how many parents each has.
// params: -
MATCH (n:HopperInstance)
WHERE coalesce(n.scope, '') <> 'GLOBAL'
WITH n, [(p:HopperInstance)-[:PARENT_OF]->(n) | p.id] AS parents
WHERE size(parents) <> 1
RETURN n.id AS id, n.scope AS scope, parents
ORDER BY id

// name: check_parent_scope
// Invariant: a PROJECT hangs under a GLOBAL or a PROJECT, an ORCHESTRATION under a PROJECT or
// an ORCHESTRATION, and a GLOBAL under nothing. Returns every PARENT_OF edge that breaks it.
// params: -
MATCH (p:HopperInstance)-[:PARENT_OF]->(c:HopperInstance)
WHERE NOT coalesce(
        (c.scope = 'PROJECT' AND p.scope IN ['GLOBAL', 'PROJECT'])
        OR (c.scope = 'ORCHESTRATION' AND p.scope IN ['PROJECT', 'ORCHESTRATION']),
        false)
RETURN c.id AS id, c.scope AS scope, p.id AS parent_id, p.scope AS parent_scope
ORDER BY id, parent_id

// name: check_parent_edges
// The PARENT_OF edges that could lie on a cycle, as (parent, child) ids: the input of the
// cycle search, which runs in Python in linear time (a Cypher path search per node would be
// quadratic on long chains). An edge on a cycle has a parent with a parent and a child with
// a child, so edges into leaves and out of roots (most of a tree) are left out.
// params: -
MATCH (p:HopperInstance)-[:PARENT_OF]->(c:HopperInstance)
WHERE EXISTS { ()-[:PARENT_OF]->(p) }
  AND EXISTS { (c)-[:PARENT_OF]->() }
RETURN p.id AS parent, c.id AS child

// name: check_duplicate_names
// Invariant: (name, scope) is unique. Returns each pair held by more than one instance.
// params: -
MATCH (n:HopperInstance)
WITH n.name AS name, n.scope AS scope, n ORDER BY n.created_at, n.id
WITH name, scope, collect(n.id) AS ids
WHERE size(ids) > 1
RETURN name, scope, ids
ORDER BY scope, name

// name: check_child_counts
// The instances that have children that are not ARCHIVED (those do not count toward the
// limit), with that count and their full config (a JSON string): the caller compares the
// count with the config's limits.max_child_instances.
// params: -
MATCH (p:HopperInstance)
WITH p, COUNT { (p)-[:PARENT_OF]->(c:HopperInstance) WHERE c.status <> 'ARCHIVED' }
  AS child_count
WHERE child_count > 0
RETURN p.id AS id, p.config AS config, child_count

// name: check_parent_id_property
// Invariant: the stored parent_id property names the instance's actual parent (null for a
// root). Instances with several parents are left to check_parent_count.
// params: -
MATCH (n:HopperInstance)
WITH n, [(p:HopperInstance)-[:PARENT_OF]->(n) | p.id] AS parents
WHERE size(parents) <= 1 AND coalesce(n.parent_id, '') <> coalesce(parents[0], '')
RETURN n.id AS id, n.parent_id AS stored, parents[0] AS actual
ORDER BY id

// name: check_depth_property
// Invariant: depth is 0 for a root and the parent's depth + 1 below it. Instances with
// several parents are left to check_parent_count; a parent without a depth is reported
// itself.
// params: -
MATCH (n:HopperInstance)
WITH n, [(p:HopperInstance)-[:PARENT_OF]->(n) | p.depth] AS parent_depths,
     COUNT { (:HopperInstance)-[:PARENT_OF]->(n) } AS parent_count
WHERE parent_count <= 1
WITH n, CASE parent_count WHEN 0 THEN 0 ELSE parent_depths[0] + 1 END AS expected
WHERE n.depth IS NULL OR (expected IS NOT NULL AND n.depth <> expected)
RETURN n.id AS id, n.depth AS depth, expected
ORDER BY id

// name: check_status_matches_last_event
// Invariant: an instance's status is the to_status of its latest audit event (by seq).
// Returns the instances whose latest event disagrees, is a delete, or is missing. (The
// `seq IS NOT NULL` lets the planner seek the (instance_id, seq) index per instance, rather
// than scan every event for every instance.)
// params: -
MATCH (n:HopperInstance)
WITH n, COLLECT {
  MATCH (e:InstanceEvent)
  USING INDEX SEEK e:InstanceEvent(instance_id, seq)  // else, after a bulk import has just
  WHERE e.instance_id = n.id AND e.seq IS NOT NULL  // been numbered, the planner scans
  RETURN e {.seq, .event, .to_status} AS last
  ORDER BY e.seq DESC LIMIT 1
} AS last
WHERE size(last) = 0 OR last[0].to_status IS NULL
   OR last[0].to_status <> coalesce(n.status, '')
RETURN n.id AS id, n.status AS status, last[0] AS last_event
ORDER BY id

// name: check_running_under_parent
// Invariant: an ACTIVE instance has an ACTIVE parent, a PAUSED one an ACTIVE or PAUSED parent
// (what start, resume and the stop/pause cascades guarantee).
// params: -
MATCH (c:HopperInstance)
WHERE c.status IN ['ACTIVE', 'PAUSED']
MATCH (p:HopperInstance)-[:PARENT_OF]->(c)
WITH c, p
WHERE (c.status = 'ACTIVE' AND coalesce(p.status, '') <> 'ACTIVE')
   OR (c.status = 'PAUSED' AND NOT coalesce(p.status, '') IN ['ACTIVE', 'PAUSED'])
RETURN c.id AS id, c.status AS status, p.id AS parent_id, p.status AS parent_status
ORDER BY id

// name: check_ephemeral_stopped
// Invariant: an EPHEMERAL instance is never left STOPPED (stopping one archives it at once).
// params: -
MATCH (n:HopperInstance {status: 'STOPPED', instance_type: 'EPHEMERAL'})
RETURN n.id AS id
ORDER BY id

// name: check_nfc_twins
// Invariant: names and project ids are stored in Unicode NFC, so two that look alike are
// one (every write normalises them: rules.nfc). Returns each group of instances whose
// names, in NFC, are one (name, scope) though they are stored apart ("café" composed and
// decomposed), and each group of top-level PROJECTs whose project_ids are one in NFC:
// twins written before the library normalised. Rename all but one to resolve them.
// params: -
MATCH (n:HopperInstance)
WHERE n.name IS NOT NFC NORMALIZED
WITH DISTINCT n.scope AS scope, normalize(n.name, NFC) AS value
MATCH (t:HopperInstance {scope: scope})
WHERE t.name = value OR normalize(t.name, NFC) = value
WITH 'name' AS field, scope, value, t ORDER BY t.created_at, t.id
WITH field, scope, value, collect(t.id) AS ids
WHERE size(ids) > 1
RETURN field, scope, value, ids
UNION ALL
MATCH (n:TopProject)
WHERE n.project_id IS NOT NFC NORMALIZED
WITH DISTINCT normalize(n.project_id, NFC) AS value
MATCH (t:TopProject)
WHERE t.project_id = value OR normalize(t.project_id, NFC) = value
WITH 'project_id' AS field, 'PROJECT' AS scope, value, t ORDER BY t.created_at, t.id
WITH field, scope, value, collect(t.id) AS ids
WHERE size(ids) > 1
RETURN field, scope, value, ids
