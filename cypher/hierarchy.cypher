// Queries that return many instances answer with one record of parallel lists, one
// list per property (see INSTANCE_COLUMNS in models.py): Neo4j builds it and the driver
// reads it several times faster than a record, or a map, per instance. The lists are
// taken from properties(x), which reads a node's properties in one pass; x.key per key
// walks the node's property chain again for each.

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
WITH COUNT { (p)-[:PARENT_OF]->() } AS total, [x IN page | properties(x)] AS props
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
WITH [x IN chain | properties(x)] AS props
RETURN [p IN props | p.id] AS id, [p IN props | p.name] AS name,
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

// name: get_subtree
// An instance and every instance below it down to max_depth levels (null: all levels),
// the instance first, the rest in no particular order: the caller sorts them (in Python
// that is several times cheaper than ORDER BY here). Each carries parent_id and depth,
// enough to build the tree without recursion. properties() reads each node's properties
// in one pass; reading them one by one walks the node's property chain once per key.
// params: id, max_depth
MATCH (root:HopperInstance {id: $id})
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
  WHERE $max_depth IS NULL OR d.depth <= root.depth + $max_depth
WITH root, collect(d) AS below  // collected: rows of a var-length match carry their path
WITH [x IN [root] + below | properties(x)] AS props
RETURN [p IN props | p.id] AS id, [p IN props | p.name] AS name,
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

// name: get_global_instance
// The GLOBAL instance, if it exists.
// params: -
MATCH (n:GlobalInstance)
RETURN n {.*,
    created_at: toString(n.created_at), updated_at: toString(n.updated_at),
    started_at: toString(n.started_at), stopped_at: toString(n.stopped_at),
    archived_at: toString(n.archived_at), heartbeat_at: toString(n.heartbeat_at)} AS instance

// name: get_top_project
// The top-level PROJECT of a project (the one :ProjectInstance carrying its project_id),
// if any: the instance a refused second PROJECT for the same project is told about.
// params: project_id
MATCH (n:ProjectInstance {project_id: $project_id})
RETURN n.id AS id, n.name AS name

// name: get_instances_in_scope_of_project
// The instances of one scope that belong to a project, in creation order.
// params: project_id, scope
MATCH (n:HopperInstance {project_id: $project_id, scope: $scope})
WITH n ORDER BY n.created_at, n.id
WITH collect(n) AS found
WITH [x IN found | properties(x)] AS props
RETURN [p IN props | p.id] AS id, [p IN props | p.name] AS name,
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

// name: get_instances_by_status
// Every instance with one status, in creation order.
// params: status
MATCH (n:HopperInstance {status: $status})
WITH n ORDER BY n.created_at, n.id
WITH collect(n) AS found
WITH [x IN found | properties(x)] AS props
RETURN [p IN props | p.id] AS id, [p IN props | p.name] AS name,
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
