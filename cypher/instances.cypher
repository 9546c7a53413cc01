// name: get_parent_for_create
// What the create rules need, read without a lock (the create's own statement checks again
// under the parent's lock what may have changed): the parent, how many of its children
// count toward its limit (ARCHIVED ones do not), the distinct types of those in $scope, and
// the GLOBAL's config (it holds limits.max_depth) with its version.
// params: parent_id, scope
MATCH (p:HopperInstance {id: $parent_id})
OPTIONAL MATCH (g:GlobalInstance)
RETURN {{instance_map(p)}} AS parent,
       {{open_children(p)}} AS child_count,
       {{sibling_types(p)}} AS same_scope_sibling_types,
       g.config AS global_config, g.version AS global_version, p:Restoring AS restoring

// name: get_global_config
// The stored config of the GLOBAL instance (it holds limits.max_depth), if there is one.
// params: -
MATCH (g:GlobalInstance)
RETURN g.config AS config

// name: create_global_instance
// Creates the GLOBAL root with its audit event. The GlobalInstance label carries a
// uniqueness constraint on scope, so a second GLOBAL fails in the database, however the
// calls race.
// params: props, label_pairs, now, event
CREATE (n:HopperInstance:GlobalInstance)
SET n = $props, n.created_at = $now, n.updated_at = $now
CREATE (n)-[:HAS_EVENT]->(e:InstanceEvent:PendingEvent)
SET e = $event, e.at = $now, e.written_at = datetime.realtime()
WITH n, $label_pairs AS label_pairs
{{write_labels(n)}}
RETURN {{instance_map(n)}} AS instance

// name: create_child_instance
// Creates an instance under its parent with its audit event, in one statement, if the
// parent is still as the caller's rules saw it: it takes the parent's write lock (creates
// under one parent queue here, so the limit and the SINGLETON rule cannot be raced), then
// checks what the rules were judged on: the parent's version (its status, config, depth
// and project_id: a move raises the version of each instance it rewrites), the GLOBAL's
// version (its config holds limits.max_depth), the children that count toward $limit
// (ARCHIVED ones do not) and the SINGLETON rule, and creates only if all hold. So the
// facts may come from an earlier read (the repository remembers a parent's), as long as
// they are still true. The instance gets the label of its scope; a top-level PROJECT also
// gets TopProject, whose constraint keeps its project_id unique. Returns what it found;
// `instance` is null when nothing was created, and there is no row at all when the parent
// is gone.
// params: props, label_pairs, scope, parent_id, parent_version, global_version, limit, singleton, top_project, now, event
MATCH (p:HopperInstance {id: $parent_id})
SET p._lock = true REMOVE p._lock
WITH p WHERE p.id IS NOT NULL  // it may have been deleted while we waited for the lock
OPTIONAL MATCH (g:GlobalInstance)
WITH p, p.version AS parent_version, g.version AS global_version, p:Restoring AS restoring,
     {{open_children(p)}} AS child_count,
     {{sibling_types(p)}} AS types
WITH *, parent_version = $parent_version
        AND coalesce(global_version, -1) = coalesce($global_version, -1)
        AND NOT restoring AND child_count < $limit
        AND (size(types) = 0 OR (NOT $singleton AND NOT 'SINGLETON' IN types)) AS allowed
OPTIONAL CALL (p, allowed) {
  WITH p WHERE allowed
  CREATE (p)-[:PARENT_OF]->(n:HopperInstance)
  SET n = $props, n.created_at = $now, n.updated_at = $now
  {{scope_label(n)}}
  FOREACH (_ IN CASE WHEN $top_project THEN [1] ELSE [] END | SET n:TopProject)
  CREATE (n)-[:HAS_EVENT]->(e:InstanceEvent:PendingEvent)
  SET e = $event, e.at = $now, e.written_at = datetime.realtime()
  WITH n, $label_pairs AS label_pairs
  {{write_labels(n)}}
  RETURN {{instance_map(n)}} AS instance
}
RETURN parent_version, global_version, restoring, child_count,
       types AS same_scope_sibling_types, instance

// name: bulk_lock_parents
// Locks every existing parent a bulk import attaches to and returns what its rules need.
// params: parent_ids
UNWIND $parent_ids AS parent_id
MATCH (p:HopperInstance {id: parent_id})
SET p._lock = true REMOVE p._lock
WITH p WHERE p.id IS NOT NULL  // it may have been deleted while we waited for the lock
RETURN {{instance_map(p)}} AS parent,
       COUNT { (p)-[:PARENT_OF]->(c:HopperInstance) WHERE c.status <> 'ARCHIVED' }
         AS child_count,
       [(p)-[:PARENT_OF]->(s:HopperInstance) | [s.scope, s.instance_type]] AS children,
       p:Restoring AS restoring

// name: bulk_create_instances
// Creates one batch of a bulk import with the audit event of each instance; rows come
// parents first, so every parent exists. Each row's created_at is the import's time plus
// its position in microseconds, so the order of children is the import order. Each
// gets the label of its scope, a top-level PROJECT also TopProject (see
// create_child_instance).
// (Timestamps are computed here rather than sent per row: the Python driver takes ~100 us
// to pack each datetime.) The events wait for their seq like every other (PendingEvent).
// Nodes are created first and attached after: a parent may be a row of the same batch,
// and a MATCH placed before the CREATE would not see it.
// params: rows, now
UNWIND $rows AS row
WITH row, $now + duration({microseconds: row.offset}) AS created
CREATE (n:HopperInstance)-[:HAS_EVENT]->(e:InstanceEvent:PendingEvent)
SET n = row.props, n.created_at = created, n.updated_at = created,
    e = row.event, e.at = $now, e.written_at = datetime.realtime()
// its scope's label (GlobalInstance: the root of an import into an empty graph)
{{scope_label(n)}}
FOREACH (_ IN CASE WHEN row.top_project THEN [1] ELSE [] END | SET n:TopProject)
WITH n, row, coalesce(row.label_pairs, []) AS label_pairs
{{write_labels(n)}}
WITH n, row WHERE row.parent_id IS NOT NULL
MATCH (p:HopperInstance {id: row.parent_id})
CREATE (p)-[:PARENT_OF]->(n)

// name: get_instance
// One instance by id.
// params: id
MATCH (n:HopperInstance {id: $id})
RETURN {{instance_map(n)}} AS instance

// name: get_instance_by_scope_and_name
// One instance by its unique (name, scope).
// params: scope, name
MATCH (n:HopperInstance {name: $name, scope: $scope})
RETURN {{instance_map(n)}} AS instance

// name: list_by_parent
// A page of a list that names a parent, from the (parent_id, created_at, id) index.
// $with_total adds how many match in all, which reads every match; without it the
// answer costs the page.
// params: scope, status, parent_id, project_id, selector, after_at, after_id, skip, limit, with_total
MATCH (n:HopperInstance {parent_id: $parent_id})
USING INDEX SEEK n:HopperInstance(parent_id, created_at, id)
WHERE {{seek_from_cursor(n)}}
WITH n ORDER BY n.parent_id, n.created_at, n.id  // the index's own order: no sort, and reading stops at the page's end
{{list_page(n)}}

// name: list_by_project_and_scope
// A page of a list that names a project and a scope (a project's PROJECTs, or its runs),
// from the (project_id, scope, created_at, id) index.
// $with_total adds how many match in all, which reads every match; without it the
// answer costs the page.
// params: scope, status, parent_id, project_id, selector, after_at, after_id, skip, limit, with_total
MATCH (n:HopperInstance {project_id: $project_id, scope: $scope})
USING INDEX SEEK n:HopperInstance(project_id, scope, created_at, id)
WHERE {{seek_from_cursor(n)}}
WITH n ORDER BY n.project_id, n.scope, n.created_at, n.id  // the index's own order: no sort, and reading stops at the page's end
{{list_page(n)}}

// name: list_by_project
// A page of a list that names a project but no scope, from the (project_id, scope,
// created_at, id) index: the project's instances are sorted, so the cost follows the
// project's size, not the graph's.
// $with_total adds how many match in all, which reads every match; without it the
// answer costs the page.
// params: scope, status, parent_id, project_id, selector, after_at, after_id, skip, limit, with_total
MATCH (n:HopperInstance {project_id: $project_id})
USING INDEX SEEK n:HopperInstance(project_id, scope, created_at, id)
WHERE n.scope IS NOT NULL AND {{seek_from_cursor(n)}}
WITH n ORDER BY n.created_at, n.id  // a sort of the project's instances, not the graph's
{{list_page(n)}}

// name: list_by_scope_and_status
// A page of a list that names a scope and a status, from the (scope, status, created_at,
// id) index.
// $with_total adds how many match in all, which reads every match; without it the
// answer costs the page.
// params: scope, status, parent_id, project_id, selector, after_at, after_id, skip, limit, with_total
MATCH (n:HopperInstance {scope: $scope, status: $status})
USING INDEX SEEK n:HopperInstance(scope, status, created_at, id)
WHERE {{seek_from_cursor(n)}}
WITH n ORDER BY n.scope, n.status, n.created_at, n.id  // the index's own order: no sort, and reading stops at the page's end
{{list_page(n)}}

// name: list_by_scope
// A page of a list that names a scope only, from the (scope, created_at, id) index.
// $with_total adds how many match in all, which reads every match; without it the
// answer costs the page.
// params: scope, status, parent_id, project_id, selector, after_at, after_id, skip, limit, with_total
MATCH (n:HopperInstance {scope: $scope})
USING INDEX SEEK n:HopperInstance(scope, created_at, id)
WHERE {{seek_from_cursor(n)}}
WITH n ORDER BY n.scope, n.created_at, n.id  // the index's own order: no sort, and reading stops at the page's end
{{list_page(n)}}

// name: list_by_status
// A page of a list that names a status only, from the (status, created_at, id) index.
// $with_total adds how many match in all, which reads every match; without it the
// answer costs the page.
// params: scope, status, parent_id, project_id, selector, after_at, after_id, skip, limit, with_total
MATCH (n:HopperInstance {status: $status})
USING INDEX SEEK n:HopperInstance(status, created_at, id)
WHERE {{seek_from_cursor(n)}}
WITH n ORDER BY n.status, n.created_at, n.id  // the index's own order: no sort, and reading stops at the page's end
{{list_page(n)}}

// name: list_all
// A page of every instance, from the (created_at, id) index.
// $with_total adds how many match in all, which reads every match; without it the
// answer costs the page.
// params: scope, status, parent_id, project_id, selector, after_at, after_id, skip, limit, with_total
MATCH (n:HopperInstance)
USING INDEX SEEK n:HopperInstance(created_at, id)
WHERE {{seek_from_cursor(n)}}
WITH n ORDER BY n.created_at, n.id  // the index's own order: no sort, and reading stops at the page's end
{{list_page(n)}}

// name: update_instances
// Writes the changed fields of instances (a batch: group commit), each only if it is still
// at the row's version (the caller computed the changes from that version), bumping the
// version, with its audit event: one conditional write per row (and, when r.label_pairs
// is given, the instance's label edges as they now are), in the order given (the
// caller sorts by id). Returns, per row found, the instance as it is now and whether the
// change applied. A rename onto a taken name fails the whole statement (a constraint); the
// caller then writes that batch's rows one at a time. A row whose new config sets
// limits.max_child_instances (r.max_children) below the children the instance has that
// count toward it (child_count, under the lock every create under it takes too) does not
// apply: a limit is never lowered below what is there.
// params: rows
UNWIND $rows AS r
WITH r, datetime(r.now) AS now  // sent as text: the driver encodes a datetime slowly
CALL (r, now) {
  MATCH (n:HopperInstance {id: r.id})
  SET n._lock = true REMOVE n._lock
  WITH n WHERE n.id IS NOT NULL  // it may have been deleted while we waited for the lock
  WITH n, n:Restoring AS restoring,
       CASE WHEN r.max_children IS NULL THEN null ELSE {{open_children(n)}} END AS child_count
  WITH n, restoring, child_count,
       n.version = r.version AND NOT restoring
         AND (child_count IS NULL OR child_count <= r.max_children) AS applies
  CALL (n, r, now, applies) {
    WITH n WHERE applies
    SET n += r.changes, n.version = n.version + 1, n.updated_at = now
    CREATE (n)-[:HAS_EVENT]->(e:InstanceEvent:PendingEvent)
    SET e = r.event, e.at = now, e.written_at = datetime.realtime()
  }
  CALL (n, r, applies) {  // labels that changed: their edges follow (r.label_pairs)
    WITH n, r.label_pairs AS label_pairs WHERE applies AND label_pairs IS NOT NULL
    {{write_labels(n)}}
  }
  RETURN applies, restoring, child_count, {{instance_map(n)}} AS instance
}
RETURN r.id AS id, applies, restoring, child_count, instance

// name: lock_subtree
// Locks an instance and everything below it, top down, and returns them deepest first:
// the order a delete or a cascade works in.
// params: id
MATCH (root:HopperInstance {id: $id})
SET root._lock = true REMOVE root._lock
WITH root WHERE root.id IS NOT NULL  // it may have been deleted while we waited
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH root, collect(d) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS d  // sort nodes, not paths
WITH root, d ORDER BY d.depth
WITH root, collect(d) AS below
FOREACH (x IN below | SET x._lock = true REMOVE x._lock)
WITH [root] + below AS nodes
UNWIND nodes AS n
RETURN n {.id, .parent_id, .status, .depth, .instance_type, .version} AS instance
ORDER BY n.depth DESC

// name: delete_subtree
// Deletes an instance and everything below it. Audit events are not below it: they stay.
// params: id
MATCH (root:HopperInstance {id: $id})
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH root, collect(d) AS below
FOREACH (x IN below | DETACH DELETE x)
DETACH DELETE root
