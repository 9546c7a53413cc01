// name: get_children
// A page of the direct children of an instance, in creation order, and how many there are
// in all (a degree lookup, not a scan). No row at all when the parent does not exist.
// params: parent_id, skip, limit
MATCH (p:HopperInstance {id: $parent_id})
CALL (p) {
  MATCH (n:HopperInstance {parent_id: p.id})
  WHERE n.created_at IS NOT NULL  // lets the planner use the (parent_id, created_at) index
  WITH n ORDER BY n.created_at, n.id SKIP $skip LIMIT $limit
  RETURN collect(n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)}) AS instances
}
RETURN COUNT { (p)-[:PARENT_OF]->() } AS total, instances

// name: get_ancestors
// The chain of parents of an instance up to the root, nearest first.
// params: id
// No row at all when the instance does not exist.
MATCH (n:HopperInstance {id: $id})
OPTIONAL MATCH (n)<-[:PARENT_OF*1..]-(a:HopperInstance)
WITH n, collect(a) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS a  // sort nodes, not paths
WITH n, a ORDER BY a.depth DESC
RETURN n.id AS id, collect(a {.*,
    created_at: toString(a.created_at), updated_at: toString(a.updated_at),
    started_at: toString(a.started_at), stopped_at: toString(a.stopped_at),
    archived_at: toString(a.archived_at), heartbeat_at: toString(a.heartbeat_at)}) AS instances

// name: get_descendants
// Every instance below an instance, level by level, in creation order within a level.
// No row at all when the instance does not exist.
// params: id, skip, limit
MATCH (n:HopperInstance {id: $id})
OPTIONAL MATCH (n)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH n, collect(d) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS d  // sort nodes, not paths
WITH n, d ORDER BY d.depth, d.created_at, d.id
WITH n, collect(d {.*,
    created_at: toString(d.created_at), updated_at: toString(d.updated_at),
    started_at: toString(d.started_at), stopped_at: toString(d.stopped_at),
    archived_at: toString(d.archived_at), heartbeat_at: toString(d.heartbeat_at)}) AS below
RETURN size(below) AS total, below[$skip..($skip + $limit)] AS instances

// name: get_subtree
// An instance and every instance below it down to max_depth levels (null: all levels);
// the rows carry parent_id and depth, enough to build the tree without recursion.
// params: id, max_depth
MATCH (root:HopperInstance {id: $id})
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
  WHERE $max_depth IS NULL OR d.depth <= root.depth + $max_depth
WITH root, collect(d) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS d  // sort nodes, not paths
WITH root, d ORDER BY d.depth, d.created_at, d.id
WITH root, collect(d {.*,
    created_at: toString(d.created_at), updated_at: toString(d.updated_at),
    started_at: toString(d.started_at), stopped_at: toString(d.stopped_at),
    archived_at: toString(d.archived_at), heartbeat_at: toString(d.heartbeat_at)}) AS below
RETURN [root {.*,
    created_at: toString(root.created_at), updated_at: toString(root.updated_at),
    started_at: toString(root.started_at), stopped_at: toString(root.stopped_at),
    archived_at: toString(root.archived_at), heartbeat_at: toString(root.heartbeat_at)}] + below AS instances

// name: get_global_instance
// The GLOBAL instance, if it exists.
// params: -
MATCH (n:GlobalInstance)
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance

// name: get_instances_in_scope_of_project
// The instances of one scope that belong to a project, in creation order.
// params: project_id, scope
MATCH (n:HopperInstance {project_id: $project_id, scope: $scope})
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance
ORDER BY n.created_at, n.id

// name: get_instances_by_status
// Every instance with one status, in creation order.
// params: status
MATCH (n:HopperInstance {status: $status})
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance
ORDER BY n.created_at, n.id
