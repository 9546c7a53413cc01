// Queries for people reading the graph in Neo4j Browser; the library never runs them. Its
// own queries answer in one record of parallel lists, the fast shape for a program and an
// unreadable one in Browser's table; these answer one row per instance or event (the
// table view), or paths (the graph view). Numbers go through toInteger() where Cypher
// wants an integer: Browser sends the numbers of a `:params {...}` map as floats.
// `hopper-graph query show NAME` prints each; docs/instance-architecture.md shows them.

// name: browser_instances
// Where to start: the first instances in creation order, one row each, with their ids.
// params: limit
MATCH (n:HopperInstance)
RETURN n.depth AS depth, n.scope AS scope, n.name AS name, n.status AS status,
       n.id AS id, n.parent_id AS parent_id
ORDER BY n.created_at, n.id
LIMIT toInteger($limit)

// name: browser_tree
// The hierarchy from the GLOBAL root down to depth $max_depth, as one path per instance:
// the graph view draws the tree.
// params: max_depth
MATCH path = (:GlobalInstance)
             ((:HopperInstance)-[:PARENT_OF]->(b:HopperInstance) WHERE b.depth <= $max_depth)*
RETURN path
ORDER BY length(path)

// name: browser_ancestors
// The chain above an instance, nearest first, one row per ancestor.
// params: id
MATCH (:HopperInstance {id: $id})<-[:PARENT_OF*1..]-(a:HopperInstance)
RETURN a.depth AS depth, a.scope AS scope, a.name AS name, a.status AS status, a.id AS id
ORDER BY depth DESC

// name: browser_subtree
// An instance and what is below it, down to $max_depth levels, as one path per instance:
// the graph view draws the subtree.
// params: id, max_depth
MATCH (root:HopperInstance {id: $id})
WITH root, root.depth + $max_depth AS bottom
MATCH path = (root) ((:HopperInstance)-[:PARENT_OF]->(b:HopperInstance)
                     WHERE b.depth <= bottom)*
RETURN path
ORDER BY length(path)

// name: browser_children
// A page of the children of an instance in creation order, one row each.
// params: parent_id, skip, limit
MATCH (n:HopperInstance {parent_id: $parent_id})
RETURN n.scope AS scope, n.name AS name, n.status AS status,
       n.instance_type AS instance_type, n.id AS id, n.created_at AS created_at
ORDER BY n.created_at, n.id
SKIP toInteger($skip) LIMIT toInteger($limit)

// name: browser_history
// A page of the audit events of one instance, oldest first, one row each; found by
// instance_id, so a deleted instance's history shows too. Events the feed has not yet
// numbered (no seq) come last, in the order they were written.
// params: instance_id, skip, limit
MATCH (e:InstanceEvent {instance_id: $instance_id})
RETURN e.seq AS seq, e.event AS event, e.from_status AS from_status,
       e.to_status AS to_status, e.actor AS actor, e.reason AS reason, e.cause AS cause,
       e.at AS at
ORDER BY e.seq, e.written_at, e.offset
SKIP toInteger($skip) LIMIT toInteger($limit)

// name: browser_project_runs
// A page of the runs (ORCHESTRATION instances) of one project, newest first, one row each.
// params: project_id, skip, limit
MATCH (n:HopperInstance {project_id: $project_id, scope: 'ORCHESTRATION'})
RETURN n.created_at AS created_at, n.name AS name, n.status AS status,
       n.instance_type AS instance_type, n.depth AS depth, n.id AS id,
       n.parent_id AS parent_id, n.started_at AS started_at, n.stopped_at AS stopped_at
ORDER BY n.created_at DESC, n.id DESC
SKIP toInteger($skip) LIMIT toInteger($limit)

// name: browser_audit_trail
// The audit trail of every instance after seq $after (0: from the start), at most $limit
// events, one row each with the instance's name (null once it is deleted). Events the
// feed has not yet numbered come last.
// params: after, limit
MATCH (e:InstanceEvent)
WHERE e.seq > $after OR e:PendingEvent
WITH e ORDER BY e.seq, e.written_at, e.offset LIMIT toInteger($limit)
OPTIONAL MATCH (n:HopperInstance {id: e.instance_id})
RETURN e.seq AS seq, e.at AS at, n.scope AS scope, n.name AS instance, e.event AS event,
       e.from_status AS from_status, e.to_status AS to_status, e.actor AS actor,
       e.reason AS reason, e.instance_id AS instance_id
ORDER BY e.seq, e.written_at, e.offset

// name: browser_label_instances
// The instances that carry the label $key = $value, one row each with all their labels,
// in creation order (from the label's shared node: the graph view of
// `MATCH (l:Label {key: $key, value: $value})<-[:LABELED]-(n) RETURN l, n` draws the same).
// params: key, value, limit
MATCH (:Label {key: $key, value: $value})<-[r:LABELED]-(n:HopperInstance)
RETURN n.depth AS depth, n.scope AS scope, n.name AS name, n.status AS status,
       n.labels AS labels, n.id AS id
ORDER BY r.created_at, r.id
LIMIT toInteger($limit)
