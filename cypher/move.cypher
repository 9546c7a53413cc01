// The queries of a move (hopper_graph/move.py): one instance, with its subtree, re-hung
// under a new parent in one transaction. A move reads what it decides on, locks the
// instances whose position its checks rely on, reads again under those locks, and then
// writes: the PARENT_OF edge, parent_id, and, where they change, depth and project_id of
// the moved subtree.

// fragment: move_facts
// What a move's rules need (get_move_facts reads it without a lock; lock_for_move reads
// it again once it holds the locks): the instance, its ancestors (ids and depths, nearest
// first), the new parent and its ancestors (the new parent first: the path a cycle would
// close through), the new parent's children that count toward its limit (ARCHIVED ones do
// not), what the SINGLETON rule needs of its children in the instance's scope (as the
// sibling_types fragment), and the GLOBAL's config (it holds limits.max_depth). Each walk
// goes up, one parent per level: the cost is the two depths.
MATCH (n:HopperInstance {id: $id})
OPTIONAL MATCH (p:HopperInstance {id: $parent_id})
OPTIONAL MATCH (g:GlobalInstance)
RETURN {{instance_map(n)}} AS instance,
       [(n)<-[:PARENT_OF*1..]-(a:HopperInstance) | a {.id, .depth}] AS above,
       CASE WHEN p IS NULL THEN null ELSE {{instance_map(p)}} END AS parent,
       CASE WHEN p IS NULL THEN [] ELSE
         [(p)<-[:PARENT_OF*0..]-(a:HopperInstance) | a {.id, .depth}] END AS path,
       CASE WHEN p IS NULL THEN 0 ELSE {{open_children(p)}} END AS child_count,
       CASE WHEN p IS NULL THEN [] ELSE
         [t IN ['SINGLETON'] WHERE EXISTS {
            MATCH (s:HopperInstance {parent_id: p.id, scope: n.scope, instance_type: t})
            USING INDEX SEEK s:HopperInstance(parent_id, scope, instance_type) }]
         + [t IN ['any'] WHERE EXISTS {
            MATCH (s:HopperInstance {parent_id: p.id, scope: n.scope})
            USING INDEX SEEK s:HopperInstance(parent_id, scope, instance_type)
            WHERE s.instance_type IS NOT NULL }] END AS same_scope_sibling_types,
       g.config AS global_config,
       n:Restoring OR coalesce(p:Restoring, false) AS restoring

// name: get_move_facts
// What a move's rules need, read without a lock (the move_facts fragment).
// params: id, parent_id
{{move_facts}}

// name: lock_for_move
// Takes the write locks of the instances $ids, in the order given (the caller sorts them
// top down, by depth), without changing anything (see lifecycle.cypher for why a lock is
// a property set and removed), then reads the move's facts again under them (the
// move_facts fragment): one round trip. Returns the ids it locked (one deleted meanwhile
// is absent) beside the facts; no row when the instance is gone.
// params: ids, id, parent_id
UNWIND range(0, size($ids) - 1) AS i
CALL (i) {
  MATCH (x:HopperInstance {id: $ids[i]})
  SET x._lock = true REMOVE x._lock
  RETURN x.id AS id
}
WITH collect(id) AS locked
CALL () {
  {{move_facts}}
}
RETURN *

// name: lock_subtree_for_move
// Locks everything below an instance, top down (by depth), before a move rewrites its
// depth or project_id: from then on no create can add a child below it (a create locks
// its parent) until the move commits, and the rewrite that follows reads the subtree
// again, so it also finds a child whose create committed before its parent's lock was
// taken. Returns how many levels the subtree reaches below the instance (0 for a leaf),
// read after the locks: what the depth limit is checked against when the move goes deeper.
// (lock_subtree, which a delete uses, returns a row per instance: for a 1,000-instance
// subtree that made a move 50-56 ms instead of 32-39 ms, so this one returns two numbers.)
// params: id
MATCH (root:HopperInstance {id: $id})
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH root, collect(d) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS d  // sort nodes, not paths
WITH root, d ORDER BY d.depth
WITH root, collect(d) AS below
FOREACH (x IN below | SET x._lock = true REMOVE x._lock)
RETURN reduce(deepest = root.depth, x IN below |
         CASE WHEN x.depth > deepest THEN x.depth ELSE deepest END) - root.depth AS height,
       size(below) AS below

// name: move_instance
// Re-hangs an instance (locked by the caller, as are its old and new parents) under
// $parent_id with its audit event: the old PARENT_OF edge goes, a new one comes, parent_id
// follows it, the version goes up. A PROJECT takes or drops TopProject as it becomes or
// stops being a top-level PROJECT ($top_project), which the hopper_top_project constraint
// checks at commit. When the move changes the depth ($depth_delta <> 0) or the project
// ($project_id not null: an ORCHESTRATION subtree takes its new nearest PROJECT's), every
// instance of the subtree below is rewritten too (only the property that changes), its
// version bumped; otherwise nothing below is touched. Returns the instance as it is now.
// params: id, parent_id, depth_delta, project_id, top_project, now, event
MATCH (n:HopperInstance {id: $id})
MATCH (p:HopperInstance {id: $parent_id})
OPTIONAL MATCH (:HopperInstance)-[old:PARENT_OF]->(n)
DELETE old
CREATE (p)-[:PARENT_OF]->(n)
SET n.parent_id = $parent_id, n.depth = n.depth + $depth_delta,
    n.project_id = coalesce($project_id, n.project_id),
    n.version = n.version + 1, n.updated_at = $now
FOREACH (_ IN CASE WHEN n.scope = 'PROJECT' AND $top_project THEN [1] ELSE [] END |
  SET n:TopProject)
FOREACH (_ IN CASE WHEN NOT $top_project THEN [1] ELSE [] END | REMOVE n:TopProject)
CREATE (n)-[:HAS_EVENT]->(e:InstanceEvent:PendingEvent)
SET e = $event, e.at = $now, e.written_at = datetime.realtime()
WITH n
CALL (n) {
  WITH n WHERE $depth_delta <> 0 OR $project_id IS NOT NULL
  MATCH (n)-[:PARENT_OF*1..]->(d:HopperInstance)
  SET d.version = d.version + 1, d.updated_at = $now
  FOREACH (_ IN CASE WHEN $depth_delta <> 0 THEN [1] ELSE [] END |
    SET d.depth = d.depth + $depth_delta)
  FOREACH (_ IN CASE WHEN $project_id IS NULL THEN [] ELSE [1] END |
    SET d.project_id = $project_id)
  RETURN count(d) AS rewritten
}
RETURN {{instance_map(n)}} AS instance, rewritten
