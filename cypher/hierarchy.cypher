// Queries that return many instances answer with one record of parallel lists, one
// list per property (see INSTANCE_COLUMNS in rows.py): Neo4j builds it and the driver
// reads it several times faster than a record, or a map, per instance. The lists are
// taken from properties(x), which reads a node's properties in one pass; x.key per key
// walks the node's property chain again for each.

// name: get_children
// A page of the direct children of an instance, in creation order, after the cursor
// ($after_at, $after_id; the first page passes the earliest time), and how many there are
// in all (a degree lookup, not a scan). The (parent_id, created_at, id) index gives the
// children in page order, so no child outside the page is read. No row at all when the
// parent does not exist.
// params: parent_id, after_at, after_id, skip, limit
MATCH (p:HopperInstance {id: $parent_id})
CALL (p) {
  MATCH (n:HopperInstance {parent_id: p.id})
  USING INDEX SEEK n:HopperInstance(parent_id, created_at, id)
  WHERE {{seek_from_cursor(n)}}
  WITH n ORDER BY n.parent_id, n.created_at, n.id  // the index's order: no sort
  WITH n WHERE {{after_cursor(n)}}
  WITH n SKIP toInteger($skip) LIMIT toInteger($limit)
  RETURN collect(n) AS page
}
WITH COUNT { (p)-[:PARENT_OF]->() } AS total, [x IN page | properties(x)] AS props
RETURN total, {{instance_columns(props)}}

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
RETURN {{instance_columns(props)}}

// name: get_descendants
// A page of the instances below an instance, level by level, in creation order within a
// level, after the cursor ($after_depth, $after_at, $after_id; the first page passes depth
// -1), and how many there are in all. The subtree is walked reading only each node's sort
// keys, and a top-N keeps the page (memory follows the page, not the subtree); only the
// page's nodes are read in full. $with_total adds how many there are in all (a second
// walk). No row at all when the instance does not exist.
// params: id, after_depth, after_at, after_id, skip, limit, with_total
MATCH (n:HopperInstance {id: $id})
CALL (n) {
  WITH n WHERE $with_total  // before the walk: nothing is counted unless asked
  MATCH (n)-[:PARENT_OF*1..]->(d:HopperInstance)
  RETURN count(DISTINCT d) AS total
}
CALL (n) {
  MATCH (n)-[:PARENT_OF*1..]->(d:HopperInstance)
  WITH DISTINCT d  // rows of a var-length match carry their path: keep the nodes
  WITH d, d.depth AS depth, d.created_at AS at, d.id AS id
  WHERE depth > $after_depth
     OR (depth = $after_depth AND (at > $after_at OR (at = $after_at AND id > $after_id)))
  WITH d ORDER BY depth, at, id SKIP toInteger($skip) LIMIT toInteger($limit)
  RETURN collect(d) AS page
}
WITH CASE WHEN $with_total THEN total END AS total, [x IN page | properties(x)] AS props
RETURN total, {{instance_columns(props)}}

// name: get_subtree
// An instance and every instance below it, the instance first, the rest in no particular
// order: the caller sorts them (in Python that is several times cheaper than ORDER BY
// here). Each carries parent_id and depth, enough to build the tree without recursion.
// properties() reads each node's properties in one pass; reading them one by one walks
// the node's property chain once per key. Empty lists when the instance does not exist.
// params: id
MATCH (root:HopperInstance {id: $id})
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH root, collect(d) AS below  // collected: rows of a var-length match carry their path
UNWIND [root] + below AS x
WITH properties(x) AS p
RETURN {{instance_columns_of_rows(p)}}

// name: get_subtree_to_depth
// As get_subtree, down to $max_depth levels below the instance only. The depth test sits
// inside the quantified path, so the walk stops at the last level asked for instead of
// expanding the whole subtree and filtering afterwards (max_depth 0 of a 20,000-instance
// tree: 114 db hits against 60,360).
// params: id, max_depth
MATCH (root:HopperInstance {id: $id})
WITH root, root.depth + $max_depth AS bottom
OPTIONAL MATCH (root) ((:HopperInstance)-[:PARENT_OF]->(b:HopperInstance)
                       WHERE b.depth <= bottom)+ (d:HopperInstance)
WITH root, collect(d) AS below  // collected: rows of a path match carry their path
UNWIND [root] + below AS x
WITH properties(x) AS p
RETURN {{instance_columns_of_rows(p)}}

// name: get_global_instance
// The GLOBAL instance, if it exists.
// params: -
MATCH (n:GlobalInstance)
RETURN {{instance_map(n)}} AS instance

// name: get_top_project
// The top-level PROJECT of a project (the one :TopProject carrying its project_id),
// if any: the instance a refused second PROJECT for the same project is told about.
// params: project_id
MATCH (n:TopProject {project_id: $project_id})
RETURN n.id AS id, n.name AS name

// name: get_instances_by_status
// Every instance with one status, in creation order.
// params: status
MATCH (n:HopperInstance {status: $status})
WITH n ORDER BY n.created_at, n.id
WITH collect(n) AS found
WITH [x IN found | properties(x)] AS props
RETURN {{instance_columns(props)}}

// name: get_subtree_fields
// A lean subtree: an instance and everything below it, as parallel lists of only the
// properties named in $fields, timestamps as text. A tree view that needs four fields
// reads and sends four, not eighteen and the config snapshots.
// params: id, fields
MATCH (root:HopperInstance {id: $id})
OPTIONAL MATCH (root)-[:PARENT_OF*1..]->(d:HopperInstance)
WITH root, collect(d) AS below  // collected: rows of a var-length match carry their path
WITH [root] + below AS xs
RETURN {{selected_columns(xs)}}

// name: get_subtree_fields_to_depth
// As get_subtree_fields, down to $max_depth levels below the instance: the depth test sits
// inside the quantified path, so the walk stops at the cut (a var-length walk of the whole
// subtree is ~20% faster when there is no cut).
// params: id, max_depth, fields
MATCH (root:HopperInstance {id: $id})
WITH root, root.depth + $max_depth AS bottom
OPTIONAL MATCH (root) ((:HopperInstance)-[:PARENT_OF]->(b:HopperInstance)
                       WHERE b.depth <= bottom)+ (d:HopperInstance)
WITH root, collect(d) AS below
WITH [root] + below AS xs
RETURN {{selected_columns(xs)}}
