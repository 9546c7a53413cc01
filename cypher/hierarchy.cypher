// Queries that return many instances answer with one record of parallel lists, one
// list per property (see INSTANCE_COLUMNS in models.py): Neo4j builds it and the driver
// reads it several times faster than a record, or a map, per instance.

// name: get_children
// A page of the direct children of an instance, in creation order, and how many there are
// in all (a degree lookup, not a scan). No row at all when the parent does not exist.
// params: parent_id, skip, limit
MATCH (p:HopperInstance {id: $parent_id})
CALL (p) {
  MATCH (n:HopperInstance {parent_id: p.id})
  WHERE n.created_at IS NOT NULL AND n.id IS NOT NULL  // the sort keys come from the
                                       // (parent_id, created_at, id) index: no node is read
  WITH n ORDER BY n.created_at, n.id SKIP $skip LIMIT $limit
  RETURN collect(n) AS page
}
RETURN COUNT { (p)-[:PARENT_OF]->() } AS total,
       [x IN page | x.id] AS id, [x IN page | x.name] AS name,
       [x IN page | x.scope] AS scope, [x IN page | x.status] AS status,
       [x IN page | x.instance_type] AS instance_type, [x IN page | x.parent_id] AS parent_id,
       [x IN page | x.project_id] AS project_id, [x IN page | x.config] AS config,
       [x IN page | x.config_set] AS config_set, [x IN page | x.metadata] AS metadata,
       [x IN page | x.version] AS version, [x IN page | x.depth] AS depth,
       [x IN page | toString(x.created_at)] AS created_at,
       [x IN page | toString(x.updated_at)] AS updated_at,
       [x IN page | toString(x.started_at)] AS started_at,
       [x IN page | toString(x.stopped_at)] AS stopped_at,
       [x IN page | toString(x.archived_at)] AS archived_at,
       [x IN page | toString(x.heartbeat_at)] AS heartbeat_at

// name: get_ancestors
// The chain of parents of an instance up to the root, nearest first.
// params: id
// No row at all when the instance does not exist.
MATCH (n:HopperInstance {id: $id})
OPTIONAL MATCH (n)<-[:PARENT_OF*1..]-(a:HopperInstance)
WITH n, collect(a) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS a  // sort nodes, not paths
WITH n, a ORDER BY a.depth DESC
WITH n, collect(a) AS chain  // grouped by n: no row at all when there is no n
RETURN [x IN chain | x.id] AS id, [x IN chain | x.name] AS name,
       [x IN chain | x.scope] AS scope, [x IN chain | x.status] AS status,
       [x IN chain | x.instance_type] AS instance_type, [x IN chain | x.parent_id] AS parent_id,
       [x IN chain | x.project_id] AS project_id, [x IN chain | x.config] AS config,
       [x IN chain | x.config_set] AS config_set, [x IN chain | x.metadata] AS metadata,
       [x IN chain | x.version] AS version, [x IN chain | x.depth] AS depth,
       [x IN chain | toString(x.created_at)] AS created_at,
       [x IN chain | toString(x.updated_at)] AS updated_at,
       [x IN chain | toString(x.started_at)] AS started_at,
       [x IN chain | toString(x.stopped_at)] AS stopped_at,
       [x IN chain | toString(x.archived_at)] AS archived_at,
       [x IN chain | toString(x.heartbeat_at)] AS heartbeat_at

// name: get_descendants
// Every instance below an instance, level by level, in creation order within a level.
// No row at all when the instance does not exist.
// params: id, skip, limit
MATCH (n:HopperInstance {id: $id})
OPTIONAL MATCH (n)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH n, collect(d) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS d  // sort nodes, not paths
WITH n, d ORDER BY d.depth, d.created_at, d.id
WITH n, collect(d) AS below  // grouped by n: no row at all when there is no n
WITH size(below) AS total, below[$skip..($skip + $limit)] AS page
RETURN total,
       [x IN page | x.id] AS id, [x IN page | x.name] AS name,
       [x IN page | x.scope] AS scope, [x IN page | x.status] AS status,
       [x IN page | x.instance_type] AS instance_type, [x IN page | x.parent_id] AS parent_id,
       [x IN page | x.project_id] AS project_id, [x IN page | x.config] AS config,
       [x IN page | x.config_set] AS config_set, [x IN page | x.metadata] AS metadata,
       [x IN page | x.version] AS version, [x IN page | x.depth] AS depth,
       [x IN page | toString(x.created_at)] AS created_at,
       [x IN page | toString(x.updated_at)] AS updated_at,
       [x IN page | toString(x.started_at)] AS started_at,
       [x IN page | toString(x.stopped_at)] AS stopped_at,
       [x IN page | toString(x.archived_at)] AS archived_at,
       [x IN page | toString(x.heartbeat_at)] AS heartbeat_at

// name: get_subtree
// An instance and every instance below it down to max_depth levels (null: all levels),
// the instance first; each carries parent_id and depth, enough to build the tree without
// recursion.
// params: id, max_depth
MATCH (root:HopperInstance {id: $id})
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
  WHERE $max_depth IS NULL OR d.depth <= root.depth + $max_depth
WITH root, collect(d) AS found  // rows of a var-length match carry their path:
UNWIND CASE found WHEN [] THEN [null] ELSE found END AS d  // sort nodes, not paths
WITH root, d ORDER BY d.depth, d.created_at, d.id
WITH root, collect(d) AS below
WITH [root] + below AS tree
RETURN [x IN tree | x.id] AS id, [x IN tree | x.name] AS name,
       [x IN tree | x.scope] AS scope, [x IN tree | x.status] AS status,
       [x IN tree | x.instance_type] AS instance_type, [x IN tree | x.parent_id] AS parent_id,
       [x IN tree | x.project_id] AS project_id, [x IN tree | x.config] AS config,
       [x IN tree | x.config_set] AS config_set, [x IN tree | x.metadata] AS metadata,
       [x IN tree | x.version] AS version, [x IN tree | x.depth] AS depth,
       [x IN tree | toString(x.created_at)] AS created_at,
       [x IN tree | toString(x.updated_at)] AS updated_at,
       [x IN tree | toString(x.started_at)] AS started_at,
       [x IN tree | toString(x.stopped_at)] AS stopped_at,
       [x IN tree | toString(x.archived_at)] AS archived_at,
       [x IN tree | toString(x.heartbeat_at)] AS heartbeat_at

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
WITH n ORDER BY n.created_at, n.id
WITH collect(n) AS found
RETURN [x IN found | x.id] AS id, [x IN found | x.name] AS name,
       [x IN found | x.scope] AS scope, [x IN found | x.status] AS status,
       [x IN found | x.instance_type] AS instance_type, [x IN found | x.parent_id] AS parent_id,
       [x IN found | x.project_id] AS project_id, [x IN found | x.config] AS config,
       [x IN found | x.config_set] AS config_set, [x IN found | x.metadata] AS metadata,
       [x IN found | x.version] AS version, [x IN found | x.depth] AS depth,
       [x IN found | toString(x.created_at)] AS created_at,
       [x IN found | toString(x.updated_at)] AS updated_at,
       [x IN found | toString(x.started_at)] AS started_at,
       [x IN found | toString(x.stopped_at)] AS stopped_at,
       [x IN found | toString(x.archived_at)] AS archived_at,
       [x IN found | toString(x.heartbeat_at)] AS heartbeat_at

// name: get_instances_by_status
// Every instance with one status, in creation order.
// params: status
MATCH (n:HopperInstance {status: $status})
WITH n ORDER BY n.created_at, n.id
WITH collect(n) AS found
RETURN [x IN found | x.id] AS id, [x IN found | x.name] AS name,
       [x IN found | x.scope] AS scope, [x IN found | x.status] AS status,
       [x IN found | x.instance_type] AS instance_type, [x IN found | x.parent_id] AS parent_id,
       [x IN found | x.project_id] AS project_id, [x IN found | x.config] AS config,
       [x IN found | x.config_set] AS config_set, [x IN found | x.metadata] AS metadata,
       [x IN found | x.version] AS version, [x IN found | x.depth] AS depth,
       [x IN found | toString(x.created_at)] AS created_at,
       [x IN found | toString(x.updated_at)] AS updated_at,
       [x IN found | toString(x.started_at)] AS started_at,
       [x IN found | toString(x.stopped_at)] AS stopped_at,
       [x IN found | toString(x.archived_at)] AS archived_at,
       [x IN found | toString(x.heartbeat_at)] AS heartbeat_at
